"""Every paper-scale math config pins the Qwen report's section 5.1 values; the tiny defaults keep the masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from math_qwen import rft, sft
from shared.config import ConfigError, load_config

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


@pytest.mark.parametrize("train_from", ["base", "current"])
def test_round_sft_starts_where_train_from_says_with_the_round_lr_and_steps(train_from):
    cfg = load_config(rft.Config, rft.DEFAULT_CONFIG, [f"rft.train_from={train_from}", "rft.lr=3e-4", "rft.max_steps=7",
                                                       "train.optimizer.lr=5e-3", "train.max_steps=100"])  # fmt: skip
    round_cfg = rft.round_sft_config(cfg, "tiny/round-1", Path("/sampler/export"))
    assert round_cfg.init_from == (None if train_from == "base" else "/sampler/export")
    assert (round_cfg.train.optimizer.lr, round_cfg.train.max_steps, round_cfg.eval.baseline) == (3e-4, 7, False)
    assert round_cfg.run_name == "tiny/round-1" and round_cfg.train.optimizer.betas == cfg.train.optimizer.betas
    # The sampler's own SFT keeps the SFT's learning rate and steps: rft.* changes only the rounds.
    assert (rft.as_sft_config(cfg).train.optimizer.lr, rft.as_sft_config(cfg).train.max_steps) == (5e-3, 100)
    unset = load_config(rft.Config, rft.DEFAULT_CONFIG, ["rft.lr=null", "rft.max_steps=null", "train.optimizer.lr=5e-3"])
    defaults = rft.round_sft_config(unset, "r", Path("s")).train
    assert (defaults.optimizer.lr, defaults.max_steps) == (5e-3, unset.train.max_steps)


def test_round_lr_must_be_positive():
    with pytest.raises(ConfigError, match="rft.lr"):
        load_config(rft.Config, rft.DEFAULT_CONFIG, ["rft.lr=0"])
