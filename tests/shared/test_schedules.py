"""The lr that the optimizer actually gets, step by step, equals the configured formula (also across a resume)."""

from __future__ import annotations

import math

import pytest
import torch

from shared.config import ScheduleConfig
from shared.schedules import build_scheduler, lr_at, warmup_steps


def run_optimizer(cfg: ScheduleConfig, max_steps: int, peak: float, resume_at: int | None = None) -> list[float]:
    """Learning rates applied by real optimizer steps; optionally rebuilt from state dicts at `resume_at`."""
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([p], lr=peak)
    sched = build_scheduler(opt, cfg, max_steps)
    seen = []
    for step in range(max_steps):
        if step == resume_at:
            state = (opt.state_dict(), sched.state_dict())
            opt = torch.optim.AdamW([p], lr=peak)
            sched = build_scheduler(opt, cfg, max_steps)
            opt.load_state_dict(state[0])
            sched.load_state_dict(state[1])
        seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
    return seen


def test_cosine_with_warmup_steps_matches_the_closed_form():
    cfg = ScheduleConfig(name="cosine", warmup_steps=4, min_lr_ratio=0.1)
    lrs = run_optimizer(cfg, 20, peak=1e-3, resume_at=9)
    for s, lr in enumerate(lrs):
        if s < 4:
            expected = 1e-3 * (s + 1) / 4
        else:
            expected = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 16)))
        assert lr == pytest.approx(expected, rel=1e-12), s
    assert lrs == run_optimizer(cfg, 20, peak=1e-3)
    assert lr_at(20, 1e-3, cfg, 20) == pytest.approx(1e-4)  # floor = min_lr_ratio * peak


def test_constant_after_warmup_ratio():
    cfg = ScheduleConfig(name="constant", warmup_ratio=0.25)
    assert warmup_steps(cfg, 40) == 10
    lrs = run_optimizer(cfg, 40, peak=2e-4, resume_at=5)
    assert lrs[:10] == pytest.approx([2e-4 * (s + 1) / 10 for s in range(10)], rel=1e-12)
    assert lrs[10:] == [pytest.approx(2e-4, rel=1e-12)] * 30


def test_linear_decay_reaches_the_floor():
    cfg = ScheduleConfig(name="linear", warmup_steps=0, min_lr_ratio=0.0)
    lrs = run_optimizer(cfg, 10, peak=1.0)
    assert lrs == pytest.approx([1.0 - s / 10 for s in range(10)], rel=1e-12)
