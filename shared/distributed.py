"""Process-group setup that works the same alone, under `deepspeed`/`torchrun`, and under Slurm-launched ranks.

A single process started without a launcher gets RANK=0, WORLD_SIZE=1, a loopback MASTER_ADDR and a free
MASTER_PORT set here; otherwise DeepSpeed would fall back to MPI discovery. gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set_single_process_env() -> list[str]:
    """Fill in the launcher variables for a run started as a plain `python -m ...`; returns the keys it set."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ:
        return []  # a launcher (torchrun, deepspeed, srun wrapper) owns these
    defaults = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    if "MASTER_PORT" not in os.environ:
        defaults["MASTER_PORT"] = str(free_port())
    added = [k for k in defaults if k not in os.environ]
    for k in added:
        os.environ[k] = defaults[k]
    return added


def pick_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed() -> DistInfo:
    """Initialise (once) the default process group through DeepSpeed and say who we are."""
    import deepspeed

    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    device = pick_device(local_rank)
    if not dist.is_initialized():
        added = _set_single_process_env()
        backend = "nccl" if device.type == "cuda" else "gloo"
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
        # The rendezvous address we made up must not leak into subprocesses (an evaluator, a nested run).
        for key in ("MASTER_ADDR", "MASTER_PORT"):
            if key in added:
                os.environ.pop(key)
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), device)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(value: float | int, device: torch.device) -> float:
    """Sum a Python number over all ranks (float64, so token counts stay exact)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def broadcast_object(obj, src: int = 0):
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj) -> list:
    """Every rank's `obj`, in rank order (a one-element list alone)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out

def launched_world_size() -> int:
    """WORLD_SIZE as a launcher (torchrun, srun wrapper) set it; 1 for a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_data_parallel() -> int:
    """Join the launcher's process group for data-parallel work that needs no DeepSpeed (generation, evaluation).

    A no-op for a plain process or an existing group. Returns this process's rank.
    """
    if launched_world_size() > 1 and not dist.is_initialized():
        device = pick_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0 of the group, or of the launcher's environment before the group exists."""
    if dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


def main_then_broadcast(fn, *args, **kwargs):
    """fn(*args, **kwargs) on rank 0 only (writes happen once), its result handed to every rank."""
    result = fn(*args, **kwargs) if is_main() else None
    return broadcast_object(result)
