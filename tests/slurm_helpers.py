"""Submitting to, and waiting on, the real single-node Slurm of `.ci/slurm-up.sh` (tests marked `slurm`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE"}


def require_slurm() -> None:
    """Skip unless a Slurm controller answers (start one with `.ci/slurm-up.sh`)."""
    if shutil.which("sinfo") is None:
        pytest.skip("no Slurm client (run .ci/slurm-up.sh)")
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.skip("sinfo does not answer")
    if done.returncode != 0 or not done.stdout.strip():
        pytest.skip(f"sinfo does not answer: {done.stderr.strip()}")


def just_slurm(*args: str, cwd: Path = ROOT) -> str:
    """`just slurm ...` (as python -m shared.slurm); returns the job id from sbatch's own line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "shared.slurm", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    match = re.fullmatch(r"Submitted batch job (\d+)", done.stdout.strip())
    assert match, f"sbatch's line expected on stdout, got {done.stdout!r}"
    return match.group(1)


def job_field(job_id: str, name: str) -> str | None:
    done = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True)
    match = re.search(rf"\b{name}=(\S*)", done.stdout)
    return match.group(1) if match else None


def wait_for(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_job(job_id: str, timeout: float = 900) -> str:
    """The final state of a job (COMPLETED, FAILED, ...). Generous: a checkout's first torchrun job JIT-builds
    DeepSpeed's CPU communication op (minutes on a loaded machine)."""
    state = wait_for(lambda: (s := job_field(job_id, "JobState")) in FINAL and s, timeout, f"job {job_id}", 0.5)
    return str(state)


def cancel(*job_ids: str) -> None:
    subprocess.run(["scancel", *job_ids], capture_output=True)


def job_log(logs: Path, job_id: str) -> str:
    [path] = logs.glob(f"*-{job_id}.out")
    return path.read_text()
