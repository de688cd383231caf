"""CPU thread count for the tiny runs.

On a 2-core machine shared with other jobs, torch's default of one OpenMP thread per core makes each thread
spin-wait for the other: a training step of the tiny model measured 3.4 s with 2 threads and 0.4 s with 1
thread under a load average of 10 (2026-11-25). The tiny configs therefore pin one thread; GPU runs and
configs without `cpu_threads` keep torch's default.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def limit_cpu_threads(n: int) -> None:
    """Use `n` torch threads when training on CPU (0: leave torch's default)."""
    import torch  # here, not at import: configs load without torch

    if n > 0 and not torch.cuda.is_available():
        torch.set_num_threads(n)
        log.info("CPU training with %d torch thread(s) (cpu_threads)", n)
