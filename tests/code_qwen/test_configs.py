"""The paper-scale Code-Qwen configs hold the Qwen report's values (arXiv:2309.16609, sections 4.1 and 4.2),
every hyperparameter line says where its value comes from, and the batch settings fit the planner's 80 GB GPUs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from code_qwen import pretrain, sft
from code_qwen.plan import Cluster, build_plan, request_from_recipe
from shared.config import load_config, read_yaml

CONFIGS = Path(pretrain.__file__).parent / "configs"
GPUS = 8  # the cluster the paper-scale batch settings are written for (1 node x 8 x 80 GB)

# Section 4.1 (continued pretraining) and 4.2 (multi-stage SFT) of the report, one entry per model size.
PAPER_PRETRAIN = {
    "7b": {"base": "Qwen/Qwen-7B", "lr": 3.0e-5},
    "14b": {"base": "Qwen/Qwen-14B", "lr": 6.0e-5},
}
PAPER_SFT_LR = {"7b": 1.0e-5, "14b": 2.0e-6}
PAPER_COMMON = {"betas": (0.9, 0.95), "eps": 1e-8, "warmup_ratio": 0.03, "schedule": "constant"}
PAPER_TOKENS = 90e9  # "around 90 billion tokens"
PAPER_CONTEXT = 8192
HYPERPARAMETER_KEYS = {"lr", "betas", "eps", "weight_decay", "grad_clip", "name", "warmup_ratio", "seq_len",
                       "zero_stage", "micro_batch_size", "grad_accum", "max_steps", "precision",
                       "attn_implementation", "gradient_checkpointing", "name_or_path", "init_from", "epochs"}


def _check_common(cfg) -> None:
    o, s = cfg.train.optimizer, cfg.train.schedule
    assert tuple(o.betas) == PAPER_COMMON["betas"]
    assert o.eps == PAPER_COMMON["eps"]
    assert s.name == PAPER_COMMON["schedule"]  # no decay after warm-up
    assert s.warmup_ratio == PAPER_COMMON["warmup_ratio"] and s.warmup_steps == 0
    assert cfg.train.precision == "bf16"
    assert cfg.model.attn_implementation == "flash_attention_2"


@pytest.mark.parametrize("size", sorted(PAPER_PRETRAIN))
def test_pretrain_config_pins_paper_values(size):
    cfg = load_config(pretrain.Config, CONFIGS / "pretrain" / f"{size}.yaml")
    paper = PAPER_PRETRAIN[size]
    assert cfg.model.name_or_path == paper["base"]
    assert cfg.train.optimizer.lr == paper["lr"]
    _check_common(cfg)
    assert cfg.train.seq_len == PAPER_CONTEXT
    t = cfg.train
    tokens = t.max_steps * t.micro_batch_size * t.grad_accum * GPUS * t.seq_len
    assert abs(tokens - PAPER_TOKENS) / PAPER_TOKENS < 0.01, f"{tokens:.3e} tokens, not ~90B"


@pytest.mark.parametrize("size", sorted(PAPER_SFT_LR))
def test_sft_config_pins_paper_values(size):
    cfg = load_config(sft.Config, CONFIGS / "sft" / f"{size}.yaml")
    lr = PAPER_SFT_LR[size]
    assert cfg.train.optimizer.lr == lr
    assert len(cfg.stages) >= 2, "multi-stage SFT"
    for name, stage in cfg.stages.items():
        assert stage.lr == lr, f"stage {name}"
    _check_common(cfg)
    assert cfg.data.train_on == "all" and cfg.data.default_system_prompt  # masked system/user turns
    assert cfg.missing_init == "error"
    # Stage 1 starts from the export of the same size's continued pretraining.
    pre = load_config(pretrain.Config, CONFIGS / "pretrain" / f"{size}.yaml")
    assert Path(cfg.init_from) == Path(pre.runs_dir) / pretrain.RECIPE / pre.run_name / "export"


def _paper_scale_yamls() -> list[Path]:
    return sorted(p for p in CONFIGS.glob("*/*.yaml") if p.stem != "tiny")


@pytest.mark.parametrize("path", _paper_scale_yamls(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_hyperparameter_line_cites_the_report_or_says_our_choice(path):
    uncited = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"^\s*([A-Za-z_]+):\s*(\S[^#]*?)?\s*(#.*)?$", line)
        if not m or m.group(1) not in HYPERPARAMETER_KEYS or not m.group(2):
            continue
        comment = m.group(3) or ""
        if not re.search(r"paper §\d|our choice", comment):
            uncited.append(f"{path.name}:{lineno}: {line.strip()}")
    assert not uncited, "hyperparameters without a source comment:\n" + "\n".join(uncited)


@pytest.mark.parametrize("path", [p for p in _paper_scale_yamls() if p.parent.name != "feedback"],  # data recipe
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_batch_settings_fit_80gb_gpus_per_the_planner(path):
    data = read_yaml(path)
    if "base" in data:  # the planner merges the base itself; the Config loader is the reference for values
        cfg = load_config(pretrain.Config if path.parent.name == "pretrain" else sft.Config, path)
        data = {"model": {"name_or_path": cfg.model.name_or_path,
                          "gradient_checkpointing": cfg.model.gradient_checkpointing},
                "train": {"seq_len": cfg.train.seq_len, "zero_stage": cfg.train.zero_stage,
                          "micro_batch_size": cfg.train.micro_batch_size, "grad_accum": cfg.train.grad_accum}}
    cluster = Cluster(gpus_per_node=GPUS, nodes=1, gpu_memory_gib=80.0)
    plan = build_plan(request_from_recipe(data, cluster, PAPER_TOKENS))
    train, model = data["train"], data["model"]
    row = next(r for r in plan["per_gpu"] if r["zero_stage"] == train["zero_stage"]
               and r["checkpointing"] == bool(model["gradient_checkpointing"]))
    assert 1 <= train["micro_batch_size"] <= row["largest_micro_batch"], row
    # And it is the largest that fits: a smaller one would waste the GPUs.
    assert train["micro_batch_size"] == row["largest_micro_batch"], row
