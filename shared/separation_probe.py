"""Before the first step on packed rows: check that the model keeps packed documents apart.

A packed row holds several documents, with position_ids restarting at each one and no attention mask. Whether
a document then attends only to itself depends on the model: transformers' own models build a block-diagonal
mask from the restarts (sdpa, eager) or take flash-attention's varlen path, and "sdpa_packed" splits the row;
a model with its own attention code (trust_remote_code checkpoints such as Qwen v1's modelling code) may build
a plain causal mask and its own positions, and then trains on contaminated attention with losses that look
normal. So the trainer asks the model itself: two short documents packed in one row must give the second one
the same logits (within the dtype's tolerance) as that document alone. Cost: three forwards of 24 tokens.

On failure the run stops with the remedies, unless `model.allow_padded_fallback=true`: then every packed row is
cut into one padded row per document (`unpack_rows`) before collation, which trains on the same targets and
the same tokens with attention that cannot cross a document (padding only ever follows a document), and the
run folder records it (separation_probe.json).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from shared.chat import IGNORE_INDEX
from shared.loss import forward_logits
from shared.packing import Row, positions_from_starts

log = logging.getLogger(__name__)

# Allowed difference of doc B's logits, packed vs alone (see _relative_error): reduction order differs between the
# two forwards (one row vs two documents, other kernels), nothing else may.
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8, torch.bfloat16: 3e-2, torch.float16: 5e-3}
REPORT_FILE = "separation_probe.json"


class PackingUnsafeError(RuntimeError):
    """The model lets a packed document attend to the one before it."""


@dataclass
class ProbeResult:
    model: str
    attn_implementation: str
    dtype: str
    error: float  # relative difference of doc B's logits, packed vs alone (_relative_error)
    crossing_error: float  # the same for doc B attending across the boundary (what a mixing model would give)
    tolerance: float
    passed: bool
    seconds: float
    action: str = "packed"  # packed | padded-fallback


def _probe_documents(vocab_size: int, lengths: tuple[int, int] = (11, 13)) -> tuple[torch.Tensor, torch.Tensor]:
    """Two documents of distinct random tokens, drawn from a private generator (the run's RNG stays untouched)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randperm(min(vocab_size, 4096), generator=g)[: sum(lengths)]
    return ids[: lengths[0]], ids[lengths[0] :]


def _logits(model: torch.nn.Module, ids: torch.Tensor, positions: torch.Tensor, device) -> torch.Tensor:
    batch = {"input_ids": ids[None].to(device), "position_ids": positions[None].to(device)}
    return forward_logits(model, batch)[0].float()


@torch.no_grad()
def probe_separation(model: torch.nn.Module, name: str = "") -> ProbeResult:
    """Doc B's logits packed after doc A (positions restarting) vs alone, called as the trainer calls the model."""
    t0 = time.perf_counter()
    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 0) or 256)
    param = next(model.parameters())
    was_training = model.training
    model.eval()  # dropout would make the two forwards differ
    try:
        a, b = _probe_documents(vocab)
        row = torch.cat([a, b])
        restart = torch.cat([torch.arange(len(a)), torch.arange(len(b))])
        alone = _logits(model, b, torch.arange(len(b)), param.device)
        packed = _logits(model, row, restart, param.device)[len(a) :]
        crossing = _logits(model, row, torch.arange(len(row)), param.device)[len(a) :]
    finally:
        model.train(was_training)
    error, crossing_error = _relative_error(packed, alone), _relative_error(crossing, alone)
    tol = TOLERANCE.get(param.dtype, 3e-2)
    return ProbeResult(
        model=name or str(getattr(config, "_name_or_path", type(model).__name__)),
        attn_implementation=str(getattr(config, "_attn_implementation", "unknown")),
        dtype=str(param.dtype).removeprefix("torch."),
        error=error,
        crossing_error=crossing_error,
        tolerance=tol,
        passed=error <= tol,
        seconds=time.perf_counter() - t0,
    )


def _relative_error(x: torch.Tensor, ref: torch.Tensor) -> float:
    """The worst token's mean |difference| over the vocabulary, relative to the mean |logit|: averaging over the
    vocabulary keeps bf16 rounding (independent per logit) far below a contamination (which moves them all)."""
    return float((x - ref).abs().mean(dim=-1).max()) / (float(ref.abs().mean()) or 1.0)


def failure_message(r: ProbeResult) -> str:
    return (
        f"model {r.model} (attn_implementation={r.attn_implementation}, {r.dtype}) does not keep packed documents "
        f"apart: a document packed after another gets logits {r.error:.2e} away from the same document alone "
        f"(relative; tolerance {r.tolerance:.0e}; attending across the boundary gives {r.crossing_error:.2e}), so "
        f"training on packed rows would attend across documents. Remedies: data.packing=padded (one conversation "
        f"per row), or a model with per-document attention (a transformers-native architecture, e.g. a Qwen v1 "
        f"checkpoint loaded through shared/qwen_v1.py instead of trust_remote_code), or model.allow_padded_fallback=true "
        f"(every packed row is cut into one padded row per document, recorded in the run folder)."
    )


def packing_guard(model: torch.nn.Module, cfg, run_dir: Path | None, is_main: bool = True) -> bool:
    """The trainer's check before the first step: True when rows must be unpacked. Rows are packed unless the
    recipe's data config says `packing: padded` (pretraining blocks are always packed)."""
    if getattr(getattr(cfg, "data", None), "packing", "packed") == "padded":
        return False
    return check_packed_rows(model, cfg.model.allow_padded_fallback, run_dir, is_main, cfg.model.name_or_path)


def check_packed_rows(
    model: torch.nn.Module, allow_fallback: bool, run_dir: Path | None, is_main: bool = True, name: str = ""
) -> bool:
    """Run the probe; returns True when rows must be unpacked (fallback), raises PackingUnsafeError when refused."""
    r = probe_separation(model, name)
    log.info("separation probe: %s %s, packed-vs-alone %.2e (tolerance %.0e, across-boundary %.2e), %.2f s: %s",
             r.model, r.attn_implementation, r.error, r.tolerance, r.crossing_error, r.seconds,
             "documents kept apart" if r.passed else "DOCUMENTS MIX")
    if r.passed:
        _record(r, run_dir, is_main)
        return False
    if not allow_fallback:
        _record(r, run_dir, is_main)
        raise PackingUnsafeError(failure_message(r))
    r.action = "padded-fallback"
    _record(r, run_dir, is_main)
    log.warning("model.allow_padded_fallback=true: training on one padded row per document instead of packed rows "
                "(same targets, more padding); recorded in %s", REPORT_FILE)
    return True


def _record(r: ProbeResult, run_dir: Path | None, is_main: bool) -> None:
    if run_dir is not None and is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / REPORT_FILE).write_text(json.dumps(asdict(r), indent=2) + "\n")


def unpack_rows(rows: Sequence[Row], pad_id: int) -> list[Row]:
    """Each document of each row as a row of its own (a trailing padding segment is dropped): collate_rows then
    pads them to the longest, and a causal model sees only its own document whatever its mask logic."""
    out = []
    for r in rows:
        starts = np.flatnonzero(r.position_ids == 0).tolist() + [len(r.input_ids)]
        for s, e in zip(starts[:-1], starts[1:], strict=True):
            ids, labels = r.input_ids[s:e], r.labels[s:e]
            if bool(np.all(ids == pad_id)) and bool(np.all(labels == IGNORE_INDEX)):
                continue  # padding segment
            out.append(Row(ids.copy(), labels.copy(), positions_from_starts(e - s, [0])))
    return out or list(rows)
