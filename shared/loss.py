"""Token-level loss of a packed batch: the sum over target tokens, so callers normalise once per optimizer step.

Normalising by the number of target tokens of the whole accumulated batch across all ranks (not the mean of
per-micro-batch means) is what makes gradient accumulation and data parallelism equal to one big batch
(the bug transformers fixed in PR #34191).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shared.chat import IGNORE_INDEX


def forward_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits for a packed batch. No attention_mask and no KV cache: transformers then builds the
    block-diagonal causal mask from the position_ids restarts (a cache would disable that detection)."""
    return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits


def token_loss_sum(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over target tokens, number of target tokens)."""
    logits = forward_logits(model, batch)[:, :-1]
    targets = batch["labels"][:, 1:].to(logits.device)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return loss, int((targets != IGNORE_INDEX).sum())
