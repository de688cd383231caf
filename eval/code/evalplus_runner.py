"""HumanEval(+) and MBPP(+) with evalplus's tests and oracles, executed in our sandbox.

evalplus 0.3.1 supplies the data conventions (MBPP input deserialisation, the special oracles, float
tolerance rules, time limits = max(1 s, 4 x the canonical solution's time)). Its own runner is not used:
it starts a 20-second "stuck checker" thread, reuses old result files or asks Y/N on stdin, and its
`find_zero` oracle never marks HumanEval/32 passed (evalplus PR #201), so it scores its own canonical
solutions 163/164. Here the expected outputs come from running the canonical solutions through the same
sandboxed harness (cached, hidden from samples), and the parent compares outputs.

Verdicts per sample: `base` (the original inputs, evalplus's base tests), `plus` (base and plus inputs)
and `original` (the dataset's own check()/asserts). Files without evalplus inputs (the original
HumanEval or MBPP) get the original verdict only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from eval.code import executor
from eval.code.evalplus_harness import decode, encode
from eval.code.languages import Program, Step
from eval.code.problems import InputError
from eval.code.sandbox import Limits, Sandbox
from eval.code.toolchains import cache_root

log = logging.getLogger(__name__)

HARNESS = Path(__file__).with_name("evalplus_harness.py")
HARNESS_VERSION = "1"
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


def oracle_dir() -> Path:
    """Expected outputs live here; the sandbox hides this folder from samples."""
    path = cache_root() / "oracles"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- problems


def prepare_problems(records: list[dict], benchmark: str) -> dict[str, dict]:
    """Normalise HumanEval / HumanEval+ / MBPP / MBPP+ records to one shape keyed by task id."""
    mbpp_deserialize_inputs, _, _ = _evalplus()
    problems = {}
    for r in records:
        p = dict(r)
        if benchmark == "mbpp" and "prompt" not in p and "text" in p:  # original MBPP
            p["task_id"] = f"Mbpp/{p['task_id']}"
            p["prompt"] = f'"""\n{p["text"]}\n{p["test_list"][0]}\n"""\n'
            p["test"] = "\n".join([p.get("test_setup_code", ""), *p["test_list"]])
            p["canonical_solution"] = p["code"]
        p["task_id"] = str(p["task_id"])
        for key in ("base_input", "plus_input"):
            if isinstance(p.get(key), str):
                p[key] = json.loads(p[key])
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


def _task_json(problem: dict, code: str, inputs: list, limits: list[float], stop_on_error: bool) -> str:
    test = problem.get("test")
    return json.dumps({
        "code": code, "entry_point": problem["entry_point"], "inputs": [encode(list(i)) for i in inputs],
        "time_limits": limits, "stop_on_error": stop_on_error, "load_limit": 10.0, "test_limit": 20.0,
        "test": test, "test_calls_check": bool(test) and "def check(" in test,
    })


def _program(task_json: str, timeout_s: float) -> Program:
    run = Step([sys.executable, "-I", str(HARNESS)], Limits(timeout_s=timeout_s, memory_mb=4096,
                                                            max_output_bytes=1 << 20))
    return Program(files={"task.json": task_json}, run=run, collect=("outputs.jsonl",))


def _parse_outputs(outcome: executor.Outcome) -> list[dict] | None:
    if not outcome.passed or not outcome.files or "outputs.jsonl" not in outcome.files:
        return None
    records = []
    for line in outcome.files["outputs.jsonl"].decode("utf-8", "replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            return None  # tampered or truncated output file: not a completed run
    return records


# ----------------------------------------------------------------------------- expected outputs


def _oracle_key(problems: dict[str, dict]) -> str:
    h = hashlib.sha256(HARNESS_VERSION.encode())
    for tid in sorted(problems):
        p = problems[tid]
        h.update(json.dumps([tid, p["prompt"], p["canonical_solution"], encode(p.get("base_input")),
                             encode(p.get("plus_input"))], sort_keys=True).encode())
    return h.hexdigest()[:24]


def expected_outputs(problems: dict[str, dict], *, sandbox: Sandbox, workers: int | None,
                     progress: bool) -> dict[str, dict]:
    """{task: {"out": [...], "time": [...]}} over base+plus inputs, from the canonical solutions (cached)."""
    with_inputs = {t: p for t, p in problems.items() if "base_input" in p}
    if not with_inputs:
        return {}
    cache = oracle_dir() / f"{_oracle_key(with_inputs)}.json"
    if cache.exists():
        raw = json.loads(cache.read_text())
        return {t: {"out": [decode(o) for o in v["out"]], "time": v["time"]} for t, v in raw.items()}
    tids = sorted(with_inputs)
    builders = []
    for t in tids:
        p = with_inputs[t]
        inputs = p["base_input"] + p["plus_input"]
        code = p["prompt"] + p["canonical_solution"]
        task = _task_json({**p, "test": None}, code, inputs, [60.0] * len(inputs), stop_on_error=False)
        builders.append(partial(_program, task, 300.0))
    outcomes = executor.execute_all(builders, sandbox=sandbox, workers=workers, progress=progress,
                                    desc="expected outputs")
    _, _, oracles = _evalplus()
    result, raw = {}, {}
    for t, outcome in zip(tids, outcomes, strict=True):
        records = _parse_outputs(outcome)
        n = len(with_inputs[t]["base_input"]) + len(with_inputs[t]["plus_input"])
        runs = [r for r in (records or []) if "i" in r]
        if len(runs) != n or any("error" in r for r in runs):
            bad = next((r for r in runs if "error" in r), None)
            raise InputError(f"canonical solution of {t} does not run on its own inputs "
                             f"({outcome.status}: {bad or outcome.detail})")
        outs = [decode(r["out"]) for r in runs]
        if with_inputs[t]["entry_point"] in oracles.MBPP_OUTPUT_NOT_NONE_TASKS:
            outs = [o is not None for o in outs]
        result[t] = {"out": outs, "time": [r["t"] for r in runs]}
        raw[t] = {"out": [encode(o) for o in outs], "time": result[t]["time"]}
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw))
    tmp.replace(cache)
    return result


# ----------------------------------------------------------------------------- comparison


def output_matches(dataset: str, entry_point: str, inp: list, out: Any, exp: Any, atol: float) -> bool:
    """evalplus's differential check (special oracles, float tolerance), with HumanEval/32 fixed."""
    _, is_floats, oracles = _evalplus()
    try:
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":  # Mbpp/164
                exact = True
            elif entry_point == "sum_div":  # Mbpp/295
                exact = exact or out == 0
            elif entry_point == "surface_Area":  # Mbpp/581
                exact = exact or abs(out - oracles._surface_Area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":  # Mbpp/558
                exact = exact or out == oracles._digit_distance_nums(*inp)
            elif entry_point in oracles.MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry_point in oracles.MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":
            # evalplus asserts this and then `continue`s without marking the input passed (PR #201)
            return abs(oracles._poly(*inp, out)) <= atol
        if atol == 0 and is_floats(exp):
            atol = 1e-6
        if exact:
            return True
        if atol == 0:
            return False
        if type(out) is not type(exp):
            return False
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False
        return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
    except Exception:  # noqa: BLE001 - a sample's odd output that cannot even be compared is wrong
        return False


def _verdicts(dataset: str, problem: dict, expected: dict | None, records: list[dict] | None) -> dict:
    """base / plus / original verdicts for one sample from its harness records."""
    has_inputs = expected is not None
    v: dict[str, Any] = {"base": None, "plus": None, "original": None}
    if records is None:
        if has_inputs:
            v["base"] = v["plus"] = False
        if problem.get("test"):
            v["original"] = False
        return v
    if problem.get("test"):
        v["original"] = any(r.get("original") is True for r in records)
    if has_inputs:
        nb = len(problem["base_input"])
        inputs = problem["base_input"] + problem["plus_input"]
        got = {r["i"]: r for r in records if "i" in r}
        ok = [i in got and "out" in got[i] and output_matches(
            dataset, problem["entry_point"], list(inputs[i]), decode(got[i]["out"]), expected["out"][i],
            problem["atol"]) for i in range(len(inputs))]
        v["base"] = all(ok[:nb])
        v["plus"] = v["base"] and all(ok[nb:])
    return v


# ----------------------------------------------------------------------------- evaluation


def evaluate_evalplus(problems: dict[str, dict], samples: list[dict], dataset: str, *,
                      sandbox: Sandbox | None = None, workers: int | None = None,
                      progress: bool = True) -> list[dict]:
    """One result per sample: task_id, passed, status, base/plus/original verdicts."""
    sandbox = sandbox or Sandbox(hidden=[oracle_dir()])
    unknown = sorted({s["task_id"] for s in samples} - set(problems))
    if unknown:
        raise InputError(f"{len(unknown)} sample task ids are not in the problems file, e.g. {unknown[:3]}")
    expected = expected_outputs({s["task_id"]: problems[s["task_id"]] for s in samples}, sandbox=sandbox,
                                workers=workers, progress=progress)
    task_cache: dict[str, tuple[list, list[float], float]] = {}
    builders = []
    for s in samples:
        p = problems[s["task_id"]]
        if s["task_id"] not in task_cache:
            exp = expected.get(s["task_id"])
            inputs = p["base_input"] + p["plus_input"] if exp else []
            limits = [max(MIN_TIME_LIMIT, TIME_LIMIT_FACTOR * t) for t in exp["time"]] if exp else []
            total = min(120.0, sum(limits)) + 10.0 + (25.0 if p.get("test") else 0.0)
            task_cache[s["task_id"]] = (inputs, limits, total)
        inputs, limits, total = task_cache[s["task_id"]]
        task = _task_json(p, solution_code(p, s["completion"]), inputs, limits, stop_on_error=True)
        builders.append(partial(_program, task, total))
    outcomes = executor.execute_all(builders, sandbox=sandbox, workers=workers, progress=progress, desc=dataset)
    results = []
    for s, outcome in zip(samples, outcomes, strict=True):
        p = problems[s["task_id"]]
        v = _verdicts(dataset, p, expected.get(s["task_id"]), _parse_outputs(outcome))
        primary = v["base"] if v["base"] is not None else bool(v["original"])
        status = executor.PASSED if primary else (executor.FAILED if outcome.passed else outcome.status)
        results.append({"task_id": s["task_id"], "passed": primary, "status": status,
                        "base_passed": v["base"], "plus_passed": v["plus"], "original_passed": v["original"],
                        "detail": outcome.detail, "run_s": round(outcome.run_s, 3)})
    return results

