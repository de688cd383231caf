"""Per-document attention for packed rows without a flash-attention kernel (CPU, or GPUs without flash_attn).

transformers' sdpa path turns a packed row (position_ids restarting at each document, no attention_mask) into
a dense block-diagonal (batch, 1, L, L) mask: every row then pays full L x L attention and the masked-kernel
path, although each document only attends to itself. "sdpa_packed" instead runs causal SDPA once per document,
on views of the row (cost sum of len^2 instead of B * L^2, and the fast is_causal kernel instead of the masked
one). On GPUs, flash-attention's varlen kernel does this in one launch; this path is for CPU and GPUs
without flash_attn, where one launch per document and layer is the price. With a padding mask, a KV cache, or
unequal query and key lengths it is exactly transformers' sdpa. Registered on import; the trainer switches a
model from "sdpa" to it (`use_packed_attention`); exports keep their original attention setting.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_packed"


def _packed_mask(*args, attention_mask=None, q_length=None, kv_length=None, q_offset=0, **kwargs):
    """No dense mask for the packed training case (the attention below reads the documents from position_ids)."""
    if attention_mask is None and q_offset == 0 and q_length == kv_length:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, q_length=q_length, kv_length=kv_length,
                     q_offset=q_offset, **kwargs)


def document_bounds(position_ids: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Per row, the [start, end) of each document: a document starts wherever the position does not go up by 1."""
    pos = position_ids.cpu()
    starts = torch.ones_like(pos, dtype=torch.bool)
    starts[:, 1:] = pos[:, 1:] != pos[:, :-1] + 1
    bounds = []
    for row in starts:
        s = torch.nonzero(row).flatten().tolist() + [row.numel()]
        bounds.append(list(zip(s[:-1], s[1:], strict=True)))
    return bounds


def sdpa_packed_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    position_ids = kwargs.get("position_ids")
    q_len, kv_len = query.shape[2], key.shape[2]
    if attention_mask is not None or position_ids is None or q_len != kv_len or kwargs.get("sliding_window"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    bounds = document_bounds(position_ids.expand(query.shape[0], -1))
    if all(len(b) == 1 for b in bounds):
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling, is_causal=True)
        return out.transpose(1, 2).contiguous(), None
    # One causal SDPA call per document, on views of the row: cost sum(len^2), where padding every document to
    # the longest one (one batched call) cost n_docs * longest^2, about 3x more on GSM8K-sized conversations.
    # split (not slicing): its backward is one concatenation, where each slice's backward fills a whole
    # zero tensor.
    rows = []
    for q, k, v, docs in zip(query.split(1), key.split(1), value.split(1), bounds, strict=True):
        lengths = [e - s for s, e in docs]
        rows.append(torch.cat([
            F.scaled_dot_product_attention(dq, dk, dv, dropout_p=dropout, scale=scaling, is_causal=True)
            for dq, dk, dv in zip(q.split(lengths, dim=2), k.split(lengths, dim=2), v.split(lengths, dim=2),
                                  strict=True)], dim=2))
    out = torch.cat(rows, dim=0) if len(rows) > 1 else rows[0]
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, sdpa_packed_forward)
AttentionMaskInterface.register(NAME, _packed_mask)


def use_packed_attention(model: torch.nn.Module) -> bool:
    """Switch a model that runs "sdpa" to per-document SDPA; returns whether it switched."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    # a module whose config picks an attention implementation is a transformers model (or forwards to one)
    cast(PreTrainedModel, model).set_attn_implementation(NAME)
    return True


def restore_attention(model: torch.nn.Module, previous: str = "sdpa") -> None:
    if getattr(model.config, "_attn_implementation", None) == NAME:
        cast(PreTrainedModel, model).set_attn_implementation(previous)
