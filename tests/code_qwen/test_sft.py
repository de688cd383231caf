"""The tiny multi-stage SFT recipe: stage k+1 starts from stage k's weights, each stage is a DESIGN.md run folder
with its own data, steps and lr, the loss is masked on system and user turns, and the final export chats."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from code_qwen import sft
from shared.chat import IGNORE_INDEX
from shared.config import load_config

TINY = ["model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
        "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.seq_len=128",
        "train.micro_batch_size=4", "train.log_every=1", "eval.limit=2", "eval.max_new_tokens=8",
        "eval.batch_size=2", "stdlib_data.max_examples=40"]


def _args(root: Path) -> list[str]:
    data = root / "sft_data"
    return [f"runs_dir={root / 'runs'}", "run_name=t", f"stdlib_data.out_dir={data}",
            f"stages.stage1.train_files=[{data / 'stage1.jsonl'}]",
            f"stages.stage2.train_files=[{data / 'stage2.jsonl'}]",
            f"init_from={root / 'runs' / 'code-pretrain' / 'none' / 'export'}",  # absent: random init, warned
            "train.max_steps=2", "train.save_every=2", *TINY]


def _main(root: Path, args: list[str]):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the local problems file is written under ./data
        return sft.main(args)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("code_sft")
    args = _args(root)
    record = _main(root, args)
    return root, args, record


def _stage_dir(root: Path, stage: str) -> Path:
    return root / "runs" / sft.RECIPE / f"t-{stage}"


def test_each_stage_is_a_design_run_folder_with_its_own_data_and_lr(run):
    root, _, record = run
    assert list(record) == ["stage1", "stage2"]
    lrs = {}
    for stage in ("stage1", "stage2"):
        folder = _stage_dir(root, stage)
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        assert cfg["stage"] == stage and cfg["data"]["train_files"] == [str(root / "sft_data" / f"{stage}.jsonl")]
        lrs[stage] = cfg["train"]["optimizer"]["lr"]
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1, 2]
        assert all({"step", "loss", "lr", "tokens", "tokens_per_s"} <= set(r) for r in rows)
        assert (folder / "checkpoints" / "step-2" / "COMPLETE").exists()
        assert (folder / "export" / "model.safetensors").exists()
        summary = json.loads((folder / "eval" / "local" / "step-2" / "summary.json").read_text())
        assert summary["step"] == 2 and summary["n_problems"] == 2
        assert json.loads((folder / "checkpoints" / "step-2" / "eval" / "local" / "summary.json").read_text()) == summary
    tiny = load_config(sft.Config, sft.DEFAULT_CONFIG)
    assert lrs == {name: stage.lr for name, stage in tiny.stages.items()}
    assert lrs["stage1"] != lrs["stage2"]


def test_top_folder_points_at_the_final_export(run):
    root, _, _ = run
    top = root / "runs" / sft.RECIPE / "t"
    stages = json.loads((top / "stages.json").read_text())
    final = _stage_dir(root, "stage2") / "export"
    assert Path(stages["final_export"]) == final
    assert (top / "export").resolve() == final.resolve()
    assert stages["stages"]["stage2"]["init_from"] == str(_stage_dir(root, "stage1") / "export")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def _initial_weights(cfg: sft.Config, stage: str, init: str) -> dict[str, torch.Tensor]:
    """What the recipe's stage trainer holds before its first step (a fresh run name: nothing to resume)."""
    trainer = sft.build_stage_trainer(replace(cfg, run_name="probe"), stage, init)
    trainer._setup()
    state = {k: v.detach().clone() for k, v in trainer.engine.module.state_dict().items()}
    sft.release(trainer)
    return state


def test_stage_two_starts_from_stage_one_weights(run):
    root, args, _ = run
    cfg = load_config(sft.Config, sft.DEFAULT_CONFIG, args)
    stage1 = _stage_dir(root, "stage1") / "export"
    init = sft.stage_init(cfg, stage1)
    assert init == str(stage1)
    start = _initial_weights(cfg, "stage2", init)
    exported = _weights(stage1)
    assert set(exported) <= set(start)
    for name, tensor in exported.items():
        assert torch.equal(start[name], tensor), name
    # ...and training changed them, so the comparison can fail: stage 2's export differs from its start.
    final = _weights(_stage_dir(root, "stage2") / "export")
    assert any(not torch.equal(final[n], exported[n]) for n in exported)


