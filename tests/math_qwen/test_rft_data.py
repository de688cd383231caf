"""What an RFT round keeps on hand-made multi-path problems, RFT-U pooling, and the round's statistics, each
against values worked out by hand (and the generator's own path list)."""

from __future__ import annotations

import json

import pytest

from data_recipes.synthetic_math import TEMPLATES, distinct_paths, solution_text
from math_qwen.heldout_eval import paired_comparison
from math_qwen.rft_data import augmented_conversations, pool, round_stats
from math_qwen.rft_filter import filter_samples
from math_qwen.rft_problems import Problem

PROMPT = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "q"}]
# Ann has 7, gets 5 more and then 3 more: three orders of adding, or all at once.
GOLD = "First 7+5 = <<7+5=12>>12.\nThen 12+3 = <<12+3=15>>15.\n#### 15"
SUM3 = Problem("train.jsonl:1", PROMPT, GOLD, "15", "gsm8k")
SAMPLES = [
    "First 7+3 = <<7+3=10>>10.\nThen 10+5 = <<10+5=15>>15.\n#### 15",  # 0 new path (7+3 first)
    "Ann has 7 + 5 = <<7+5=12>>12.\nSo 12 + 3 = <<12+3=15>>15 in all.\n#### 15",  # 1 the gold's equations, reworded
    "First 5+3 = <<5+3=8>>8.\nThen 7+8 = <<7+8=15>>15.\n#### 15",  # 2 new path (5+3 first)
    "First 7+3 = <<7+3=10>>10.\nThen 10+5 = <<10+5=15>>15.\n#### 15",  # 3 copy of sample 0
    "First 7+5 = <<7+5=12>>12.\nThen 12+3 = <<12+3=14>>14.\n#### 14",  # 4 wrong answer
    "First 7+5 = <<7+5=13>>13.\nThen 13+3 = <<13+3=15>>15.\n#### 15",  # 5 right answer, calculator fails
    "All at once 7+5+3 = <<7+5+3=15>>15.\n#### 15",  # 6 new path (one equation)
    "The answer is 15.",  # 7 not in the trained format
]
EXPECTED = ["kept", "duplicate_equations", "kept", "duplicate_equations", "wrong_answer", "bad_calculator", "kept",
            "no_answer"]  # fmt: skip


def test_multi_path_problem_deduplicated_exactly():
    verdicts = filter_samples(SAMPLES, GOLD, "15", "gsm8k")
    assert [v.reason for v in verdicts] == EXPECTED
    assert [v.equations for v in verdicts if v.kept] == [("7+3=10", "10+5=15"), ("5+3=8", "7+8=15"), ("7+5+3=15",)]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_every_path_of_the_generator_is_one_distinct_kept_path(template):
    numbers = tuple(lo + 1 + i for i, (lo, _) in enumerate(template.ranges))  # unequal: no paths coincide
    while not template.valid(*numbers):
        numbers = tuple(n + 1 for n in numbers)
    texts = [solution_text(path) for path in distinct_paths(template, numbers)]
    answer = str(distinct_paths(template, numbers)[0][-1][1])
    assert len(texts) >= 2
    for gold_index, gold in enumerate(texts):
        samples = texts + texts  # every path twice: each other path kept once, the gold's never
        verdicts = filter_samples(samples, gold, answer, "gsm8k")
        kept = [v.sample_index for v in verdicts if v.kept]
        assert kept == [i for i in range(len(texts)) if i != gold_index]


def _record(completions: list[str], model: str) -> dict:
    return {"completions": completions, "model": model, "round": 1}


