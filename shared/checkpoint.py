"""Checkpoints that survive crashes, and the Hugging Face export.

`checkpoints/step-N/` holds
  engine/               DeepSpeed engine state: weights, optimizer (per-rank ZeRO shards), lr scheduler
  state-rank<R>.pt      trainer state (step, token counters, data cursor, metric window) and RNG states
  hf/                   a Hugging Face export of the weights at step N with the tokenizer (for evaluators)
  COMPLETE              written last: JSON with the step and the size of every file
Every rank writes into `checkpoints/.step-N.tmp/`; rank 0 writes COMPLETE and renames the folder into place,
so a crash at any moment leaves either the whole new checkpoint or none of it, and the older ones untouched.
On resume (shared/resume.py) a folder without COMPLETE, or whose files do not match the sizes recorded there,
or whose state fails to load, is a bad checkpoint: an error naming it, or with train.on_bad_checkpoint=previous
a warning and the previous complete one. Never a silent restart from step 0.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.distributed import barrier

log = logging.getLogger(__name__)

COMPLETE = "COMPLETE"
ENGINE_TAG = "engine"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint could not be written; the previous ones are intact."""


class CheckpointLoadError(RuntimeError):
    """A run cannot resume from its checkpoints; the message names the checkpoint and the reason."""


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step}"


def _tmp_dir(root: Path, step: int) -> Path:
    return root / f".step-{step}.tmp"


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != COMPLETE
    }


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def check_checkpoint(folder: Path) -> str | None:
    """None when `folder` is a complete checkpoint, else the reason it is not."""
    marker = folder / COMPLETE
    if not marker.exists():
        return f"no {COMPLETE} marker (the run stopped while writing it)"
    try:
        expected = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError) as e:
        return f"unreadable {COMPLETE} marker ({e})"
    actual = _file_sizes(folder)
    for name, size in expected.items():
        if name not in actual:
            return f"missing file {name}"
        if actual[name] != size:
            return f"file {name} has {actual[name]} bytes, {size} were written"
    return None


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """All step-N folders, newest first (complete or not)."""
    if not root.exists():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found, reverse=True)


def complete_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, newest first; each skipped one is reported with its reason."""
    good = []
    for step, path in list_checkpoints(root):
        reason = check_checkpoint(path)
        if reason is None:
            good.append((step, path))
        else:
            log.warning("skipping checkpoint %s: %s", path, reason)
    return good


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def export_hf(engine, hf_dir: Path, tokenizer, is_main: bool) -> None:
    """Write safetensors + config + tokenizer (with chat template) into hf_dir; ZeRO-3 weights are gathered.

    Every rank must call this (the ZeRO-3 gather is collective); only the main rank writes.
    """
    from shared.tokenizer import ensure_chat_template

    module = engine.module if hasattr(engine, "module") else engine
    state = full_state_dict(engine)
    if is_main:
        hf_dir.mkdir(parents=True, exist_ok=True)
        module.save_pretrained(hf_dir, state_dict=state, safe_serialization=True)
        ensure_chat_template(tokenizer)
        tokenizer.save_pretrained(hf_dir)


def full_state_dict(engine) -> dict[str, torch.Tensor] | None:
    """The complete (gathered) weights on CPU, on the main rank; collective under ZeRO-3."""
    module = engine.module if hasattr(engine, "module") else engine
    stage = engine.zero_optimization_stage() if hasattr(engine, "zero_optimization_stage") else 0
    if stage == 3:
        return engine._zero3_consolidated_16bit_state_dict()
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_checkpoint(
    root: Path,
    step: int,
    engine,
    tokenizer,
    trainer_state: dict[str, Any],
    rank: int,
    keep_last: int,
) -> Path:
    """Write checkpoints/step-<step> atomically on every rank; returns its path. Raises CheckpointError."""
    tmp, final = _tmp_dir(root, step), step_dir(root, step)
    previous = [p.name for _, p in list_checkpoints(root) if check_checkpoint(p) is None]
    try:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        engine.save_checkpoint(str(tmp), tag=ENGINE_TAG, save_latest=False)
        torch.save({**trainer_state, "rng": rng_state()}, tmp / f"state-rank{rank}.pt")
        export_hf(engine, tmp / "hf", tokenizer, is_main=rank == 0)
        barrier()
        if rank == 0:
            _seal(tmp, final, step)
    except OSError as e:
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        kept = ", ".join(previous) if previous else "none"
        raise CheckpointError(
            f"could not write checkpoint {final}: {e}. Earlier complete checkpoints are intact ({kept}); "
            "free disk space and re-run the same command to resume."
        ) from e
    barrier()
    if rank == 0:
        rotate(root, keep_last)
    return final


def _seal(tmp: Path, final: Path, step: int) -> None:
    """COMPLETE marker last, then one rename: the folder appears whole or not at all."""
    _fsync_tree(tmp)
    marker = tmp / COMPLETE
    marker.write_text(json.dumps({"step": step, "files": _file_sizes(tmp)}, indent=1))
    with open(marker, "rb") as f:
        os.fsync(f.fileno())
    if final.exists():  # an incomplete folder from an earlier attempt at this step
        stale = final.with_name(final.name + ".stale")
        shutil.rmtree(stale, ignore_errors=True)
        final.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    tmp.rename(final)


def rotate(root: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` complete checkpoints, and leftovers of interrupted writes."""
    for p in root.glob(".step-*.tmp"):
        shutil.rmtree(p, ignore_errors=True)
    if keep_last < 1:
        return
    complete = [(s, p) for s, p in list_checkpoints(root) if check_checkpoint(p) is None]
    newest = complete[0][0] if complete else -1
    for _, p in complete[keep_last:]:
        shutil.rmtree(p, ignore_errors=True)
    for s, p in list_checkpoints(root):  # incomplete folders older than the newest complete one are dead
        if s < newest and check_checkpoint(p) is not None:
            shutil.rmtree(p, ignore_errors=True)


def saved_world_size(folder: Path) -> int:
    """How many ranks wrote the checkpoint (each writes its own state-rank<R>.pt)."""
    return len(list(folder.glob("state-rank*.pt")))


def load_checkpoint(folder: Path, engine, rank: int) -> dict[str, Any]:
    """Load engine state (weights, optimizer, scheduler) and return this rank's trainer state; raises on failure."""
    load_path, _ = engine.load_checkpoint(str(folder), tag=ENGINE_TAG)
    if load_path is None:
        raise RuntimeError("DeepSpeed found no engine state")
    state_file = folder / f"state-rank{rank}.pt"
    if not state_file.exists():
        state_file = folder / "state-rank0.pt"  # resumed with more ranks than were saved (stage 0 only)
    return torch.load(state_file, weights_only=False)
