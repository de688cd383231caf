"""Every paper-scale math config pins the Qwen report's section 5.1 values; the tiny defaults keep the masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from math_qwen import rft, sft
from shared.config import load_config

CONFIGS = Path(sft.__file__).resolve().parent / "configs"
PAPER = [(sft.Config, p) for p in sorted((CONFIGS / "sft").glob("*.yaml")) if p.stem != "tiny"]
PAPER += [(rft.Config, p) for p in sorted((CONFIGS / "rft").glob("*.yaml")) if p.stem != "tiny"]


def test_paper_configs_exist():
    names = {f"{p.parent.name}/{p.stem}" for _, p in PAPER}
    assert {"sft/7b", "sft/14b", "sft/qwen2-7b", "rft/7b"} <= names


@pytest.mark.parametrize("cls, path", PAPER, ids=lambda x: getattr(x, "stem", ""))
def test_pins_section_5_1(cls, path):
    cfg = load_config(cls, path)
    t = cfg.train
    assert t.seq_len == 1024
    assert t.optimizer.lr == 2e-5
    assert t.max_steps == 50_000
    assert cfg.data.mask_system_and_user is True and cfg.data.train_on == "all"
    assert t.optimizer.betas == (0.9, 0.95) and t.optimizer.eps == 1e-8
    assert cfg.model.name_or_path.startswith("Qwen/")
    # The values are written in the file itself (with their section), not only inherited.
    text = path.read_text()
    for key in ("seq_len: 1024", "max_steps: 50000", "lr: 2.0e-5", "mask_system_and_user: true"):
        line = next(line for line in text.splitlines() if key in line)
        assert "[5.1]" in line, f"{path.name}: {key!r} does not cite section 5.1"


@pytest.mark.parametrize("module", [sft, rft])
def test_tiny_defaults_mask_and_load(module):
    cfg = load_config(module.Config, module.DEFAULT_CONFIG)
    assert cfg.data.mask_system_and_user and cfg.model.name_or_path == "tiny" and not cfg.data.train_files
