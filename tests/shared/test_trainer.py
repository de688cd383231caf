"""The trainer proved by equivalence on a tiny fp32 model: accumulation == one batch, resume == uninterrupted,
export == trained model, frozen == unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from shared.config import ChatDataConfig
from shared.data import ResumableSampler, SamplerLayout
from shared.loss import forward_logits, token_loss_sum
from shared.metrics import read_metrics
from shared.modeling import load_model
from shared.packing import collate_rows
from shared.schedules import lr_at
from shared.trainer import Trainer, build_ds_config
from tests.shared.trainer_helpers import one_thread, tiny_config, tiny_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


class Crash(Exception):
    """Raised from a checkpoint hook: the run stops right after a complete checkpoint."""


def crash_at(step: int):
    def hook(s, hf_dir, ckpt_dir):
        if s == step:
            raise Crash(s)

    return hook


def test_params_change_frozen_stay_and_export_reproduces_logits(tmp_path):
    tok, ds = tiny_data(tmp_path)
    frozen_name = "model.layers.1.mlp.up_proj.weight"
    cfg = tiny_config(tmp_path / "runs", "train.max_steps=3", "train.save_every=10", f"train.freeze=[{frozen_name}]")
    model = load_model(cfg.model, tok, seed=cfg.train.seed)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = Trainer(cfg, recipe="t", dataset=ds, model=model, tokenizer=tok).train()

    for name, p in model.named_parameters():
        changed = not torch.equal(p.detach(), before[name])
        assert changed == (name != frozen_name), name

    export = result["export_dir"]
    reloaded = AutoModelForCausalLM.from_pretrained(export)
    batch = collate_rows([ds[0], ds[1]], tok.pad_token_id)
    with torch.no_grad():
        torch.testing.assert_close(forward_logits(reloaded, batch), forward_logits(model, batch), rtol=0, atol=1e-5)
    exported_tok = AutoTokenizer.from_pretrained(export)
    text = exported_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text.startswith("<|im_start|>system") and "<|im_start|>user\nhi<|im_end|>" in text

    run_dir = tmp_path / "runs" / "t" / "t"
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3]
    for r in records:
        assert {"loss", "lr", "tokens", "tokens_per_s", "grad_norm", "mfu"} <= r.keys()
    # tokens: cumulative non-pad tokens of the rows actually trained
    assert records[-1]["tokens"] == result["tokens"] > 0
    assert (run_dir / "config.yaml").exists() and json.loads((run_dir / "data_report.json").read_text())["rows"] == len(ds)
    assert (run_dir / "checkpoints" / "step-3" / "COMPLETE").exists()


def _first_step_reference(cfg, tok, ds) -> tuple[float, float]:
    """Loss and gradient norm of the first global batch computed as ONE batch with plain torch."""
    t = cfg.train
    layout = SamplerLayout(t.micro_batch_size * t.grad_accum, 1, 1)
    indices = ResumableSampler(len(ds), t.seed, layout, 0).next_step()[0]
    model = load_model(cfg.model, tok, seed=t.seed)
    loss_sum, n = token_loss_sum(model, collate_rows([ds[i] for i in indices], tok.pad_token_id))
    (loss_sum / n).backward()
    loss_sum = loss_sum.detach()
    # fp64, as the trainer logs it: an fp32 sum of squares over 131k embedding gradients is ~2e-5 off.
    norm = torch.linalg.vector_norm(torch.stack([p.grad.double().norm() for p in model.parameters()]))
    return float(loss_sum / n), float(norm)


def test_grad_accumulation_with_unequal_targets_equals_one_batch(tmp_path):
    # Padded rows: every micro-batch has a different number of target tokens and a different width.
    tok, ds = tiny_data(tmp_path, packing="padded")
    # Adam divides by sqrt(v): float summation-order noise in near-zero gradients moves a weight by ~lr/3000,
    # so the weights are compared at a small lr; loss and gradient norm are compared at 1e-6 relative.
    common = ("train.max_steps=3", "train.save_every=10", "train.schedule.warmup_steps=0", "train.optimizer.lr=3e-4")
    accumulated = tiny_config(tmp_path / "runs", "run_name=accum", "train.micro_batch_size=1", "train.grad_accum=4", *common)
    one_batch = tiny_config(tmp_path / "runs", "run_name=one", "train.micro_batch_size=4", "train.grad_accum=1", *common)
    models = {}
    for cfg in (accumulated, one_batch):
        models[cfg.run_name] = load_model(cfg.model, tok, seed=cfg.train.seed)
        Trainer(cfg, recipe="t", dataset=ds, model=models[cfg.run_name], tokenizer=tok).train()
    a = read_metrics(tmp_path / "runs" / "t" / "accum")
    b = read_metrics(tmp_path / "runs" / "t" / "one")

    ref_loss, ref_norm = _first_step_reference(one_batch, tok, ds)
    assert a[0]["loss"] == pytest.approx(ref_loss, rel=1e-6) and b[0]["loss"] == pytest.approx(ref_loss, rel=1e-6)
    assert a[0]["grad_norm"] == pytest.approx(ref_norm, rel=1e-6) and b[0]["grad_norm"] == pytest.approx(ref_norm, rel=1e-6)
    for ra, rb in zip(a, b, strict=True):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-6)
        assert ra["grad_norm"] == pytest.approx(rb["grad_norm"], rel=1e-6)
    for (name, pa), pb in zip(models["accum"].named_parameters(), models["one"].parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6, msg=name)


def test_lr_follows_schedule_and_resume_equals_uninterrupted(tmp_path):
    tok, ds = tiny_data(tmp_path)
    args = ("train.max_steps=7", "train.save_every=2", "train.schedule.name=cosine",
            "train.schedule.warmup_steps=2", "train.schedule.min_lr_ratio=0.1")
    interrupted = tiny_config(tmp_path / "runs", "run_name=resumed", *args)
    with pytest.raises(Crash):
        Trainer(interrupted, recipe="t", dataset=ds, tokenizer=tok, on_checkpoint=[crash_at(4)],
                log_sample_ids=True).train()
    assert [r["step"] for r in read_metrics(tmp_path / "runs" / "t" / "resumed")] == [1, 2, 3, 4]
    Trainer(interrupted, recipe="t", dataset=ds, tokenizer=tok, log_sample_ids=True).train()
    straight = tiny_config(tmp_path / "runs", "run_name=straight", *args)
    Trainer(straight, recipe="t", dataset=ds, tokenizer=tok, log_sample_ids=True).train()

    resumed = read_metrics(tmp_path / "runs" / "t" / "resumed")
    reference = read_metrics(tmp_path / "runs" / "t" / "straight")
    assert [r["step"] for r in resumed] == list(range(1, 8))
    t = straight.train
    for r in resumed:
        assert r["lr"] == pytest.approx(lr_at(r["step"] - 1, t.optimizer.lr, t.schedule, t.max_steps), rel=1e-12)
    assert [r["loss"] for r in resumed] == [r["loss"] for r in reference]
    assert [r["tokens"] for r in resumed] == [r["tokens"] for r in reference]
    assert resumed[-1]["lr"] == pytest.approx(t.optimizer.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 5))))
    samples = [(tmp_path / "runs" / "t" / n / "samples-rank0.jsonl").read_text() for n in ("resumed", "straight")]
    assert samples[0] == samples[1]
    consumed = [i for line in samples[0].splitlines() for mb in json.loads(line)["indices"] for i in mb]
    assert len(consumed) == 7 * 4 < len(ds) and len(set(consumed)) == len(consumed)  # one epoch: no repeats


def test_init_from_starts_from_an_export_and_is_ignored_on_resume(tmp_path):
    tok, ds = tiny_data(tmp_path)
    stage1 = tiny_config(tmp_path / "runs", "run_name=stage1", "train.max_steps=2")
    first = Trainer(stage1, recipe="t", dataset=ds, tokenizer=tok).train()
    stage2 = tiny_config(tmp_path / "runs", "run_name=stage2", "train.max_steps=2", "train.optimizer.lr=1e-9")
    run = Trainer(stage2, recipe="t", dataset=ds, tokenizer=tok, init_from=first["export_dir"])
    run.train()
    start = AutoModelForCausalLM.from_pretrained(first["export_dir"])
    for (name, p), q in zip(run.engine.module.named_parameters(), start.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)  # lr 1e-9: still stage 1's weights
    # Re-running stage 2 resumes its own checkpoint: with nothing left to train the weights stay the same.
    again = Trainer(stage2, recipe="t", dataset=ds, tokenizer=tok, init_from=tmp_path / "does-not-matter")
    again.train()
    for p, q in zip(again.engine.module.parameters(), run.engine.module.parameters(), strict=True):
        assert torch.equal(p, q)


def test_deepspeed_config_never_carries_a_scheduler_or_optimizer(tmp_path):
    cfg = tiny_config(tmp_path, "train.zero_stage=3", "train.grad_accum=4")
    ds_cfg = build_ds_config(cfg, world_size=2, dtype=torch.float32)
    assert "scheduler" not in ds_cfg and "optimizer" not in ds_cfg
    assert ds_cfg["train_batch_size"] == 2 * 4 * 2 and ds_cfg["zero_optimization"]["stage"] == 3
    assert not ds_cfg["bf16"]["enabled"] and ds_cfg["gradient_clipping"] == cfg.train.optimizer.grad_clip


def test_sft_dataset_helper_reports_what_it_kept(tmp_path):
    tok, ds = tiny_data(tmp_path)
    assert ds.report.kept == 48 and ds.report.rows == len(ds)
    assert np.all([len(r.input_ids) == 128 for r in ds.rows])
    assert ChatDataConfig().packing == "packed"
