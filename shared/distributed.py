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


def _set_single_process_env() -> None:
    """Fill in the launcher variables for a run started as a plain `python -m ...`."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))


def pick_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed() -> DistInfo:
    """Initialise (once) the default process group through DeepSpeed and say who we are."""
    import deepspeed

    _set_single_process_env()
    os.environ.setdefault("LOCAL_RANK", os.environ.get("RANK", "0"))
    local_rank = int(os.environ["LOCAL_RANK"])
    device = pick_device(local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
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
