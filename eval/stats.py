"""Confidence intervals for evaluation numbers, so a reader can tell a lift from noise.

- `wilson_interval`: 95% interval of one accuracy / pass@1 (k successes of n problems). Wilson, not the
  normal approximation, because tiny-model accuracies sit near 0 and 1 where the normal one leaves [0, 1].
- `paired_difference`: before/after on the *same* problems (a training round, a stage): the difference of
  the two accuracies with a paired bootstrap interval and McNemar's exact p-value on the discordant pairs.
  Pairing matters: two accuracies on the same 2,000 problems differ far less by chance than two
  independent samples would, so unpaired intervals would hide real lifts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0.0, 1.0) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} outside [0, n={n}]")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact ends at k = 0 and k = n (the closed form leaves rounding residue of ~1e-17 there)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def accuracy_with_interval(correct: Sequence[bool]) -> dict[str, Any]:
    """{"accuracy", "ci95": [lo, hi], "n"} for a list of per-problem verdicts."""
    n, k = len(correct), int(sum(bool(c) for c in correct))
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n if n else 0.0, "ci95": [lo, hi], "n": n}


def mcnemar_exact_p(only_before: int, only_after: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of the discordant pairs at p = 1/2."""
    m = only_before + only_after
    if m == 0:
        return 1.0
    k = min(only_before, only_after)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2.0**m
    return min(1.0, 2.0 * tail)


def paired_difference(before: Sequence[bool], after: Sequence[bool], *, n_boot: int = 10_000,
                      seed: int = 0) -> dict[str, Any]:
    """after - before on the same problems (position i is problem i in both), with a 95% paired interval.

    The interval is the percentile bootstrap over problems (resampling pairs keeps the pairing); the
    seed is fixed so the same verdicts always print the same interval.
    """
    if len(before) != len(after):
        raise ValueError(f"paired verdicts need equal lengths, got {len(before)} and {len(after)}")
    b = np.asarray(before, dtype=bool)
    a = np.asarray(after, dtype=bool)
    n = len(b)
    if n == 0:
        return {"difference": 0.0, "ci95": [0.0, 0.0], "n": 0, "only_before": 0, "only_after": 0,
                "mcnemar_p": 1.0}
    diff = a.astype(np.int8) - b.astype(np.int8)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 1000):  # chunks keep memory at 1000 x n int32
        stop = min(n_boot, start + 1000)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    only_before, only_after = int((b & ~a).sum()), int((a & ~b).sum())
    return {
        "difference": float(diff.mean()),
        "ci95": [float(lo), float(hi)],
        "n": n,
        "only_before": only_before,
        "only_after": only_after,
        "mcnemar_p": mcnemar_exact_p(only_before, only_after),
    }
