"""The config system: YAML + dotted overrides -> typed dataclasses, unknown keys named, round trip."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from shared.config import (
    ChatDataConfig,
    ConfigError,
    RunConfig,
    dump,
    load_config,
    parse_cli,
    read_yaml,
    save_config,
)


@dataclass
class SFTLike(RunConfig):
    data: ChatDataConfig = field(default_factory=ChatDataConfig)


def test_overrides_reach_nested_fields_with_types(tmp_path):
    cfg = load_config(SFTLike, None, ["train.optimizer.lr=2e-5", "train.max_steps=7", "data.train_on=last",
                                      "train.optimizer.betas=[0.9,0.95]", "run_name=abc", "data.train_files=[a.jsonl]"])
    assert cfg.train.optimizer.lr == 2e-5 and isinstance(cfg.train.optimizer.lr, float)
    assert cfg.train.max_steps == 7 and cfg.data.train_on == "last" and cfg.run_name == "abc"
    assert cfg.train.optimizer.betas == (0.9, 0.95) and cfg.data.train_files == ["a.jsonl"]


def test_yaml_then_overrides_and_base_inheritance(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  seq_len: 1024\n  optimizer:\n    lr: 3.0e-5\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain:\n  max_steps: 50\n")
    cfg = load_config(SFTLike, tmp_path / "child.yaml", ["train.seq_len=512"])
    assert (cfg.train.seq_len, cfg.train.max_steps, cfg.train.optimizer.lr) == (512, 50, 3e-5)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_stepz=3", "unknown config key train.max_stepz"),
        ("nonsense=1", "unknown config key nonsense"),
        ("train.optimizer.learning_rate=1", "unknown config key train.optimizer.learning_rate"),
        ("train.max_steps=abc", "train.max_steps: expected an integer"),
        ("train.zero_stage=5", "zero_stage"),
        ("data.train_on=first", "data.train_on"),
        ("train.optimizer.betas=[0.9]", "expected 2 values"),
        ("train", "not key=value"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(SFTLike, None, [override])


def test_cli_reads_config_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_name: from-file\n")
    assert parse_cli(SFTLike, [str(path), "train.seed=3"], None).train.seed == 3
    assert parse_cli(SFTLike, [str(path)], None).run_name == "from-file"
    with pytest.raises(ConfigError, match="does not exist"):
        parse_cli(SFTLike, [str(tmp_path / "missing.yaml")], None)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(SFTLike, None, ["train.optimizer.lr=1e-5", "data.default_system_prompt=null"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(SFTLike, tmp_path / "config.yaml")
    assert again == cfg and dump(again) == dump(cfg)
    assert read_yaml(tmp_path / "config.yaml")["train"]["optimizer"]["lr"] == 1e-5
