"""HumanEval(+) and MBPP(+) through evalplus's tests: canonical solutions pass base, plus and original tests;
empty and swapped completions fail; small canonical outputs are cached as themselves, exactly."""

from __future__ import annotations

import marshal
import math

import pytest

from eval.code.evalplus_harness import MARSHAL_VERSION, outputs_match, small_plain_value
from eval.code.evalplus_runner import dataset_label, evaluate_evalplus, prepare_problems
from eval.code.problems import read_records
from eval.code.report import summarize

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def humanevalplus():
    from tests.conftest import shared_data_file

    return prepare_problems(read_records(shared_data_file("humanevalplus", "HumanEvalPlus.jsonl.gz")), "humaneval")


def canonical(problems: dict) -> list[dict]:
    return [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()]


def test_all_164_humanevalplus_canonical_pass_base_plus_and_original(humanevalplus):
    results = evaluate_evalplus(humanevalplus, canonical(humanevalplus), "humaneval", progress=False)
    failed = [r for r in results if not (r["base_passed"] and r["plus_passed"] and r["original_passed"])]
    assert failed == []
    summary = summarize("humaneval", results, dataset=dataset_label(humanevalplus, "humaneval", "x"))
    assert summary["n_problems"] == 164
    assert summary["pass@1"] == summary["base"]["pass@1"] == summary["plus"]["pass@1"] == 1.0
    assert summary["original"]["pass@1"] == 1.0
    assert "HumanEval/32" in {r["task_id"] for r in results if r["plus_passed"]}  # evalplus 0.3.1 fails it


def test_empty_and_swapped_completions_fail(humanevalplus):
    tids = [f"HumanEval/{i}" for i in (0, 2, 4, 32, 130)]
    sub = {t: humanevalplus[t] for t in tids}
    samples = [{"task_id": t, "completion": ""} for t in tids]
    samples += [{"task_id": t, "completion": sub[tids[(i + 1) % len(tids)]]["canonical_solution"]}
                for i, t in enumerate(tids)]
    samples += [{"task_id": "HumanEval/0", "completion": "    while True:\n        pass\n"}]  # per-input limit
    results = evaluate_evalplus(sub, samples, "humaneval", progress=False)
    for r in results:
        assert (r["passed"], r["base_passed"], r["plus_passed"], r["original_passed"]) == (False,) * 4, r


def test_plus_inputs_catch_what_base_inputs_miss(humanevalplus):
    """A solution right on the original inputs but wrong on an edge case passes base only."""
    p = humanevalplus["HumanEval/0"]
    body = ("    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
            "            if abs(a - b) < threshold:\n                return True\n"
            "    return False if len(numbers) != 0 else None\n")
    results = evaluate_evalplus({"HumanEval/0": p}, [{"task_id": "HumanEval/0", "completion": body}], "humaneval",
                                progress=False)
    assert results[0]["base_passed"] is True and results[0]["plus_passed"] is False


def test_original_humaneval_file_has_the_original_verdict_only(shared_data):
    records = read_records(shared_data("humaneval", "HumanEval.jsonl.gz"))[:3]
    problems = prepare_problems(records, "humaneval")
    samples = canonical(problems) + [{"task_id": "HumanEval/1", "completion": "    return []\n"}]
    results = evaluate_evalplus(problems, samples, "humaneval", progress=False)
    assert [r["passed"] for r in results] == [True, True, True, False]
    assert all(r["base_passed"] is None and r["plus_passed"] is None for r in results)
    assert dataset_label(problems, "humaneval", "HumanEval.jsonl.gz") == "HumanEval (original tests)"


def test_mbppplus_prerelease_canonical_pass_and_is_labelled(shared_data):
    path = shared_data("mbppplus", "MbppPlus_prerelease_767efcc.jsonl")
    problems = prepare_problems(read_records(path)[:15], "mbpp")
    results = evaluate_evalplus(problems, canonical(problems), "mbpp", progress=False)
    assert [r["task_id"] for r in results if not (r["base_passed"] and r["plus_passed"])] == []
    label = dataset_label(prepare_problems(read_records(path), "mbpp"), "mbpp", str(path))
    assert "PRERELEASE" in label and "399" in label


def test_original_mbpp_files_use_their_asserts(shared_data):
    for name in ("mbpp.jsonl", "sanitized-mbpp.json"):
        problems = prepare_problems(read_records(shared_data("mbpp", name))[:4], "mbpp")
        samples = canonical(problems) + [{"task_id": next(iter(problems)), "completion": "\npass\n"}]
        results = evaluate_evalplus(problems, samples, "mbpp", progress=False)
        assert [r["passed"] for r in results] == [True] * 4 + [False], (name, results)
        assert dataset_label(problems, "mbpp", name) == "MBPP (original tests)"


@pytest.mark.parametrize("value", [
    None, True, 3, -(10 ** 30), 1.5, -0.0, math.inf, math.nan, "s", [1, [2, (3, 4)]], (1,), set(), {1, 2},
    frozenset({"a"}), {1: "a", (2, 3): [4.0]}, 3 + 4j, b"\x00\xff", [],
])
def test_small_plain_outputs_are_cached_as_themselves_with_their_types(value):
    assert small_plain_value(value, 4096)
    back = marshal.loads(marshal.dumps(value, MARSHAL_VERSION))  # how the cache stores them
    assert type(back) is type(value) and (back == value or repr(back) == repr(value))  # NaN: unequal to itself
    if isinstance(value, float):
        assert math.copysign(1, back) == math.copysign(1, value)  # -0.0 stays -0.0


class Celsius(float):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [
    iter([]), Celsius(1.0), [1, Celsius(2.0)], {"k": bytearray(b"x")}, memoryview(b"x"), "x" * 5000, 1 << 40000,
], ids=["iterator", "float-subclass", "nested-subclass", "bytearray", "memoryview", "long-str", "huge-int"])
def test_other_outputs_are_not_cached_as_values(value):
    """Subclasses (their own __eq__), buffer objects (marshal would turn them into bytes) and large values."""
    assert not small_plain_value(value, 4096)


def test_comparison_follows_evalplus_rules():
    class Oracles:
        MBPP_OUTPUT_SET_EQ_TASKS = ["similar_elements"]
        MBPP_OUTPUT_NOT_NONE_TASKS = ["check_str"]

    o = Oracles()
    assert outputs_match("humaneval", "f", [], 0.1 + 0.2, 0.3, 0.0, o)  # floats get atol 1e-6
    assert not outputs_match("humaneval", "f", [], 0.31, 0.3, 0.0, o)
    assert outputs_match("humaneval", "f", [], 2, 2.0, 0.0, o)
    assert not outputs_match("humaneval", "f", [], [1, 2], [1, 2, 3], 0.0, o)
    assert outputs_match("mbpp", "similar_elements", [], (5, 4), (4, 5), 0.0, o)
    assert outputs_match("mbpp", "check_str", [], object(), True, 0.0, o)
    assert not outputs_match("mbpp", "check_str", [], None, True, 0.0, o)