def test_stage_one_starts_from_the_pretraining_export(run, tmp_path):
    root, args, _ = run
    pretrained = _stage_dir(root, "stage2") / "export"  # any HF export stands in for the code-pretrain one
    cfg = load_config(sft.Config, sft.DEFAULT_CONFIG, [*args, f"init_from={pretrained}"])
    init = sft.stage_init(cfg, None)
    assert init == str(pretrained)
    start = _initial_weights(replace(cfg, runs_dir=str(tmp_path)), "stage1", init)
    for name, tensor in _weights(pretrained).items():
        assert torch.equal(start[name], tensor), name


def test_missing_pretraining_export(run, caplog):
    root, args, _ = run
    cfg = load_config(sft.Config, sft.DEFAULT_CONFIG, args)
    with caplog.at_level(logging.WARNING, logger="code_qwen.sft"):
        assert sft.stage_init(cfg, None) == ""  # the tiny default: random init...
    assert "does not exist" in caplog.text  # ...said in a warning
    strict = replace(cfg, missing_init="error")
    with pytest.raises(SystemExit, match="run the pretraining first"):
        sft.stage_init(strict, None)


def test_loss_is_masked_on_system_and_user_turns(run, tmp_path):
    root, args, _ = run
    first = json.loads((root / "sft_data" / "stage2.jsonl").open().readline())
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(first) + "\n")
    cfg = load_config(sft.Config, sft.DEFAULT_CONFIG, [*args, f"stages.stage2.train_files=[{one}]",
                                                       "train.seq_len=1024"])
    trainer = sft.build_stage_trainer(cfg, "stage2", str(_stage_dir(root, "stage1") / "export"))
    row = trainer.dataset[0]
    targets = [int(t) for t, lab in zip(row.input_ids, row.labels, strict=True) if lab != IGNORE_INDEX]
    answer = next(m["content"] for m in first["messages"] if m["role"] == "assistant")
    # Exactly the assistant's answer and its end-of-turn token are trained; system and user turns are not.
    assert trainer.tokenizer.decode(targets) == answer + "<|im_end|>"
    assert len(targets) < len(row.input_ids) - 10


def test_final_export_generates_with_the_chat_template(run):
    root, _, _ = run
    top = root / "runs" / sft.RECIPE / "t"
    sample = json.loads((top / "chat_sample.json").read_text())
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(top / "export")
    expected = tok.apply_chat_template([{"role": "user", "content": sample["prompt"]}], tokenize=False,
                                       add_generation_prompt=True)
    assert sample["rendered_prompt"] == expected
    assert expected.startswith("<|im_start|>system\n") and expected.endswith("<|im_start|>assistant\n")
    assert sample["new_tokens"] >= 1


def test_rerun_skips_finished_stages(run, caplog):
    root, args, _ = run
    metrics = {s: (_stage_dir(root, s) / "metrics.jsonl").read_text() for s in ("stage1", "stage2")}
    with caplog.at_level(logging.INFO, logger="code_qwen.sft"):
        _main(root, args)
    assert caplog.text.count("already finished") == 2
    assert {s: (_stage_dir(root, s) / "metrics.jsonl").read_text() for s in metrics} == metrics


def test_stage_steps_from_epochs_capped_by_train_max_steps():
    cfg = load_config(sft.Config, sft.DEFAULT_CONFIG, ["train.micro_batch_size=4", "train.grad_accum=2"])
    stage = sft.StageConfig(train_files=["x"], epochs=2.5)
    assert sft.stage_steps(stage, 33, cfg) == 11  # ceil(2.5 * 33 / 8)
    assert sft.stage_steps(stage, 33, replace(cfg, train=replace(cfg.train, max_steps=5))) == 5
    assert sft.stage_steps(sft.StageConfig(train_files=["x"], max_steps=7), 33, cfg) == 7
