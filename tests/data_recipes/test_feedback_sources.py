"""Problem sources of execution feedback, loaded from local files with the hub datasets' own schemas (APPS and TACO:
input_output as a JSON string; CodeContests: test dicts; MBPP: task-id splits), run through the real sandbox: a
right program passes every case, a wrong one fails, and no hidden case reaches the prompt."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_recipes.feedback_sources import FeedbackSourceConfig, load_feedback_problems
from eval.code.feedback import sampling_prompt, verify

SUM_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"
WRONG_PROGRAM = "a, b = map(int, input().split())\nprint(a * b)\n"

APPS_ROWS = [  # codeparrot/apps columns (TACO's question/solutions/starter_code/input_output are the same)
    {"problem_id": 7, "question": "Read two integers and print their sum.", "solutions": json.dumps([SUM_PROGRAM]),
     "input_output": json.dumps({"inputs": ["1 2\n", "5 5\n", "-3 9\n"], "outputs": ["3\n", "10\n", "6\n"]}),
     "difficulty": "introductory", "url": "https://example.invalid/7", "starter_code": ""},
    {"problem_id": 8, "question": "Implement add(a, b).", "solutions": "[]",
     "input_output": json.dumps({"fn_name": "add", "inputs": [[1, 2]], "outputs": [[3]]}),
     "difficulty": "introductory", "url": "", "starter_code": "def add(a, b):\n"},
    {"problem_id": 9, "question": "No tests here.", "solutions": "[]", "input_output": "", "difficulty": "",
     "url": "", "starter_code": ""},
]
CODE_CONTESTS_ROWS = [  # deepmind/code_contests columns (a subset)
    {"name": "1000_A. Sum", "description": "Print a + b.\n\nExample\nInput\n1 2\nOutput\n3",
     "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
     "private_tests": {"input": ["100 23\n", "7 -7\n"], "output": ["123\n", "0\n"]},
     "generated_tests": {"input": ["41 1\n"], "output": ["42\n"]}, "source": 2, "difficulty": 7},
]


def _verdicts(problems: list[dict], program: str) -> list[str]:
    by_id = {p["task_id"]: p for p in problems}
    return [v["status"] for v in verify(by_id, [{"task_id": t, "completion": program} for t in by_id],
                                        progress=False)]


@pytest.mark.parametrize("kind", ["apps", "taco"])
def test_apps_and_taco_rows_become_stdio_problems(kind, tmp_path):
    path = tmp_path / f"{kind}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in APPS_ROWS))
    loaded = load_feedback_problems(FeedbackSourceConfig(kind=kind, path=str(path)))
    assert [p["task_id"] for p in loaded.problems] == [f"{kind}/7"]
    assert dict(loaded.skipped) == {"call_based_not_supported": 1, "no_tests": 1}
    assert _verdicts(loaded.problems, SUM_PROGRAM) == ["passed"]
    assert _verdicts(loaded.problems, WRONG_PROGRAM) == ["failed"]
    assert "5 5" not in sampling_prompt(loaded.problems[0])


def test_code_contests_parquet_keeps_private_and_generated_tests_hidden(tmp_path):
    path = tmp_path / "code_contests.parquet"
    pq.write_table(pa.Table.from_pylist(CODE_CONTESTS_ROWS), path)
    problem, = load_feedback_problems(FeedbackSourceConfig(kind="code_contests", path=str(path))).problems
    assert [c["input"] for c in problem["test"]] == ["1 2\n", "100 23\n", "7 -7\n", "41 1\n"]
    prompt = sampling_prompt(problem)
    assert not any(case in prompt for case in ("100 23", "7 -7", "41 1"))
    assert _verdicts([problem], SUM_PROGRAM) == ["passed"]
    assert _verdicts([problem], "print(3)\n") == ["failed"]  # the public example alone is not enough


def test_mbpp_train_problems_pass_with_their_reference_code(shared_data):
    cfg = FeedbackSourceConfig(kind="mbpp", path=str(shared_data("mbpp", "mbpp.jsonl")), split="validation",
                               max_problems=5)
    problems = load_feedback_problems(cfg).problems
    assert [p["task_id"] for p in problems] == [f"Mbpp/{i}" for i in range(511, 516)]
    rows = {f"Mbpp/{r['task_id']}": r for r in map(json.loads, shared_data("mbpp", "mbpp.jsonl").open())}
    by_id = {p["task_id"]: p for p in problems}
    verdicts = verify(by_id, [{"task_id": t, "completion": rows[t]["code"]} for t in by_id], progress=False)
    assert [v["status"] for v in verdicts] == ["passed"] * 5


def test_only_mbpp_test_rows_are_contamination(shared_data):
    """mbpp.jsonl holds every split: the standard spec reads its test task ids only, so MBPP's training problems
    (which execution feedback uses) are kept unless they share a 13-gram with a test problem."""
    from dataclasses import replace

    from data_recipes.config import DecontaminationConfig, standard_benchmarks
    from data_recipes.decontaminate import build_index

    spec = next(b for b in standard_benchmarks() if b.name == "mbpp")
    rows = list(map(json.loads, shared_data("mbpp", "mbpp.jsonl").open()))
    flagged = {}
    for name, s in (("test split", spec), ("whole file", replace(spec, task_id_range=[]))):
        index = build_index(DecontaminationConfig(data_dir=str(shared_data("mbpp", "mbpp.jsonl").parents[1]),
                                                  allow_hub=False, require_all=True, benchmarks=[s]))
        flagged[name] = {r["task_id"] for r in rows if index.matches(r["text"] + "\n" + r["code"]) is not None}
    test_ids = {r["task_id"] for r in rows if 11 <= r["task_id"] <= 510}
    assert len(test_ids) == 500 and test_ids <= flagged["test split"]
    assert flagged["whole file"] == {r["task_id"] for r in rows}  # before: every training problem was "contaminated"
    assert len(flagged["test split"] - test_ids) < len(rows) - len(test_ids)
