"""HumanEval(+) and MBPP(+) with evalplus's tests and oracles, executed in our sandbox.

evalplus 0.3.1 supplies the data conventions (MBPP input deserialisation, the special oracles, float
tolerance rules, time limits = max(1 s, 4 x the canonical solution's time)). Its own runner is not used:
it starts a 20-second "stuck checker" thread, reuses old result files or asks Y/N on stdin, and its
`find_zero` oracle never marks HumanEval/32 passed (evalplus PR #201), so it scores its own canonical
solutions 163/164. Here the canonical outputs and CPU times (the ground truth) are computed once per task
in the sandbox, in batches, and cached under the code-eval cache keyed by everything they depend on, so
every sample of a task, and every later run (the next checkpoint's evaluation), does only its own half of
the work. Samples run most expensive first, so no long task starts last. The cache is hidden from samples.

Verdicts per sample: `base` (the original inputs, evalplus's base tests), `plus` (base and plus inputs)
and `original` (the dataset's own check()/asserts). Files without evalplus inputs (the original
HumanEval or MBPP) get the original verdict only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import marshal
import os
import platform
import py_compile
import re
import sys
import threading
from functools import lru_cache, partial
from pathlib import Path

from eval.code import executor, toolchains
from eval.code.evalplus_harness import DIGEST_FORMAT, MARSHAL_VERSION, load_oracles
from eval.code.languages import Program, Step
from eval.code.problems import InputError
from eval.code.sandbox import Limits, Sandbox

log = logging.getLogger(__name__)

HARNESS = Path(__file__).with_name("evalplus_harness.py")
MIN_TIME_LIMIT, TIME_LIMIT_FACTOR = 1.0, 4.0  # evalplus's defaults
GROUND_TRUTH_VERSION = 3  # bump when the harness's ground-truth entries change meaning (3: marshalled values)
MAX_VALUE_BYTES = 4096  # larger canonical outputs are cached as digests
GROUND_TRUTH_BATCH = 8  # tasks per ground-truth process (one interpreter start per batch, not per task)
LOAD_LIMIT, REFERENCE_LIMIT = 10.0, 60.0
OFFICIAL_MBPP_PLUS_TASKS = 378


def _mbpp_deserialize_inputs():
    """evalplus's MBPP+ input decoding. Its data modules read *_OVERRIDE_PATH at import (so never let them
    download) and import `datasets` (0.6 s): only MBPP pays for it."""
    os.environ.setdefault("HUMANEVAL_OVERRIDE_PATH", os.devnull)
    os.environ.setdefault("MBPP_OVERRIDE_PATH", os.devnull)
    from evalplus.data.mbpp import mbpp_deserialize_inputs
    return mbpp_deserialize_inputs


@lru_cache(maxsize=1)
def _oracles():
    """evalplus's special oracles (a stdlib-only file), loaded by path as the harness does: importing
    `evalplus.eval` would pull in numpy and psutil for two lists of names."""
    spec = importlib.util.find_spec("evalplus")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("evalplus is not installed")
    return load_oracles(str(Path(next(iter(spec.submodule_search_locations))) / "eval" / "_special_oracle.py"))


# ----------------------------------------------------------------------------- problems


def prepare_problems(records: list[dict], benchmark: str) -> dict[str, dict]:
    """Normalise HumanEval / HumanEval+ / MBPP / MBPP+ records to one shape keyed by task id."""
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
            p["base_input"] = _mbpp_deserialize_inputs()(p["task_id"], p["base_input"])
            p["plus_input"] = _mbpp_deserialize_inputs()(p["task_id"], p["plus_input"])
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


def _marshalled_inputs(problem: dict) -> list[bytes]:
    """Each input marshalled on its own, once per problem (samples of a task share it): the harness loads
    a fresh copy per call at C speed, with tuples, sets and big ints exact."""
    if "_marshalled_inputs" not in problem:
        inputs = problem.get("base_input", []) + problem.get("plus_input", [])
        try:
            problem["_marshalled_inputs"] = [marshal.dumps(list(i), MARSHAL_VERSION) for i in inputs]
        except ValueError as e:
            raise InputError(f"{problem['task_id']}: an input holds a value that is not plain data ({e})") from None
    return problem["_marshalled_inputs"]


@lru_cache(maxsize=1)
def _python_path() -> list[str]:
    """Where numpy lives, for the harness that runs without site-packages."""
    spec = importlib.util.find_spec("numpy")
    return [str(Path(spec.origin).parents[1])] if spec and spec.origin else []


def _exactly_equal_passes(dataset: str, entry_point: str) -> bool:
    """False for the entry points whose special oracle may fail an output equal to the expected one."""
    oracles = _oracles()
    special = {"find_zero"} if dataset == "humaneval" else {
        "are_equivalent", "sum_div", "surface_Area", "digit_distance_nums",
        *oracles.MBPP_OUTPUT_SET_EQ_TASKS, *oracles.MBPP_OUTPUT_NOT_NONE_TASKS}
    return entry_point not in special


def _reference_fields(problem: dict, dataset: str) -> dict:
    """What the canonical outputs depend on (and so the ground-truth cache key)."""
    oracles = _oracles()
    return {"dataset": dataset, "reference": problem["prompt"] + problem["canonical_solution"],
            "entry_point": problem["entry_point"], "inputs": _marshalled_inputs(problem),
            "output_not_none": problem["entry_point"] in oracles.MBPP_OUTPUT_NOT_NONE_TASKS,
            "load_limit": LOAD_LIMIT, "reference_limit": REFERENCE_LIMIT}


def _sample_job(problem: dict, dataset: str, code: str, expected: list[dict]) -> bytes:
    oracles = _oracles()
    test = problem.get("test")
    return marshal.dumps({
        **_reference_fields(problem, dataset), "code": code, "expected": expected,
        "n_base": len(problem.get("base_input", [])), "atol": problem["atol"],
        "min_time_limit": MIN_TIME_LIMIT, "time_limit_factor": TIME_LIMIT_FACTOR, "test_limit": 5.0, "test": test,
        "test_calls_check": bool(test and "def check(" in test), "oracles": oracles.__file__,
        "python_path": _python_path(),
    })


@lru_cache(maxsize=1)
def _harness_source_digest() -> str:
    return hashlib.sha256(HARNESS.read_bytes()).hexdigest()[:16]


def _harness_bytecode() -> Path:
    """The harness compiled into the code-eval cache (looked up per program: the cache folder may change or be
    cleaned between evaluations), named by its source's hash. Every sandboxed start then loads bytecode: a
    __pycache__ that is stale, read-only or never written (PYTHONDONTWRITEBYTECODE, common in containers)
    costs a 9 ms compile per sample."""
    path = toolchains.cache_root() / "harness" / f"evalplus_harness-{sys.implementation.cache_tag}-{_harness_source_digest()}.pyc"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # workers race here
        py_compile.compile(str(HARNESS), cfile=str(tmp), dfile=str(HARNESS), doraise=True)
        os.replace(tmp, path)  # atomic: two evaluations at once write the same bytes
    return path


def _harness_command(mode: str) -> list[str]:
    """-I: isolated from the environment and user site; -S: no site-packages (15-20 ms per start)."""
    return [sys.executable, "-I", "-S", str(_harness_bytecode()), mode]


def _program(mode: str, job: bytes, timeout_s: float, cache_dir: Path, collect: tuple[str, ...] = ()) -> Program:
    """The harness in the sandbox, with the expected-output cache hidden (a sample must not read answers)."""
    run = Step(_harness_command(mode), Limits(timeout_s=timeout_s, memory_mb=4096), hidden=[cache_dir])
    return Program(files={"job.marshal": job}, run=run, collect=collect)


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


# ----------------------------------------------------------------------------- ground truth


def expected_cache_dir() -> Path:
    path = toolchains.cache_root() / "evalplus-expected"
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    """Part of the cache key: the canonical CPU times set the samples' time limits, so a cache in a home folder
    shared by unlike cluster nodes must not carry one node's times to another."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return platform.processor()


