"""The separation probe: passes for transformers' own attention, catches a model whose attention mixes packed
documents (a real attention function built here, as remote modelling code behaves), and the padded fallback
trains exactly as a separating model does on packed rows."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface

from shared.loss import token_loss_sum
from shared.metrics import read_metrics
from shared.modeling import load_model
from shared.packed_attention import use_packed_attention
from shared.packed_loss import packed_loss_sum
from shared.packing import collate_rows
from shared.separation_probe import REPORT_FILE, PackingUnsafeError, probe_separation, unpack_rows
from shared.trainer import Trainer
from tests.shared.trainer_helpers import one_thread, tiny_config, tiny_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

MIXING = "causal_only_test"


def causal_only_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Causal attention over the whole row: ignores the mask and the position_ids restarts, as an attention that
    builds its own causal mask does (Qwen v1's remote code)."""
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling, is_causal=True)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(MIXING, causal_only_attention)
AttentionMaskInterface.register(MIXING, lambda *args, **kwargs: None)


def tiny_model(tmp_path, attn: str, dtype=torch.float32):
    tok, ds = tiny_data(tmp_path)
    cfg = tiny_config(tmp_path / "runs", f"model.attn_implementation={'eager' if attn == 'eager' else 'sdpa'}")
    model = load_model(cfg.model, tok, precision="fp32", seed=0).to(dtype)
    if attn == "sdpa_packed":
        assert use_packed_attention(model)
    elif attn == MIXING:
        model.set_attn_implementation(MIXING)
    return model, tok, ds


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("attn", ["sdpa_packed", "eager"])
def test_probe_passes_for_tiny_qwen2(tmp_path, attn, dtype):
    model, _, _ = tiny_model(tmp_path, attn, dtype)
    r = probe_separation(model, "tiny")
    assert r.passed and r.attn_implementation == attn, r
    # the probe is sensitive: attending across the boundary would have moved the logits far beyond tolerance
    assert r.crossing_error > 5 * r.tolerance, r


def test_probe_fails_for_attention_that_mixes_documents(tmp_path):
    model, _, _ = tiny_model(tmp_path, MIXING)
    r = probe_separation(model, "tiny-mixing")
    assert not r.passed and r.error > 100 * r.tolerance, r


def test_run_stops_before_the_first_step_and_names_the_remedies(tmp_path):
    model, tok, ds = tiny_model(tmp_path, MIXING)
    cfg = tiny_config(tmp_path / "runs", "model.name_or_path=tiny-mixing-model")
    with pytest.raises(PackingUnsafeError) as e:
        Trainer(cfg, recipe="t", dataset=ds, model=model, tokenizer=tok).train()
    msg = str(e.value)
    assert "tiny-mixing-model" in msg and "data.packing=padded" in msg and "per-document attention" in msg
    run_dir = tmp_path / "runs" / "t" / "t"
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()
    assert json.loads((run_dir / REPORT_FILE).read_text())["passed"] is False


def test_unpacked_rows_give_the_packed_loss(tmp_path):
    """The fallback trains on the same targets: per-document padded rows == packed rows, for a separating model."""
    model, tok, ds = tiny_model(tmp_path, "sdpa_packed")
    rows = sorted((ds[i] for i in range(len(ds))), key=lambda r: -int((r.position_ids == 0).sum()))[:2]
    unpacked = unpack_rows(rows, tok.pad_token_id)
    assert len(unpacked) > len(rows)
    with torch.no_grad():
        packed_loss, n_packed = packed_loss_sum(model, collate_rows(rows, tok.pad_token_id))
        model.set_attn_implementation(MIXING)  # one document per row: nothing to mix with
        padded_loss, n_padded = token_loss_sum(model, collate_rows(unpacked, tok.pad_token_id))
    assert n_packed == n_padded
    torch.testing.assert_close(padded_loss, packed_loss, rtol=1e-5, atol=0)


def test_fallback_pads_says_so_and_trains_as_a_separating_model(tmp_path, caplog):
    steps = ["train.max_steps=3", "train.save_every=10"]
    model, tok, ds = tiny_model(tmp_path, MIXING)
    cfg = tiny_config(tmp_path / "runs", "run_name=fallback", "model.allow_padded_fallback=true", *steps)
    with caplog.at_level(logging.WARNING, logger="shared.separation_probe"):
        Trainer(cfg, recipe="t", dataset=ds, model=model, tokenizer=tok).train()
    assert any("padded row per document" in r.getMessage() for r in caplog.records)
    record = json.loads((tmp_path / "runs" / "t" / "fallback" / REPORT_FILE).read_text())
    assert record["action"] == "padded-fallback" and not record["passed"]

    reference, _, _ = tiny_model(tmp_path, "sdpa_packed")
    cfg = tiny_config(tmp_path / "runs", "run_name=packed", *steps)
    Trainer(cfg, recipe="t", dataset=ds, model=reference, tokenizer=tok).train()
    assert json.loads((tmp_path / "runs" / "t" / "packed" / REPORT_FILE).read_text())["action"] == "packed"
    fallback = [r["loss"] for r in read_metrics(tmp_path / "runs" / "t" / "fallback")]
    packed = [r["loss"] for r in read_metrics(tmp_path / "runs" / "t" / "packed")]
    assert len(fallback) == 3
    assert fallback == pytest.approx(packed, rel=1e-5)
