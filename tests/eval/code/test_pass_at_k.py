"""The unbiased pass@k estimator equals the exact probability computed by enumerating all k-subsets."""

from itertools import combinations

import pytest

from eval.pass_at_k import allowed_ks, mean_pass_at_k, pass_at_k


def brute_force(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(n, c, k) for n in range(1, 8) for c in range(n + 1) for k in range(1, n + 1)])
def test_estimator_equals_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_pass_at_1_is_fraction_correct_and_large_n_is_stable():
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)
    assert 0.0 <= pass_at_k(1000, 1, 100) <= 1.0


def test_invalid_counts_raise():
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_mean_over_tasks_and_allowed_ks():
    outcomes = {"a": [True, False, False, False, False], "b": [False] * 5, "c": [True] * 10}
    got = mean_pass_at_k(outcomes)
    assert set(got) == {"pass@1", "pass@2", "pass@5"}  # k <= the smallest sample count (5)
    assert got["pass@1"] == pytest.approx((1 / 5 + 0 + 1) / 3)
    assert got["pass@5"] == pytest.approx((1 + 0 + 1) / 3)
    assert allowed_ks([1, 3]) == [1]
