"""Per-document attention for packed rows without a flash-attention kernel (CPU, or GPUs without flash_attn).

transformers' sdpa path turns a packed row (position_ids restarting at each document, no attention_mask) into
a dense block-diagonal (batch, 1, L, L) mask: every row then pays full L x L attention and the masked-kernel
path, although each document only attends to itself. "sdpa_packed" instead runs causal SDPA once per document
(documents gathered into one padded batch of documents: cost n_docs * longest^2 instead of B * L^2, and the
fast is_causal kernel instead of the masked one). With a padding mask, a KV cache, or
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
    batch, heads, length, _ = query.shape
    bounds = document_bounds(position_ids.expand(batch, -1))
    if all(len(b) == 1 for b in bounds):
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling, is_causal=True)
        return out.transpose(1, 2).contiguous(), None
    # Documents gathered into a (documents, heads, longest, dim) batch: one causal SDPA call, one gather in and one
    # out. A document's tail padding sits after all its real tokens, so causality keeps it out of their attention.
    lengths = torch.tensor([e - s for docs in bounds for s, e in docs])
    starts = torch.tensor([b * length + s for b, docs in enumerate(bounds) for s, _ in docs])
    longest = int(lengths.max())
    offsets = torch.arange(longest)
    valid = offsets[None, :] < lengths[:, None]
    gather = torch.where(valid, starts[:, None] + offsets[None, :], 0).reshape(-1).to(query.device)
    n_docs = len(lengths)

    def by_document(t: torch.Tensor) -> torch.Tensor:
        flat = t.transpose(0, 1).reshape(heads, batch * length, -1)
        return flat[:, gather].reshape(heads, n_docs, longest, -1).transpose(0, 1)

    docs_out = F.scaled_dot_product_attention(by_document(query), by_document(key), by_document(value),
                                              dropout_p=dropout, scale=scaling, is_causal=True)
    real = torch.nonzero(valid.reshape(-1)).flatten().to(query.device)  # documents tile the rows in order
    flat_out = docs_out.transpose(0, 1).reshape(heads, n_docs * longest, -1)[:, real]
    out = flat_out.reshape(heads, batch, length, -1).transpose(0, 1)
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
