"""The unbiased pass@k estimator of Chen et al. 2021 (Codex paper), per problem and averaged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) passes.

    1 - C(n-c, k) / C(n, k), computed as a product so that large n does not overflow.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def allowed_ks(samples_per_task: Iterable[int], ks: Iterable[int] = (1, 2, 5, 10, 20, 50, 100)) -> list[int]:
    """The usual k values that every task's sample count allows (k <= min n)."""
    counts = list(samples_per_task)
    if not counts:
        return []
    smallest = min(counts)
    return [k for k in ks if k <= smallest]


def mean_pass_at_k(outcomes: Mapping[str, list[bool]], ks: Iterable[int] | None = None) -> dict[str, float]:
    """{"pass@k": mean over tasks} for every k the sample counts allow (or the ks given)."""
    counts = {task: (len(v), sum(bool(x) for x in v)) for task, v in outcomes.items()}
    ks = allowed_ks(n for n, _ in counts.values()) if ks is None else list(ks)
    return {
        f"pass@{k}": float(np.mean([pass_at_k(n, c, k) for n, c in counts.values()])) if counts else 0.0
        for k in ks
    }
