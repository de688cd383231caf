"""Execution feedback's verifier: real sandboxed runs give passed / failed / timeout as they should, in the three
problem styles, and in the six languages HumanEvalPack's own canonical solutions pass while its buggy ones fail
(a missing toolchain is reported as environment_error, never as a failure)."""

from __future__ import annotations

import json

import pytest

from eval.code.executor import ENV_ERROR
from eval.code.feedback import (
    build_program,
    check_problem,
    completion_of,
    count_tests,
    sampling_prompt,
    verify,
)
from eval.code.languages import LANGUAGES

FUNCTION = {"task_id": "t/fn", "language": "python", "style": "function", "entry_point": "add_three",
            "prompt": 'def add_three(x):\n    """Return x plus 3.\n    >>> add_three(1)\n    4\n    """\n',
            "test": "def check(candidate):\n    assert candidate(2) == 5\n    assert candidate(-3) == 0\n"}
PROGRAM = {"task_id": "t/prog", "language": "python", "style": "program", "prompt": "Write double(x).",
           "test": "assert double(2) == 4\nassert double(0) == 0\n"}
STDIO = {"task_id": "t/io", "language": "python", "style": "stdio", "prompt": "Print the sum of two integers.",
         "test": [{"input": "1 2\n", "output": "3\n"}, {"input": "10 -4\n", "output": "6"}]}
PROBLEMS = {p["task_id"]: p for p in (FUNCTION, PROGRAM, STDIO)}


def _verdicts(samples: list[tuple[str, str]], **kw) -> list[str]:
    return [v["status"] for v in verify(PROBLEMS, [{"task_id": t, "completion": c} for t, c in samples],
                                         progress=False, **kw)]


def test_three_styles_pass_fail_and_time_out():
    samples = [
        ("t/fn", "    return x + 3\n"), ("t/fn", "    return x + 4\n"), ("t/fn", "    while True:\n        pass\n"),
        ("t/prog", "def double(x):\n    return 2 * x\n"), ("t/prog", "def double(x):\n    return x + 2\n"),
        ("t/io", "a, b = map(int, input().split())\nprint(a + b)\n"),
        ("t/io", "a, b = map(int, input().split())\nprint(a - b)\n"),
        ("t/io", "import time\ntime.sleep(30)\n"),
    ]
    assert _verdicts(samples, timeout_s=1.5) == ["passed", "failed", "timeout", "passed", "failed", "passed",
                                                 "failed", "timeout"]


def test_a_sample_cannot_fake_the_harness():
    # stdio: printing the expected output of case 0 and exiting early must not pass case 1
    cheats = [("t/io", "print(3)\n"), ("t/io", "import sys\nprint(3)\nsys.exit(0)\n"),
              ("t/fn", "    import sys\n    sys.exit(0)\n")]
    assert _verdicts(cheats) == ["failed", "failed", "failed"]


def test_prompts_hold_no_hidden_test_and_completions_are_extracted():
    for p in PROBLEMS.values():
        check_problem(p)
        prompt = sampling_prompt(p)
        tests = p["test"] if isinstance(p["test"], list) else [{"input": line} for line in p["test"].splitlines()]
        assert not any(t["input"].strip() and t["input"].strip() in prompt for t in tests)
    raw = "```python\ndef add_three(x):\n    return x + 3\n```\nThat adds three."
    assert completion_of(FUNCTION, raw) == "def add_three(x):\n    return x + 3\n"
    assert completion_of(STDIO, "```python\nprint(1)\n```") == "print(1)\n"
    assert [count_tests(p) for p in PROBLEMS.values()] == [2, 2, 2]
    with pytest.raises(ValueError, match="Python only"):
        check_problem({**STDIO, "language": "go"})


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_humanevalpack_canonical_passes_buggy_fails(language, shared_data):
    lang = LANGUAGES[language]
    path = shared_data("humanevalpack", f"{lang.dataset}.jsonl")
    records = [json.loads(line) for line in path.open()][:2]
    problems = {r["task_id"]: {**r, "language": language, "style": "function"} for r in records}
    samples = [{"task_id": r["task_id"], "completion": r[key]} for r in records
               for key in ("canonical_solution", "buggy_solution")]
    statuses = [v["status"] for v in verify(problems, samples, progress=False, timeout_s=20.0)]
    try:
        lang.check_environment()
    except Exception:  # noqa: BLE001 - the toolchain is missing here: reported, not counted as failures
        assert statuses == [ENV_ERROR] * len(samples)
        return
    assert statuses[0::2] == ["passed"] * len(records)
    assert "passed" not in statuses[1::2]
    assert build_program(problems[records[0]["task_id"]], records[0]["canonical_solution"], 3.0).run.limits.timeout_s == 3.0