def _ground_truth_key(fields: dict) -> str:
    key = hashlib.sha256(json.dumps([GROUND_TRUTH_VERSION, DIGEST_FORMAT, MARSHAL_VERSION, MAX_VALUE_BYTES, sys.version_info[:2],
                                     _cpu_model(), {k: v for k, v in fields.items() if k != "inputs"}],
                                    sort_keys=True).encode())
    for blob in fields["inputs"]:
        key.update(len(blob).to_bytes(8, "little") + blob)
    return key.hexdigest()


def _read_cached(path: Path, n_inputs: int) -> list[dict] | None:
    """The cached entries, or None (compute them again) when missing, torn by a crash, or not one per input.
    Marshal (the cache key holds the Python version): values load at C speed with their exact types."""
    try:
        entries = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if not (isinstance(entries, list) and len(entries) == n_inputs
            and all(isinstance(e, dict) and isinstance(e.get("s"), (int, float)) for e in entries)):
        return None
    return entries


def _write_cached(path: Path, entries: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(marshal.dumps(entries, MARSHAL_VERSION))
    os.replace(tmp, path)  # atomic: two evaluations at once write the same content


def _ground_truth_program(batch: list[tuple[str, str, dict]], dataset: str, problems: dict[str, dict],
                          cache_dir: Path) -> Program:
    tasks = [{**fields, "key": key, "max_value_bytes": MAX_VALUE_BYTES,
              "digest_ok": _exactly_equal_passes(dataset, fields["entry_point"])} for _, key, fields in batch]
    job = marshal.dumps({"tasks": tasks, "python_path": _python_path()})
    timeout = sum(_timeout_s(problems[tid]) for tid, _, _ in batch)
    return _program("ground-truth", job, timeout, cache_dir, collect=("gt-out.marshal",))


def _cached_ground_truth(problems: dict[str, dict], dataset: str, cache_dir: Path
                         ) -> tuple[dict[str, list[dict]], list[tuple[str, str, dict]]]:
    """(entries of the tasks found in the cache, [(task id, key, reference fields)] of those to compute)."""
    expected: dict[str, list[dict]] = {}
    missing: list[tuple[str, str, dict]] = []
    for tid, p in problems.items():
        if "base_input" not in p:
            continue
        fields = _reference_fields(p, dataset)
        key = _ground_truth_key(fields)
        cached = _read_cached(cache_dir / f"{key}.marshal", len(fields["inputs"])) if fields["inputs"] else []
        if cached is None:
            missing.append((tid, key, fields))
        else:
            expected[tid] = cached
    return expected, missing


def _ground_truth_results(batch: list[tuple[str, str, dict]], outcome: executor.Outcome, cache_dir: Path
                          ) -> dict[str, list[dict]]:
    """A finished ground-truth batch's entries per task id, written to the cache; a broken problem raises."""
    tids = [tid for tid, _, _ in batch]
    if not outcome.passed or not outcome.files or "gt-out.marshal" not in outcome.files:
        raise InputError(f"computing the canonical outputs of {tids} did not complete "
                         f"({outcome.status}: {outcome.detail[-300:]})")
    computed = marshal.loads(outcome.files["gt-out.marshal"])  # written by canonical code only, never a sample's
    found = {}
    for tid, key, _ in batch:
        result = computed.get(key) or {"error": "no result"}
        if "error" in result:
            raise InputError(f"{tid}: the canonical solution fails on its own inputs ({result['error']}); "
                             f"the problems file is broken")
        _write_cached(cache_dir / f"{key}.marshal", result["entries"])
        found[tid] = result["entries"]
    return found


# ----------------------------------------------------------------------------- evaluation


def evaluate_evalplus(problems: dict[str, dict], samples: list[dict], dataset: str, *,
                      sandbox: Sandbox | None = None, workers: int | None = None,
                      progress: bool = True, cache_dir: Path | None = None) -> list[dict]:
    """One result per sample: task_id, passed, status, base/plus/original verdicts.

    One queue over the workers: the ground truth of uncached tasks first, in batches; each task's samples
    as soon as its ground truth is known, most expensive first."""
    sandbox = sandbox or Sandbox()
    cache_dir = cache_dir or expected_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted({s["task_id"] for s in samples} - set(problems))
    if unknown:
        raise InputError(f"{len(unknown)} sample task ids are not in the problems file, e.g. {unknown[:3]}")
    by_task: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_task.setdefault(s["task_id"], []).append(i)
    expected, missing = _cached_ground_truth({t: problems[t] for t in by_task}, dataset, cache_dir)
    batches = [missing[i:i + GROUND_TRUTH_BATCH] for i in range(0, len(missing), GROUND_TRUTH_BATCH)]

    def sample_jobs(tid: str, entries: list[dict]) -> list[executor.Job]:
        p, cost = problems[tid], sum(e["s"] for e in entries)
        return [executor.Job((1, -cost, i), partial(_sample_program, p, dataset, samples[i]["completion"], entries, cache_dir), i)
                for i in by_task[tid]]

    def follow_up(key, outcome: executor.Outcome) -> list[executor.Job]:
        if not (isinstance(key, tuple) and key[0] == "ground truth"):
            return []
        found = _ground_truth_results(batches[key[1]], outcome, cache_dir)
        return [job for tid, entries in found.items() for job in sample_jobs(tid, entries)]

    jobs = [executor.Job((0, b), partial(_ground_truth_program, batch, dataset, problems, cache_dir),
                            ("ground truth", b))
            for b, batch in enumerate(batches)]
    jobs += [job for tid in by_task if tid not in {t for t, _, _ in missing}
             for job in sample_jobs(tid, expected.get(tid, []))]
    outcomes = executor.execute_queue(jobs, total=len(batches) + len(samples), follow_up=follow_up,
                                      sandbox=sandbox, workers=workers, progress=progress, desc=dataset)
    return [_result(s, problems[s["task_id"]], outcomes[i]) for i, s in enumerate(samples)]


def _sample_program(problem: dict, dataset: str, completion: str, expected: list[dict], cache_dir: Path) -> Program:
    job = _sample_job(problem, dataset, solution_code(problem, completion), expected)
    return _program("sample", job, _timeout_s(problem), cache_dir)


def _result(sample: dict, problem: dict, outcome: executor.Outcome) -> dict:
    v = _final_verdict(outcome) or {}
    if v.get("reference_error"):
        raise InputError(f"{sample['task_id']}: the canonical solution fails on its own inputs "
                         f"({v['reference_error']}); the problems file is broken")
    has_inputs, has_test = "base_input" in problem, bool(problem.get("test"))
    base = bool(v.get("base")) if has_inputs else None
    plus = bool(v.get("plus")) if has_inputs else None
    original = bool(v.get("original")) if has_test else None
    primary = base if base is not None else bool(original)
    status = executor.PASSED if primary else (executor.FAILED if outcome.passed else outcome.status)
    return {"task_id": sample["task_id"], "passed": primary, "status": status, "base_passed": base,
            "plus_passed": plus, "original_passed": original, "detail": outcome.detail,
            "run_s": round(outcome.run_s, 3)}
