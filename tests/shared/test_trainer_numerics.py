"""Numerics of the training step: gradient checkpointing changes nothing; bf16 accumulates gradients in fp32
(and a bf16 run resumes exactly)."""

from __future__ import annotations

import pytest
import torch

from bench.gpu_steps import bf16_accumulation_errors
from shared.metrics import read_metrics
from shared.modeling import load_model
from shared.packed_attention import use_packed_attention
from shared.packed_loss import packed_loss_sum
from shared.packing import collate_rows
from shared.trainer import Trainer, build_ds_config
from tests.shared.trainer_helpers import one_thread, tiny_config, tiny_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def _loss_and_grads(model, batch, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)  # the same dropout masks for both models
    loss, n = packed_loss_sum(model, batch)
    (loss / n).backward()
    return loss.detach() / n, {name: p.grad.clone() for name, p in model.named_parameters()}


def test_gradient_checkpointing_changes_neither_loss_nor_gradients(tmp_path):
    tok, ds = tiny_data(tmp_path)
    batch = collate_rows([ds[i] for i in range(4)], tok.pad_token_id)
    out = {}
    # Attention dropout on: the recomputation must replay the forward's random masks, not draw new ones.
    for checkpointing in (False, True):
        cfg = tiny_config(tmp_path, f"model.gradient_checkpointing={checkpointing}", "model.tiny.attention_dropout=0.1")
        model = load_model(cfg.model, tok, "fp32", seed=0)
        use_packed_attention(model)
        model.train()
        assert model.is_gradient_checkpointing == checkpointing
        out[checkpointing] = _loss_and_grads(model, batch, seed=1)
    (loss_off, grads_off), (loss_on, grads_on) = out[False], out[True]
    torch.testing.assert_close(loss_on, loss_off, rtol=1e-6, atol=0)
    for name, g in grads_off.items():
        torch.testing.assert_close(grads_on[name], g, rtol=0, atol=1e-6, msg=name)
    # ... and dropout is really on: another seed gives another loss.
    assert abs(float(_loss_and_grads(model, batch, seed=2)[0] - loss_on)) > 1e-4


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_bf16_deepspeed_config_accumulates_and_reduces_in_fp32(tmp_path, stage):
    cfg = tiny_config(tmp_path, f"train.zero_stage={stage}", "train.precision=bf16")
    ds = build_ds_config(cfg, world_size=8, dtype=torch.bfloat16)
    assert ds["bf16"]["enabled"] and ds["data_types"]["grad_accum_dtype"] == "fp32"
    assert ds["communication_data_type"] == "fp32"
    # DeepSpeed 0.19.8 has fp32 accumulation under bf16 only with ZeRO (BF16_Optimizer from stage 1).
    assert ds["zero_optimization"]["stage"] == max(stage, 1)
    assert "data_types" not in build_ds_config(cfg, world_size=8, dtype=torch.float32)


# fp32 accumulation: summing 8 bf16 gradients in fp32 has a relative error of at most 7 * 2^-24 = 4.2e-7 per
# element (recursive summation, (n-1)u with fp32's u = 2^-24), so DeepSpeed's 8x1 accumulated gradient equals
# the exact (fp64) sum of the micro-batch gradients within 1e-6. bf16 accumulation (u = 2^-8) is ~3e-3 off.
FP32_SUM_OF_8 = 1e-6
# 1x8 vs 8x1: the two backward passes themselves run in bf16 on different shapes, so their gradients differ by
# bf16 compute noise whatever the accumulation (7.6e-3 relative L2 measured here): bounded by 4 bf16 unit
# roundoffs, 2^-6; the accumulation adds at most the 4.2e-7 above to it.
BF16_COMPUTE_NOISE = 2.0**-6


@pytest.mark.parametrize("stage", [0, 2])
def test_bf16_accumulation_is_fp32_and_one_by_eight_agrees_with_eight_by_one(tmp_path, stage):
    tok, ds = tiny_data(tmp_path)
    cfg = tiny_config(tmp_path)

    def bf16_model():
        model = load_model(cfg.model, tok, "bf16", seed=0)
        use_packed_attention(model)
        return model

    errors = bf16_accumulation_errors(bf16_model, [ds[i] for i in range(8)], tok.pad_token_id, stage)
    print(f"ZeRO-{stage} bf16, relative L2 differences: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    assert errors["8x1 vs exact sum"] <= FP32_SUM_OF_8 < errors["bf16-accumulated vs exact sum"]
    assert errors["8x1 vs 1x8"] <= BF16_COMPUTE_NOISE


def test_bf16_run_at_stage_0_trains_with_fp32_accumulation_and_resumes_exactly(tmp_path):
    tok, ds = tiny_data(tmp_path)
    args = ("train.precision=bf16", "train.save_every=2", "train.max_steps=4")
    for name, stops in (("straight", [4]), ("resumed", [2, 4])):
        for steps in stops:
            cfg = tiny_config(tmp_path / "runs", *args, f"run_name={name}", f"train.max_steps={steps}")
            run = Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok)
            run.train()
            # DeepSpeed 0.19.8 accumulates in fp32 under bf16 only with ZeRO: its BF16_Optimizer (ZeRO-1).
            assert run.engine.zero_optimization_stage() == 1
            assert run.engine.get_data_types() == (torch.bfloat16, torch.float32)
    straight, resumed = (read_metrics(tmp_path / "runs" / "t" / n) for n in ("straight", "resumed"))
    for key in ("loss", "grad_norm", "lr", "tokens"):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key
