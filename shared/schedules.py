"""Learning-rate schedules as pure functions of the step, wrapped in a LambdaLR.

The config's schedule is the one that runs: the trainer hands this LambdaLR to DeepSpeed as the client
scheduler and never writes a `scheduler` block into the DeepSpeed config (Qwen's own ds_config had a WarmupLR
block that silently flattened the cosine). Step s here is the number of optimizer updates already done, so
the update that produces step s+1 uses lr_at(s).
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from shared.config import ScheduleConfig


def warmup_steps(cfg: ScheduleConfig, max_steps: int) -> int:
    if cfg.warmup_steps > 0:
        return cfg.warmup_steps
    return int(round(cfg.warmup_ratio * max_steps))


def lr_multiplier(step: int, cfg: ScheduleConfig, max_steps: int) -> float:
    """Fraction of the peak lr for the update made after `step` completed updates."""
    warm = warmup_steps(cfg, max_steps)
    if step < warm:
        return (step + 1) / warm
    if cfg.name == "constant":
        return 1.0
    decay_steps = max(1, max_steps - warm)
    progress = min(1.0, (step - warm) / decay_steps)
    floor = cfg.min_lr_ratio
    if cfg.name == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.name == "linear":
        return floor + (1.0 - floor) * (1.0 - progress)
    raise ValueError(f"unknown schedule {cfg.name!r}")


def lr_at(step: int, peak_lr: float, cfg: ScheduleConfig, max_steps: int) -> float:
    return peak_lr * lr_multiplier(step, cfg, max_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, max_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: lr_multiplier(step, cfg, max_steps))
