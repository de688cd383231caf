"""Hostile samples: every one is marked failed, leaves no process or file behind, and the evaluator lives on.

Each hostile completion is run on a real HumanEvalPack problem; the processes they start carry a unique
marker in their command line, so the test can look for survivors in /proc afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from eval.code.executor import OUTPUT_LIMIT, TIMEOUT
from eval.code.humanevalpack import evaluate_humanevalpack
from eval.code.pids_cgroup import pids_cgroup_root, process_limit_enforced
from eval.code.problems import read_records
from eval.code.sandbox import Sandbox, bubblewrap_works

pytestmark = pytest.mark.timeout(300)

MARK = f"qs-hostile-{uuid.uuid4().hex[:12]}"
OUTSIDE = [Path.cwd() / f"{MARK}-cwd", Path("/tmp") / f"{MARK}-tmp", Path.home() / f"{MARK}-home"]

# Python/0 asks for has_close_elements; every body below is wrong or never finishes.
SLEEPER = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{MARK}'], "
PYTHON_HOSTILE = {
    "infinite_loop": "    while True:\n        pass\n",
    "children_then_hang": f"    {SLEEPER}stdout=subprocess.DEVNULL)\n    import time\n    time.sleep(600)\n",
    "setsid_daemon": (
        "    import os, sys, time\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        f"            os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(600)', '{MARK}'])\n"
        "        os._exit(0)\n"
        "    time.sleep(0.5)\n"
        "    return True\n"
    ),
    "new_session_child_then_exit0": f"    {SLEEPER}start_new_session=True)\n    import os\n    os._exit(0)\n",
    "memory_bomb": "    chunks = []\n    while True:\n        chunks.append(bytearray(1 << 30))\n",
    "output_flood": "    while True:\n        print('x' * 65536)\n",
    "write_outside": "".join(f"    open({str(p)!r}, 'w').write('escaped')\n" for p in OUTSIDE) + "    return True\n",
    "exit0_before_tests": "    return True\nimport sys\nsys.exit(0)\n",
    "os_exit0_before_tests": "    return True\nimport os\nos._exit(0)\n",
    "kill_parent": "    return True\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "kill_process_group": "    return True\nimport os, signal\nos.killpg(0, signal.SIGKILL)\n",
    "patched_exit_and_fake_pass": (
        "    return True\nimport os, sys\nos._exit = lambda code: None\nsys.exit = lambda *a: None\n"
        "print('PASSED')\nprint('0' * 32)\n"
    ),
}
if process_limit_enforced():  # else (root without a pids cgroup) it would fill the machine; the sandbox warns
    PYTHON_HOSTILE["fork_bomb"] = (
        "    import os\n    while True:\n        if os.fork() == 0:\n"
        f"            os.execv('/bin/sh', ['/bin/sh', '-c', 'sleep 600; :', '{MARK}'])\n"
    )
JS_HOSTILE = {
    "console_assert_disabled": "  console.assert = () => {};\n  return true\n}\n",
    "process_exit0_before_tests": "  return true\n}\nprocess.exit(0)\n",
}


def survivors() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if MARK.encode() in cmdline and int(pid) != os.getpid():
            found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def problems(request):
    from tests.conftest import shared_data_file

    rows = {}
    for lang in ("python", "javascript"):
        row = read_records(shared_data_file("humanevalpack", f"{lang}.jsonl"))[0]
        rows[row["task_id"]] = row
    return rows


def run_hostile(problems, mode: str) -> dict[str, dict]:
    samples = [{"task_id": "Python/0", "completion": c} for c in PYTHON_HOSTILE.values()]
    samples += [{"task_id": "JavaScript/0", "completion": c} for c in JS_HOSTILE.values()]
    results, env = evaluate_humanevalpack(problems, samples, sandbox=Sandbox(mode), workers=2, progress=False,
                                          run_timeout_s=6.0)
    assert env == {}
    return dict(zip([*PYTHON_HOSTILE, *JS_HOSTILE], results, strict=True))


@pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap unavailable: the fallback cannot contain all of these")
def test_hostile_samples_fail_and_leave_nothing_behind(problems):
    results = run_hostile(problems, "bwrap")
    for name, r in results.items():
        assert r["passed"] is False, f"{name} passed: {r}"
    assert results["infinite_loop"]["status"] == TIMEOUT
    assert results["children_then_hang"]["status"] == TIMEOUT
    assert results["output_flood"]["status"] == OUTPUT_LIMIT
    assert "MemoryError" in results["memory_bomb"]["detail"]
    assert survivors() == [], "processes started by samples outlived them"
    for path in OUTSIDE:
        assert not path.exists(), f"a sample wrote {path} outside its folder"


def test_canonical_still_passes_beside_hostile_ones(problems):
    """Control for the test above: the same problems pass with their canonical solutions, in either mode."""
    for mode in ("auto", "none"):
        samples = [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()]
        results, _ = evaluate_humanevalpack(problems, samples, sandbox=Sandbox(mode), workers=2, progress=False)
        assert [r["passed"] for r in results] == [True, True], (mode, results)


def test_fallback_sandbox_still_fails_hostile_samples(problems):
    """Without bubblewrap (process group + `timeout` shim + rlimits) the verdicts hold and the evaluator lives."""
    results = run_hostile(problems, "none")
    for name, r in results.items():
        if name != "write_outside":  # the fallback cannot stop writes; the verdict is still a failure
            assert r["passed"] is False, f"{name} passed: {r}"
    left = survivors()
    for pid in left:  # without a pids cgroup, daemons may outlive samples in the fallback (it warns): clean up
        os.kill(pid, 9)
    if pids_cgroup_root() is not None:  # with one, the sample's cgroup ends them all
        assert left == [], "processes started by samples outlived them"
    for path in OUTSIDE:
        path.unlink(missing_ok=True)
