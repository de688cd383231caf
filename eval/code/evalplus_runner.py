"""HumanEval(+) and MBPP(+) with evalplus's tests and oracles, executed in our sandbox.

evalplus 0.3.1 supplies the data conventions (MBPP input deserialisation, the special oracles, float
tolerance rules, time limits = max(1 s, 4 x the canonical solution's time)). Its own runner is not used:
it starts a 20-second "stuck checker" thread, reuses old result files or asks Y/N on stdin, and its
`find_zero` oracle never marks HumanEval/32 passed (evalplus PR #201), so it scores its own canonical
solutions 163/164. Here each sample runs in the sandbox next to the canonical solution, input by input
(evalplus_harness.py), so there is no separate ground-truth pass to wait for or cache to go stale.

Verdicts per sample: `base` (the original inputs, evalplus's base tests), `plus` (base and plus inputs)
and `original` (the dataset's own check()/asserts). Files without evalplus inputs (the original
HumanEval or MBPP) get the original verdict only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from functools import partial
from pathlib import Path

from eval.code import executor
from eval.code.evalplus_harness import dumps
from eval.code.languages import Program, Step
from eval.code.problems import InputError
from eval.code.sandbox import Limits, Sandbox

log = logging.getLogger(__name__)

HARNESS = Path(__file__).with_name("evalplus_harness.py")
MIN_TIME_LIMIT, TIME_LIMIT_FACTOR = 1.0, 4.0  # evalplus's defaults
OFFICIAL_MBPP_PLUS_TASKS = 378


def _evalplus():
    """Import evalplus's helpers; its data modules read *_OVERRIDE_PATH at import, so never let them download."""
    os.environ.setdefault("HUMANEVAL_OVERRIDE_PATH", os.devnull)
    os.environ.setdefault("MBPP_OVERRIDE_PATH", os.devnull)
    from evalplus.data.mbpp import mbpp_deserialize_inputs
    from evalplus.eval import _special_oracle as oracles
    from evalplus.eval import is_floats
    return mbpp_deserialize_inputs, is_floats, oracles


# ----------------------------------------------------------------------------- problems


def prepare_problems(records: list[dict], benchmark: str) -> dict[str, dict]:
    """Normalise HumanEval / HumanEval+ / MBPP / MBPP+ records to one shape keyed by task id."""
    mbpp_deserialize_inputs, _, _ = _evalplus()
    problems = {}
    for r in records:
        p = dict(r)
        if benchmark == "mbpp" and "test_list" in p and "base_input" not in p:  # original or sanitized MBPP
            first = p["test_list"][0]
            p["task_id"] = f"Mbpp/{p['task_id']}"
            p["prompt"] = f'"""\n{p.get("text") or p.get("prompt")}\n{first}\n"""\n'
            p["test"] = "\n".join([p.get("test_setup_code", ""), *p.get("test_imports", []), *p["test_list"]])
            p["canonical_solution"] = "\n" + p["code"]
            defined = re.findall(r"def\s+(\w+)\s*\(", p["code"])
            p["entry_point"] = p.get("entry_point") or next((f for f in defined if f in first), "")
        p["task_id"] = str(p["task_id"])
        for key in ("base_input", "plus_input"):
            if isinstance(p.get(key), str):
                p[key] = json.loads(p[key])
            if key in p and not p[key]:
                p[key] = []  # the MBPP+ prerelease stores "no plus inputs" as {} (Mbpp/793)
        if benchmark == "mbpp" and "base_input" in p:
            p["base_input"] = mbpp_deserialize_inputs(p["task_id"], p["base_input"])
            p["plus_input"] = mbpp_deserialize_inputs(p["task_id"], p["plus_input"])
        p["atol"] = float(p.get("atol") or 0)
        if "assertion" in p and "test" not in p:  # MBPP+ keeps the original asserts here
            p["test"] = p["assertion"]
        problems[p["task_id"]] = p
    return problems


def dataset_label(problems: dict[str, dict], benchmark: str, source: str) -> str:
    has_plus = any("plus_input" in p for p in problems.values())
    if benchmark == "humaneval":
        return "HumanEval+ (evalplus)" if has_plus else "HumanEval (original tests)"
    if not has_plus:
        return "MBPP (original tests)"
    if "prerelease" in source or len(problems) != OFFICIAL_MBPP_PLUS_TASKS:
        return (f"MBPP+ PRERELEASE copy ({len(problems)} tasks; the official MBPP+ v0.2.0 has "
                f"{OFFICIAL_MBPP_PLUS_TASKS}): numbers are not comparable with published MBPP+ results")
    return "MBPP+ (evalplus)"


