"""`just gpu-check`: its skip path on a machine without CUDA, and each of its GPU steps as a test marked `gpu`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bench import gpu_check
from tests.shared.trainer_helpers import ROOT


def test_without_cuda_it_says_so_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "gpu-check needs CUDA" in proc.stdout and not out.exists()


def test_a_failing_step_is_a_failed_row_not_an_exception(capsys):
    def boom(args):
        raise RuntimeError("out of memory")

    gpu_check.CHECKS["boom"] = boom
    try:
        row = gpu_check.run_check("boom", gpu_check.parse_args([]))
    finally:
        del gpu_check.CHECKS["boom"]
    assert row.status == "FAIL" and "RuntimeError: out of memory" in row.summary
    gpu_check.print_table([row])
    assert "boom" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(gpu_check.CHECKS))
def test_gpu_step(name, tmp_path):
    args = gpu_check.parse_args(["--workdir", str(tmp_path), "--steps", "4"])
    row = gpu_check.run_check(name, args)
    print(row)
    assert row.status in ("ok", "skipped"), row.summary
