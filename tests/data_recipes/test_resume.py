"""A pipeline killed mid-run (SIGKILL to its whole process group) and restarted writes the same bytes."""

import os
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


def write_recipe(path: Path, src: Path, out: Path) -> None:
    path.write_text(yaml.safe_dump({
        "name": "resume", "out_dir": str(out),
        "sources": [{"name": "src", "kind": "tree", "path": str(src)}],
        "decontamination": {"enabled": False}, "workers": 2, "chunk_docs": 3, "log_every_s": 60,
    }))  # fmt: skip


def run(recipe: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "data_recipes.pipeline", str(recipe)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, **kw)  # fmt: skip


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_killed_and_restarted_run_is_byte_identical(tmp_path):
    make_input(tmp_path / "src")
    for name in ("killed", "clean"):
        write_recipe(tmp_path / f"{name}.yaml", tmp_path / "src", tmp_path / name)

    proc = run(tmp_path / "killed.yaml")
    work = tmp_path / "killed" / ".work"
    deadline = time.monotonic() + 60
    while len(list(work.glob("chunk-*.json"))) < 4:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the pipeline made no progress"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker processes, like a preempted job
    proc.wait()
    done_before = len(list(work.glob("chunk-*.json")))
    assert not (tmp_path / "killed" / "manifest.json").exists(), "killed too late: the run had finished"

    resumed = run(tmp_path / "killed.yaml")
    clean = run(tmp_path / "clean.yaml")
    assert resumed.wait() == 0, resumed.stderr.read().decode()[-2000:]
    resumed_log = resumed.stderr.read().decode()
    assert clean.wait() == 0, clean.stderr.read().decode()[-2000:]
    killed_out, clean_out = outputs(tmp_path / "killed"), outputs(tmp_path / "clean")
    assert killed_out.keys() == clean_out.keys() and "manifest.json" in killed_out
    assert len([n for n in killed_out if n.endswith(".bin")]) > 5
    for name in killed_out:
        assert killed_out[name] == clean_out[name], name
    # Chunks finished before the kill were reused, not redone.
    assert f"of which {done_before} reused" in resumed_log and done_before >= 4
    assert not work.exists()  # cleaned up after success