def test_rftu_pooling_counts():
    # Sampler A finds 7+3 first and a wrong answer; B finds 7+3 first again, 5+3 first and the one-liner.
    a = [SAMPLES[0], SAMPLES[4], SAMPLES[1]]
    b = [SAMPLES[3], SAMPLES[2], SAMPLES[6], SAMPLES[5]]
    (pp,) = pool([SUM3], [{SUM3.task_id: _record(a, "A")}, {SUM3.task_id: _record(b, "B")}])
    assert pp.origins == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert [v.reason for v in pp.verdicts] == ["kept", "wrong_answer", "duplicate_equations", "duplicate_equations",
                                               "kept", "kept", "bad_calculator"]  # fmt: skip
    # The same as judging the concatenation: pooling is "all samples of all samplers, then dedup".
    assert pp.verdicts == filter_samples(a + b, GOLD, "15", "gsm8k")
    stats = round_stats([pp], ["A", "B"])
    # A: 3 samples, 2 correct (7+3 first and the gold reworded), 1 new path credited (7+3 first). B: 4 samples,
    # 4 right answers (one fails the calculator), 2 new paths credited. New paths (not the gold's) only one
    # sampler found: A none (B found 7+3 first too), B two (5+3 first, the one-liner).
    assert stats["per_sampler"] == [
        {"sampler": "A", "samples": 3, "correct_samples": 2, "distinct_paths_kept": 1, "unique_paths": 0},
        {"sampler": "B", "samples": 4, "correct_samples": 4, "distinct_paths_kept": 2, "unique_paths": 2},
    ]
    assert stats["distinct_paths_kept"] == 3 and stats["samples_drawn"] == 7 and stats["correct_samples"] == 6
    aug = augmented_conversations([pp])
    assert [(c["provenance"]["model"], c["provenance"]["sample_index"]) for c in aug] == [("A", 0), ("B", 1), ("B", 2)]
    assert aug[1]["messages"] == [*PROMPT, {"role": "assistant", "content": SAMPLES[2]}]


def test_pooling_one_sampler_gives_its_own_verdicts():
    (pp,) = pool([SUM3], [{SUM3.task_id: _record(SAMPLES, "A")}])
    assert [v.reason for v in pp.verdicts] == EXPECTED and pp.kept() == [0, 2, 6]


def test_round_statistics_equal_hand_computed_values():
    other_gold = "First 9-2 = <<9-2=7>>7.\nThen 7-4 = <<7-4=3>>3.\n#### 3"
    give2 = Problem("train.jsonl:2", PROMPT, other_gold, "3", "gsm8k")
    none_right = Problem("train.jsonl:3", PROMPT, GOLD, "15", "gsm8k")
    records = {
        SUM3.task_id: _record(SAMPLES[:4], "A"),  # kept, duplicate, kept, duplicate -> 2 new paths
        give2.task_id: _record(["First 9-2 = <<9-2=7>>7.\nThen 7-4 = <<7-4=3>>3.\n#### 3",  # the gold: duplicate
                                "First 2+4 = <<2+4=6>>6.\nThen 9-6 = <<9-6=3>>3.\n#### 3",  # new path
                                "First 9-4 = <<9-4=5>>5.\nThen 5-2 = <<5-2=4>>4.\n#### 4"], "A"),  # wrong  # fmt: skip
        none_right.task_id: _record([SAMPLES[4], SAMPLES[7], SAMPLES[5]], "A"),  # wrong, no answer, bad calculator
    }
    stats = round_stats(pool([SUM3, give2, none_right], [records]), ["A"])
    assert stats["problems"] == 3 and stats["samples_drawn"] == 10
    assert stats["coverage"] == pytest.approx(3 / 3)  # bad_calculator still had the right answer
    assert stats["correct_samples"] == 4 + 2 + 1
    assert stats["distinct_paths_kept"] == 3 and stats["problems_with_new_paths"] == 2
    assert stats["new_path_share"] == pytest.approx(2 / 3)
    assert stats["paths_per_problem_with_gold"] == pytest.approx((3 + 3) / 3)
    assert stats["reasons"] == {"kept": 3, "no_answer": 1, "wrong_answer": 2, "bad_calculator": 1,
                                "duplicate_equations": 3, "duplicate_text": 0}  # fmt: skip


def _results(path, passed: dict[str, bool]) -> None:
    path.mkdir(parents=True)
    (path / "results.jsonl").write_text("".join(json.dumps({"task_id": t, "passed": p}) + "\n" for t, p in passed.items()))


def test_paired_comparison_pairs_by_task_id(tmp_path):
    before = {str(i): i < 10 for i in range(40)}
    after = {str(i): i < 10 or 20 <= i < 30 for i in reversed(range(40))}  # other order, 10 more right
    _results(tmp_path / "b", before)
    _results(tmp_path / "a", after)
    paired = paired_comparison(tmp_path / "b", tmp_path / "a")
    assert paired["difference"] == pytest.approx(10 / 40) and paired["only_after"] == 10 and paired["only_before"] == 0
    assert 0 < paired["ci95"][0] < paired["difference"] < paired["ci95"][1]
    _results(tmp_path / "c", {str(i): True for i in range(39)})
    with pytest.raises(ValueError, match="different problems"):
        paired_comparison(tmp_path / "b", tmp_path / "c")
