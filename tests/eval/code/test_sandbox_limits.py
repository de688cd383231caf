"""The sandbox's resource limits reach the sample, whether set by util-linux `prlimit` (the fast path) or by a
preexec_fn where prlimit is missing; with or without bubblewrap. The process count holds for root too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.code import sandbox
from eval.code.pids_cgroup import _remove_stale, pids_cgroup_root, process_limit_enforced
from eval.code.sandbox import Limits, Sandbox, bubblewrap_works

LIMITS = Limits(timeout_s=7.0, memory_mb=1024, file_size_mb=3, max_processes=77)
# ulimit -t (CPU s), -v (KiB of address space), -f (512-byte blocks), -c (core), -Ht (hard CPU s); processes
EXPECTED = ["9", str(1024 * 1024), str(3 * 2048), "0", "10", "77"]
# Forks children that sleep (their stdout closed, so the parent's output ends) until fork fails; prints the count.
FORK_UNTIL_REFUSED = (
    "import os, time\nn = 0\ntry:\n    while n < 5000:\n        if os.fork() == 0:\n            os.close(1)\n"
    "            time.sleep(60)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nprint(n)\n"
)


@pytest.mark.parametrize("mode", ["auto", "none"])
@pytest.mark.parametrize("prlimit", [True, False], ids=["prlimit", "preexec_fn"])
def test_limits_reach_the_sample(tmp_path, monkeypatch, mode, prlimit):
    if mode == "auto" and not bubblewrap_works():
        pytest.skip("bubblewrap unavailable")
    if not prlimit:
        monkeypatch.setattr(sandbox, "_prlimit_tool", lambda: None)
    elif sandbox._prlimit_tool() is None:
        pytest.skip("util-linux prlimit unavailable")
    result = Sandbox(mode).run(["/bin/sh", "-c", "ulimit -t; ulimit -v; ulimit -f; ulimit -c; ulimit -Ht; "
                                "awk '/^Max processes/ {print $3}' /proc/self/limits"],
                               tmp_path, limits=LIMITS)
    assert result.ok, result
    assert result.stdout.split() == EXPECTED


@pytest.mark.parametrize("mode", ["auto", "none"])
def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_nothing(tmp_path, mode):
    """Root is exempt from RLIMIT_NPROC: without the pids cgroup this sample made 32,446 processes here."""
    if mode == "auto" and not bubblewrap_works():
        pytest.skip("bubblewrap unavailable")
    if not process_limit_enforced():
        pytest.skip("root without a writable cgroup pids controller: no process-count limit here (it warns)")
    result = Sandbox(mode).run([sys.executable, "-I", "-S", "-c", FORK_UNTIL_REFUSED], tmp_path,
                               limits=Limits(timeout_s=20.0, max_processes=24))
    forks = int(result.stdout.split()[-1])
    assert 10 < forks < 24, result
    root = pids_cgroup_root()
    if root is not None:  # every sample cgroup goes (removed in the background once its killed processes left)
        deadline = time.monotonic() + 10
        while [p for p in Path(root).glob(f"qs-code-eval-{os.getpid()}-*") if p.is_dir()]:
            assert time.monotonic() < deadline, "sample cgroups left behind"
            time.sleep(0.05)


def test_sample_cgroups_of_dead_evaluators_are_removed():
    root = pids_cgroup_root()
    if root is None:
        pytest.skip("no pids cgroup here")
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    stale, alive = Path(root) / f"qs-code-eval-{dead.pid}-0", Path(root) / f"qs-code-eval-{os.getpid()}-stale-test"
    stale.mkdir()
    alive.mkdir()
    try:
        _remove_stale(Path(root))
        assert not stale.exists() and alive.exists()  # an evaluator still running keeps its cgroups
    finally:
        for path in (stale, alive):
            if path.exists():
                path.rmdir()
