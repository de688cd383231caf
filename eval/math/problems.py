"""Problem sets for GSM8K and MATH: load (local JSONL/JSON/parquet or a hub dataset), task ids, gold answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from eval.math.extract import last_boxed, normalize_number_text
from shared.jsonl import read_jsonl_objects

BENCHMARKS = ("gsm8k", "math")
# Hub datasets users point --problems at, with the config and split that hold the test set.
DEFAULT_HUB = {"gsm8k": "openai/gsm8k", "math": "HuggingFaceH4/MATH-500"}
HUB_DEFAULTS = {"openai/gsm8k": ("main", "test"), "gsm8k": ("main", "test")}


class ProblemsError(ValueError):
    pass


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return read_jsonl_objects(path, error=ProblemsError)


def _read_local(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ProblemsError(f"{path}: expected a JSON list of problems")
        return data
    return _read_jsonl(path)


def _read_hub(name: str) -> list[dict[str, Any]]:
    """`name`, `name:config` or `name:config@split` (split defaults to test)."""
    from datasets import load_dataset

    spec, _, split = name.partition("@")
    repo, _, config = spec.partition(":")
    default_config, default_split = HUB_DEFAULTS.get(repo, (None, "test"))
    dataset = load_dataset(repo, config or default_config, split=split or default_split)
    return [dict(row) for row in dataset]


def load_problems(path_or_hub: str | Path, benchmark: str) -> list[dict[str, Any]]:
    """Problems as dicts, in file order; each gets `task_id` (its own task_id/idx, else its row index)."""
    if benchmark not in BENCHMARKS:
        raise ProblemsError(f"unknown benchmark {benchmark!r} (expected one of {BENCHMARKS})")
    path = Path(path_or_hub)
    # A file is read here; anything else (a hub name, or a local dataset folder) goes through `datasets`.
    rows = _read_local(path) if path.is_file() else _read_hub(str(path_or_hub))
    problems = []
    for index, row in enumerate(rows):
        problem = dict(row)
        problem["task_id"] = task_id_of(row, index)
        problems.append(problem)
    ids = [p["task_id"] for p in problems]
    if len(set(ids)) != len(ids):
        raise ProblemsError(f"{path_or_hub}: duplicate task ids in the problems file")
    return problems


def task_id_of(problem: dict[str, Any], index: int) -> str:
    """DESIGN.md: the problem's own `task_id` or `idx` field when present, else its 0-based row index."""
    for key in ("task_id", "idx"):
        if problem.get(key) is not None:
            return str(problem[key])
    return str(index)


def question_of(problem: dict[str, Any]) -> str:
    for key in ("question", "problem", "prompt"):
        if isinstance(problem.get(key), str):
            return problem[key]
    raise ProblemsError(f"problem {problem.get('task_id')!r} has no question/problem field")


def gold_answer(problem: dict[str, Any], benchmark: str) -> str:
    """GSM8K: the number after `####`. MATH: the last `\\boxed{}` of the solution (the `answer` field of some
    copies is lossy), else the `answer` field."""
    if benchmark == "gsm8k":
        answer = str(problem.get("answer", ""))
        if "####" in answer:
            return normalize_number_text(answer.rsplit("####", 1)[1].strip())
        if re.fullmatch(r"\s*-?[\d,$.]+\s*", answer):
            return normalize_number_text(answer.strip())
        raise ProblemsError(f"GSM8K problem {problem.get('task_id')!r}: no '#### <answer>' in its answer")
    solution = problem.get("solution")
    if isinstance(solution, str):
        boxed, _ = last_boxed(solution)
        if boxed is not None:
            return boxed
    if problem.get("answer") not in (None, ""):
        return str(problem["answer"])
    raise ProblemsError(f"MATH problem {problem.get('task_id')!r}: no boxed solution and no answer field")
