"""The RFT keep rule on a hand-made set where the right verdict of every sample is known."""

from __future__ import annotations

import random

from math_qwen.rft_filter import filter_samples, normalize_text

GOLD = "The friend has 2 * 6 = <<2*6=12>>12 beads.\nAfter giving some away: 12 - 9 = <<12-9=3>>3 beads.\n#### 3"

HAND_MADE = [
    ("Lea's friend has 6 * 2 = <<6*2=12>>12 beads.\nThen 12 - 9 = <<12-9=3>>3 beads.\n#### 3", "kept"),
    ("The friend has 2 * 6 = <<2*6=12>>12 beads.\n12 + 9 = <<12+9=21>>21.\n#### 21", "wrong_answer"),
    ("The friend has 2 * 6 = <<2*6=13>>13 beads.\n13 - 9 = <<13-9=3>>3.\n#### 3", "bad_calculator"),
    ("She has 2 * 6 = <<2*6=12>>12 beads and gives 9: 12 - 9 = <<12-9=3>>3 left.\n#### 3", "duplicate_equations"),
    ("Lea's friend has 6*2 = <<6*2=12>>12.\n12-9=<<12-9=3>>3\n#### 3", "duplicate_equations"),
    ("The friend has 12 beads and gives 9 away, so 3 are left.\n#### 3", "kept"),
    ("THE friend has 12 beads and gives 9 away,   so 3 are left.\n#### 3", "duplicate_text"),
    ("I am not sure how to solve this.", "no_answer"),
    ("The friend has 12 - 9 = 3 beads. The answer is 3", "no_answer"),  # right, but not in the trained format
    ("", "no_answer"),
    ("The friend has 2 * 6 = <<2*6=12>>12.\n<<__import__('os').system('true')=0>>\n#### 3", "bad_calculator"),
    ("Twice 6 is <<2*6=12>>12; minus 9 is <<12-9=3>>3 and 3 * 1 = <<3*1=3>>3.\n#### 3.0", "kept"),
]


def test_keeps_exactly_the_right_samples():
    verdicts = filter_samples([s for s, _ in HAND_MADE], GOLD, "3", "gsm8k")
    assert [v.reason for v in verdicts] == [reason for _, reason in HAND_MADE]
    assert [v.sample_index for v in verdicts] == list(range(len(HAND_MADE)))
    assert verdicts[0].equations == ("6*2=12", "12-9=3")


def test_a_copy_of_the_gold_solution_is_a_duplicate_and_math_answers_use_boxed():
    assert [v.reason for v in filter_samples([GOLD, GOLD.lower()], GOLD, "3", "gsm8k")] == [
        "duplicate_equations", "duplicate_equations"]
    gold = "We have $x = 2$, so the answer is $\\boxed{\\frac{1}{2}}$."
    samples = ["Halving gives $\\boxed{0.5}$.", "Halving gives $\\boxed{1/3}$.", "So it is 0.5."]
    assert [v.reason for v in filter_samples(samples, gold, "\\frac{1}{2}", "math")] == [
        "kept", "wrong_answer", "no_answer"]


def test_dedup_is_deterministic_and_order_only_picks_which_copy_is_kept():
    samples = [s for s, _ in HAND_MADE]
    first = filter_samples(samples, GOLD, "3", "gsm8k")
    assert filter_samples(samples, GOLD, "3", "gsm8k") == first
    kept_paths = {(v.equations, normalize_text(samples[v.sample_index])) for v in first if v.kept}
    for seed in range(5):
        shuffled = samples[:]
        random.Random(seed).shuffle(shuffled)
        again = filter_samples(shuffled, GOLD, "3", "gsm8k")
        assert sum(v.kept for v in again) == len(kept_paths)
        # The same distinct equation lists survive, whichever duplicate came first.
        assert {v.equations for v in again if v.kept} == {e for e, _ in kept_paths}
