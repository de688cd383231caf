"""Numerics of the training step: gradient checkpointing changes nothing; bf16 accumulates gradients in fp32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shared.distributed import init_distributed
from shared.modeling import load_model
from shared.packed_attention import use_packed_attention
from shared.packed_loss import packed_loss_sum
from shared.packing import collate_rows
from shared.trainer import build_ds_config, build_optimizer
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


def _accumulated_bf16_grads(tmp_path, tok, rows, micro_batch: int, stage: int) -> torch.Tensor:
    """All gradients (fp32, flattened) DeepSpeed holds at the accumulation boundary, before the optimizer step."""
    import deepspeed
    from deepspeed.utils import safe_get_full_grad

    accum = len(rows) // micro_batch
    cfg = tiny_config(tmp_path, f"train.zero_stage={stage}", "train.precision=bf16",
                      f"train.micro_batch_size={micro_batch}", f"train.grad_accum={accum}")
    init_distributed()
    model = load_model(cfg.model, tok, "bf16", seed=0)
    use_packed_attention(model)
    engine, *_ = deepspeed.initialize(model=model, optimizer=build_optimizer(model, cfg),
                                      config=build_ds_config(cfg, 1, torch.bfloat16), dist_init_required=False)
    assert engine.get_data_types() == (torch.bfloat16, torch.float32)
    batches = [collate_rows(rows[k:k + micro_batch], tok.pad_token_id) for k in range(0, len(rows), micro_batch)]
    n_targets = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    for k, batch in enumerate(batches):
        loss, _ = packed_loss_sum(engine, batch)
        engine.backward(loss / n_targets, scale_wrt_gas=False)
        if k < len(batches) - 1:
            engine.step()  # not a boundary: DeepSpeed only counts the micro-step
    grads = [safe_get_full_grad(p) for p in engine.module.parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)
    return torch.cat([g.flatten() for g in grads]).double()


def _bf16_micro_grads(tok, rows, n_targets: int) -> list[torch.Tensor]:
    """Each row's bf16 gradient (flattened, as float64), from plain torch on the same bf16 weights."""
    cfg = tiny_config(Path("unused"), "train.precision=bf16")
    model = load_model(cfg.model, tok, "bf16", seed=0)
    use_packed_attention(model)
    out = []
    for row in rows:
        model.zero_grad()
        loss, _ = packed_loss_sum(model, collate_rows([row], tok.pad_token_id))
        (loss / n_targets).backward()
        out.append(torch.cat([p.grad.flatten() for p in model.parameters()]).double())
    return out


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


# fp32 accumulation: summing 8 bf16 gradients in fp32 has a relative error of at most 7 * 2^-24 = 4.2e-7 per
# element (recursive summation, (n-1)u with fp32's u = 2^-24), so DeepSpeed's 8x1 accumulated gradient equals
# the exact (fp64) sum of the micro-batch gradients within 1e-6. bf16 accumulation (u = 2^-8) would be ~1e-3 off.
FP32_SUM_OF_8 = 1e-6
# 1x8 vs 8x1: the two backward passes themselves run in bf16 on different shapes, so their gradients differ by
# bf16 compute noise whatever the accumulation (measured 7.6e-3 here); fp32 accumulation adds nothing to it.


@pytest.mark.parametrize("stage", [0, 2])
def test_bf16_accumulation_is_fp32_and_one_by_eight_agrees_with_eight_by_one(tmp_path, stage):
    tok, ds = tiny_data(tmp_path)
    rows = [ds[i] for i in range(8)]
    n_targets = sum(r.n_targets for r in rows)
    one_by_eight = _accumulated_bf16_grads(tmp_path, tok, rows, micro_batch=8, stage=stage)
    eight_by_one = _accumulated_bf16_grads(tmp_path, tok, rows, micro_batch=1, stage=stage)
    micro = _bf16_micro_grads(tok, rows, n_targets)
    exact = torch.stack(micro).sum(0)
    bf16_sum = micro[0].bfloat16()
    for g in micro[1:]:
        bf16_sum = bf16_sum + g.bfloat16()  # what bf16 accumulation would hold
    errors = {"8x1 vs exact sum": _rel(eight_by_one, exact), "bf16-accumulated vs exact sum": _rel(bf16_sum.double(), exact),
              "8x1 vs 1x8": _rel(eight_by_one, one_by_eight), "bf16-accumulated vs 1x8": _rel(bf16_sum.double(), one_by_eight)}
    print(f"ZeRO-{stage} bf16, relative L2 differences: " + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()))
    assert errors["8x1 vs exact sum"] <= FP32_SUM_OF_8 < errors["bf16-accumulated vs exact sum"]
    assert errors["8x1 vs 1x8"] <= errors["bf16-accumulated vs 1x8"]
