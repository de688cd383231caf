"""Intervals against values computed by hand or by a textbook formula."""

import math

import pytest

from eval.stats import accuracy_with_interval, mcnemar_exact_p, paired_difference, wilson_interval


def test_wilson_matches_textbook_values():
    # 81 of 263 (Wilson 1927 style example): p=0.308, interval from the closed form
    lo, hi = wilson_interval(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-4)
    assert hi == pytest.approx(0.3662, abs=1e-4)
    # edges stay inside [0, 1] and are not degenerate
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.83 < lo < 0.85
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_accuracy_with_interval_counts():
    s = accuracy_with_interval([True, False, True, True])
    assert s["accuracy"] == 0.75 and s["n"] == 4
    assert s["ci95"][0] < 0.75 < s["ci95"][1]


def test_mcnemar_exact_by_hand():
    # 1 vs 9 discordant: 2 * (C(10,0)+C(10,1)) / 2^10 = 22/1024
    assert mcnemar_exact_p(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(5, 5) == 1.0


def test_paired_difference_sees_a_lift_and_no_lift():
    before = [False] * 100 + [True] * 100
    after = [True] * 30 + [False] * 70 + [True] * 100  # +30 of 200, never worse
    r = paired_difference(before, after)
    assert r["difference"] == pytest.approx(0.15)
    assert r["ci95"][0] > 0.08 and r["ci95"][1] < 0.21
    assert r["only_after"] == 30 and r["only_before"] == 0
    assert r["mcnemar_p"] == pytest.approx(2 / 2**30)
    same = paired_difference(before, before)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]
    # deterministic: the same verdicts print the same interval
    assert paired_difference(before, after) == r
    with pytest.raises(ValueError):
        paired_difference([True], [True, False])
    assert math.isclose(paired_difference([], [])["mcnemar_p"], 1.0)
