"""Per-document SDPA and the target-only loss equal transformers' dense-mask sdpa path (loss and gradients)."""

from __future__ import annotations

import pytest
import torch

from shared.loss import forward_logits, token_loss_sum
from shared.modeling import load_model
from shared.packed_attention import document_bounds, restore_attention, use_packed_attention
from shared.packed_loss import packed_loss_sum
from shared.packing import collate_rows
from tests.shared.trainer_helpers import one_thread, tiny_config, tiny_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def loss_and_grads(model, batch, fn):
    model.zero_grad()
    loss, n = fn(model, batch)
    loss.backward()
    return float(loss.detach()), n, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("packing", ["packed", "padded"])
def test_packed_attention_and_loss_equal_dense_mask_sdpa(tmp_path, packing):
    tok, ds = tiny_data(tmp_path, packing=packing)
    cfg = tiny_config(tmp_path)
    model = load_model(cfg.model, tok, seed=3)
    batch = collate_rows([ds[i] for i in range(5)], tok.pad_token_id)
    assert any(len(b) > 1 for b in document_bounds(batch["position_ids"]))  # several documents per row
    ref_loss, ref_n, ref_grads = loss_and_grads(model, batch, token_loss_sum)
    with torch.no_grad():
        ref_logits = forward_logits(model, batch)

    assert use_packed_attention(model) and model.config._attn_implementation == "sdpa_packed"
    loss, n, grads = loss_and_grads(model, batch, packed_loss_sum)
    assert n == ref_n and loss == pytest.approx(ref_loss, rel=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(forward_logits(model, batch), ref_logits, rtol=0, atol=1e-5)
        # A padding mask (generation-style call) takes transformers' own sdpa path unchanged.
        mask = (batch["labels"] != -100).long()
        mask[:, 0] = 1
        dense = model(input_ids=batch["input_ids"], attention_mask=mask, use_cache=False).logits
        restore_attention(model)
        plain = model(input_ids=batch["input_ids"], attention_mask=mask, use_cache=False).logits
    torch.testing.assert_close(dense, plain, rtol=0, atol=1e-6)


def test_document_bounds_follow_position_restarts():
    pos = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])
    assert document_bounds(pos) == [[(0, 3), (3, 5), (5, 6)], [(0, 6)]]
