"""Training metrics: metrics.jsonl (the run-folder contract), TensorBoard when installed, a progress line, MFU.

MFU = achieved model FLOP/s / peak FLOP/s, with model FLOPs per trained token = 6 * parameters (forward +
backward matmuls) + 12 * layers * hidden * seq_len (attention scores and values, PaLM appendix B). The peak is
QS_PEAK_FLOPS when set, the datasheet bf16 dense peak for known GPUs, else a measured fp32 matmul rate.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks (datasheets, no sparsity).
GPU_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12, "4090": 165e12}


def flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    cfg = getattr(model, "config", None)
    n_params = sum(p.numel() for p in model.parameters())
    layers = getattr(cfg, "num_hidden_layers", 0) or 0
    hidden = getattr(cfg, "hidden_size", 0) or 0
    return 6.0 * n_params + 12.0 * layers * hidden * seq_len


def measure_matmul_flops(size: int = 1024, repeats: int = 4, device: str = "cpu") -> float:
    """FLOP/s of a square fp32 matmul on this device (best of a few runs).

    Its own generator: drawing from the global one (first call, mid-run) would shift the dropout masks of every
    later step, so a resumed run (which measures again) would no longer equal the uninterrupted one.
    """
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=gen)
    b = torch.randn(size, size, device=device, generator=gen)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best


_PEAK_CACHE: dict[str, float] = {}


def peak_flops(device: torch.device) -> float:
    if os.environ.get("QS_PEAK_FLOPS"):
        return float(os.environ["QS_PEAK_FLOPS"])
    key = str(device)
    if key not in _PEAK_CACHE:
        if device.type == "cuda":
            name = torch.cuda.get_device_name(device)
            match = [v for k, v in GPU_PEAK_FLOPS.items() if k in name]
            _PEAK_CACHE[key] = match[0] if match else measure_matmul_flops(4096, device=key)
        else:
            _PEAK_CACHE[key] = measure_matmul_flops()
    return _PEAK_CACHE[key]


def _format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


class MetricsLog:
    """Appends one JSON object per logged step; on resume drops records past the resumed step first."""

    def __init__(self, run_dir: Path, enabled: bool, max_steps: int, resume_step: int = 0):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.max_steps = max_steps
        self.start_step = resume_step
        self.t_start = time.perf_counter()
        self.tb = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        truncate_jsonl(self.path, resume_step)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            log.info("tensorboard not installed: metrics go to metrics.jsonl only")

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"train/{k}", v, record["step"])
        self.progress(record)

    def progress(self, record: dict) -> None:
        step = record["step"]
        elapsed = time.perf_counter() - self.t_start
        done = step - self.start_step
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.max_steps - step) / rate if rate > 0 else 0.0
        mfu = f" mfu {record['mfu']:.1%}" if "mfu" in record else ""
        log.info(
            "step %d/%d loss %.4f lr %.3g %.0f tok/s%s | %.2f step/s, elapsed %s, ETA %s",
            step, self.max_steps, record["loss"], record["lr"], record["tokens_per_s"], mfu, rate,
            _format_duration(elapsed), _format_duration(eta),
        )

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def truncate_jsonl(path: Path, keep_through_step: int) -> None:
    """Keep only records with step <= keep_through_step (a resumed run rewrites what came after)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= keep_through_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    tmp.replace(path)


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_metrics_if_any(run_dir: str | Path) -> list[dict]:
    return read_metrics(run_dir) if (Path(run_dir) / "metrics.jsonl").exists() else []
