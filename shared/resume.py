"""Resume that cannot lie: the checkpoint every rank continues from, or an error that names it and why.

Rank 0 lists the step-N folders (a shared filesystem is assumed under several ranks) with the reason each one is
unsound (no COMPLETE marker, a file of another size than was written) and broadcasts the list. Newest first,
every rank loads the candidate and the ranks exchange their errors, so either all of them resume from the same
step or none does. A bad checkpoint stops the run with its path and the reason; with
`train.on_bad_checkpoint=previous` it is a warning and the previous complete checkpoint is tried. A run that has
checkpoints never silently starts again from step 0: when none of them loads, that is an error too. Nothing is
written or truncated before the choice is made (metrics.jsonl is truncated only after a successful load).

World size: the data cursor (shared/data.py) and the schedule carry over to any number of ranks, and so does
the engine state without ZeRO partitioning (train.zero_stage=0 in fp32: one file holds all of it). Under ZeRO
(stages 1-3, and bf16, which runs ZeRO-1's BF16_Optimizer) the optimizer state is sharded per rank and
DeepSpeed loads such shards only at the world size that wrote them, so another world size is refused with a
message saying so. (DeepSpeed's universal-checkpoint conversion, `deepspeed.checkpoint.ds_to_universal`, would
re-shard them, but it requires a `universal_checkpoint_info` client state that these checkpoints do not carry:
it stops with "Required universal_checkpoint_info state is missing".)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shared.checkpoint import (
    CheckpointLoadError,
    check_checkpoint,
    list_checkpoints,
    load_checkpoint,
    saved_world_size,
)
from shared.distributed import DistInfo, all_gather_object, broadcast_object

log = logging.getLogger(__name__)

POLICIES = ("error", "previous")


def resume(root: Path, engine, dist: DistInfo, policy: str) -> tuple[int, dict[str, Any]] | None:
    """(step, this rank's trainer state) of the checkpoint all ranks loaded, None when there is none to resume.

    Raises CheckpointLoadError (on every rank) when a checkpoint cannot be resumed from under `policy`.
    """
    if policy not in POLICIES:
        raise ValueError(f"on_bad_checkpoint must be one of {POLICIES}, got {policy!r}")
    listed = [(s, str(p), check_checkpoint(p)) for s, p in list_checkpoints(root)] if dist.is_main else None
    found: list[tuple[int, str, str | None]] = broadcast_object(listed)
    problems = []
    for step, name, reason in found:
        path = Path(name)
        state = None
        if reason is None:
            refuse_other_world_size(path, engine, dist.world_size)
            state, reason = _load_on_all_ranks(path, step, engine, dist)
        if state is not None:
            log.info("resuming from %s", path)
            return step, state
        problems.append(f"{path}: {reason}")
        if policy == "error":
            raise CheckpointLoadError(
                f"checkpoint {path} cannot be resumed from: {reason}. Nothing was changed. Fix or remove it, or "
                "re-run with train.on_bad_checkpoint=previous to resume from the previous complete checkpoint."
            )
        log.warning("checkpoint %s cannot be resumed from: %s; trying the previous one "
                    "(train.on_bad_checkpoint=previous)", path, reason)
    if problems:
        raise CheckpointLoadError(
            f"no checkpoint in {root} can be resumed from ({'; '.join(problems)}); refusing to start again from "
            f"step 0: move {root} away to start a new run."
        )
    return None


def refuse_other_world_size(path: Path, engine, world_size: int) -> None:
    saved = saved_world_size(path)
    stage = engine.zero_optimization_stage()
    if saved == world_size or stage == 0:
        return
    raise CheckpointLoadError(
        f"checkpoint {path} was written by {saved} ranks and this run has {world_size}: under ZeRO-{stage} "
        f"(bf16 runs ZeRO-1 at least) the optimizer state is sharded per rank and DeepSpeed loads it only at the "
        f"world size that wrote it. Resume with {saved} ranks, or start a new run (another run_name) from its "
        f"export {path / 'hf'} (weights only: the optimizer state and the data position start afresh)."
    )


def _load_on_all_ranks(path: Path, step: int, engine, dist: DistInfo) -> tuple[dict[str, Any] | None, str | None]:
    """Every rank loads; a failure on any rank is a failure of the checkpoint on all (so all agree)."""
    state, error = None, None
    try:
        state = load_checkpoint(path, engine, dist.rank)
        if state.get("step") != step:
            raise ValueError(f"its trainer state says step {state.get('step')}")
    except Exception as e:  # a corrupt file shows up as any of pickle, zip, safetensors or DeepSpeed errors
        error = f"{type(e).__name__}: {e}"
    errors = all_gather_object(error)
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if not failed:
        return state, None
    if dist.world_size == 1:
        return None, f"it does not load ({failed[0][1]})"
    return None, "it does not load (" + "; ".join(f"rank {r}: {e}" for r, e in failed) + ")"
