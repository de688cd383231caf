"""A pipeline killed mid-run (SIGKILL to its whole process group, datatrove's workers included) and relaunched
reruns only the unfinished tasks and writes the same bytes as an uninterrupted run with a single task."""


import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def make_input(folder: Path, n: int = 80) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(stdlib.glob("*.py")) if 2_000 < p.stat().st_size < 40_000][:n]
    folder.mkdir(parents=True)
    for p in files:
        shutil.copy(p, folder / p.name)


def write_recipe(path: Path, src: Path, out: Path, tasks: int, workers: int) -> None:
    path.write_text(yaml.safe_dump({
        "name": "resume", "out_dir": str(out),
        "sources": [{"name": "src", "kind": "tree", "path": str(src)}],
        "decontamination": {"enabled": False}, "tasks": tasks, "workers": workers, "chunk_docs": 3,
        "log_every_s": 60,
    }))  # fmt: skip


def run(recipe: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as err:  # a file, not a pipe: datatrove logs a lot, a full pipe would stall it
        return subprocess.Popen([sys.executable, "-m", "data_recipes.pipeline", str(recipe)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)  # fmt: skip


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def finished(work: Path, stage: str) -> set[int]:
    folder = work / "logs" / stage / "completions"
    return {int(p.name) for p in folder.iterdir()} if folder.is_dir() else set()


def test_killed_and_relaunched_run_reruns_unfinished_tasks_and_is_byte_identical(tmp_path):
    make_input(tmp_path / "src")
    write_recipe(tmp_path / "killed.yaml", tmp_path / "src", tmp_path / "killed", tasks=4, workers=2)
    write_recipe(tmp_path / "clean.yaml", tmp_path / "src", tmp_path / "clean", tasks=1, workers=1)

    proc = run(tmp_path / "killed.yaml", tmp_path / "killed.log")
    work = tmp_path / "killed" / ".work"
    deadline = time.monotonic() + 120
    while not finished(work, "documents-of-4"):
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "the pipeline made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its worker processes, like a preempted job
    proc.wait()
    done_before = finished(work, "documents-of-4")
    assert len(done_before) < 4 and not (tmp_path / "killed" / "manifest.json").exists(), "killed too late"

    resumed = run(tmp_path / "killed.yaml", tmp_path / "resumed.log")
    clean = run(tmp_path / "clean.yaml", tmp_path / "clean.log")
    assert resumed.wait() == 0, (tmp_path / "resumed.log").read_text()[-2000:]
    assert clean.wait() == 0, (tmp_path / "clean.log").read_text()[-2000:]
    killed_out, clean_out = outputs(tmp_path / "killed"), outputs(tmp_path / "clean")
    assert killed_out.keys() == clean_out.keys() and "manifest.json" in killed_out
    assert len([n for n in killed_out if n.endswith(".bin")]) > 5
    for name in killed_out:
        assert killed_out[name] == clean_out[name], name
    assert not work.exists()  # cleaned up after success
    # Only the documents tasks without a completion marker ran again.
    rerun = set(map(int, re.findall(r"stage documents: task (\d+)/4", (tmp_path / "resumed.log").read_text())))
    assert rerun == set(range(4)) - done_before
