"""The training loss of a packed batch computed with less work, equal to shared.loss.token_loss_sum.

Two savings, both through public transformers arguments (so ZeRO-3's hooks and any causal LM keep working):
- the B rows are laid end to end as one sequence: position_ids restart at every row and document, so with
  per-document attention ("sdpa_packed" or flash-attention's varlen path) nothing crosses a boundary;
- `logits_to_keep` = the positions that predict a target: the LM head (vocab x hidden per token, a large share
  of a small model's FLOPs) and the fp32 softmax run only where a loss is taken (SFT masks system/user turns).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shared.chat import IGNORE_INDEX
from shared.loss import token_loss_sum

PER_DOCUMENT_ATTENTION = {"sdpa_packed", "flash_attention_2", "flash_attention_3"}


def packed_loss_sum(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over target tokens, number of target tokens)."""
    module = getattr(model, "module", model)
    if getattr(module.config, "_attn_implementation", None) not in PER_DOCUMENT_ATTENTION:
        return token_loss_sum(model, batch)
    ids, pos, labels = batch["input_ids"], batch["position_ids"], batch["labels"]
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != IGNORE_INDEX  # position t predicts label t+1
    keep_idx = torch.nonzero(keep.reshape(-1)).flatten()
    if keep_idx.numel() == 0:
        return token_loss_sum(model, batch)
    out = model(input_ids=ids.reshape(1, -1), position_ids=pos.reshape(1, -1), use_cache=False,
                logits_to_keep=keep_idx.to(ids.device))
    logits = out.logits[0]
    gold = labels.reshape(-1)[keep_idx + 1].to(logits.device)
    loss = F.cross_entropy(logits.float(), gold, reduction="sum")
    return loss, int(keep_idx.numel())