def solution_code(problem: dict, completion: str) -> str:
    return problem["prompt"] + completion


# ----------------------------------------------------------------------------- programs


def _encoded_inputs(problem: dict) -> list[str]:
    """Each input as its own encoded JSON text, computed once per problem (samples of a task share it)."""
    if "_encoded_inputs" not in problem:
        inputs = problem.get("base_input", []) + problem.get("plus_input", [])
        problem["_encoded_inputs"] = [dumps(list(i)) for i in inputs]
    return problem["_encoded_inputs"]


def _task_json(problem: dict, dataset: str, code: str) -> str:
    _, _, oracles = _evalplus()
    test = problem.get("test")
    return json.dumps({
        "dataset": dataset, "code": code, "reference": problem["prompt"] + problem["canonical_solution"],
        "entry_point": problem["entry_point"], "inputs": _encoded_inputs(problem),
        "n_base": len(problem.get("base_input", [])), "atol": problem["atol"],
        "output_not_none": problem["entry_point"] in oracles.MBPP_OUTPUT_NOT_NONE_TASKS,
        "min_time_limit": MIN_TIME_LIMIT, "time_limit_factor": TIME_LIMIT_FACTOR, "reference_limit": 60.0,
        "load_limit": 10.0, "test_limit": 5.0, "test": test,
        "test_calls_check": bool(test and "def check(" in test), "oracles": oracles.__file__,
    })


def _program(task_json: str, timeout_s: float) -> Program:
    run = Step([sys.executable, "-I", str(HARNESS)], Limits(timeout_s=timeout_s, memory_mb=4096))
    return Program(files={"task.json": task_json}, run=run)


def _final_verdict(outcome: executor.Outcome) -> dict | None:
    """The verdict line the harness printed just before the token (None if the run did not complete)."""
    if not outcome.passed:
        return None
    lines = [line for line in outcome.stdout_tail.splitlines() if line.strip()]
    try:
        verdict = json.loads(lines[-2])
    except (IndexError, json.JSONDecodeError):
        return None
    return verdict if isinstance(verdict, dict) else None


def _timeout_s(problem: dict) -> float:
    """Whole-run limit: evalplus's per-input limits are enforced inside; this bounds a stuck process."""
    n = len(problem.get("base_input", [])) + len(problem.get("plus_input", []))
    return 20.0 + min(240.0, 2.0 * n) + (10.0 if problem.get("test") else 0.0)


# ----------------------------------------------------------------------------- evaluation


def evaluate_evalplus(problems: dict[str, dict], samples: list[dict], dataset: str, *,
                      sandbox: Sandbox | None = None, workers: int | None = None,
                      progress: bool = True) -> list[dict]:
    """One result per sample: task_id, passed, status, base/plus/original verdicts."""
    sandbox = sandbox or Sandbox()
    unknown = sorted({s["task_id"] for s in samples} - set(problems))
    if unknown:
        raise InputError(f"{len(unknown)} sample task ids are not in the problems file, e.g. {unknown[:3]}")
    builders = []
    for s in samples:
        p = problems[s["task_id"]]
        builders.append(partial(lambda p, c: _program(_task_json(p, dataset, c), _timeout_s(p)),
                                p, solution_code(p, s["completion"])))
    outcomes = executor.execute_all(builders, sandbox=sandbox, workers=workers, progress=progress, desc=dataset)
    results = []
    for s, outcome in zip(samples, outcomes, strict=True):
        p = problems[s["task_id"]]
        v = _final_verdict(outcome) or {}
        if v.get("reference_error"):
            raise InputError(f"{s['task_id']}: the canonical solution fails on its own inputs "
                             f"({v['reference_error']}); the problems file is broken")
        has_inputs, has_test = "base_input" in p, bool(p.get("test"))
        base = bool(v.get("base")) if has_inputs else None
        plus = bool(v.get("plus")) if has_inputs else None
        original = bool(v.get("original")) if has_test else None
        primary = base if base is not None else bool(original)
        status = executor.PASSED if primary else (executor.FAILED if outcome.passed else outcome.status)
        results.append({"task_id": s["task_id"], "passed": primary, "status": status, "base_passed": base,
                        "plus_passed": plus, "original_passed": original, "detail": outcome.detail,
                        "run_s": round(outcome.run_s, 3)})
    return results
