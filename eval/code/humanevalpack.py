"""HumanEvalPack synthesize: evaluate samples in any of the six languages (task ids say which)."""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from functools import partial

from eval.code import executor
from eval.code.languages import Language, Program, get_language, language_of_task
from eval.code.sandbox import Sandbox
from eval.code.toolchains import EnvironmentProblem

log = logging.getLogger(__name__)


def evaluate_humanevalpack(problems: dict[str, dict], samples: list[dict], *, language: str | None = None,
                           sandbox: Sandbox | None = None, workers: int | None = None,
                           progress: bool = True, run_timeout_s: float | None = None
                           ) -> tuple[list[dict], dict[str, str]]:
    """One result per sample (in order): task_id, passed, status, language, detail.

    Returns (results, environment_errors by language). Samples of a language whose toolchain is missing get
    status "environment_error" and are not counted as failures by the summary.
    """
    fixed = get_language(language) if language else None
    langs: dict[str, Language] = {}
    for s in samples:
        lang = fixed or language_of_task(s["task_id"])
        langs[s["task_id"]] = lang
    env_errors: dict[str, str] = {}
    for lang in {lang.name: lang for lang in langs.values()}.values():
        try:
            lang.check_environment()
        except EnvironmentProblem as e:
            env_errors[lang.name] = str(e)
            log.error("%s: environment error, its samples are not evaluated: %s", lang.name, e)
    runnable = [i for i, s in enumerate(samples) if langs[s["task_id"]].name not in env_errors]
    builders = [partial(_build, langs[samples[i]["task_id"]], problems[samples[i]["task_id"]],
                        samples[i]["completion"], run_timeout_s) for i in runnable]
    outcomes = executor.execute_all(builders, sandbox=sandbox, workers=workers, progress=progress,
                                    desc="humanevalpack")
    by_index = dict(zip(runnable, outcomes, strict=True))
    results = []
    for i, s in enumerate(samples):
        lang = langs[s["task_id"]]
        out = by_index.get(i)
        if out is None:
            results.append({"task_id": s["task_id"], "passed": False, "status": executor.ENV_ERROR,
                            "language": lang.name, "detail": env_errors[lang.name]})
        else:
            results.append({"task_id": s["task_id"], "passed": out.passed, "status": out.status,
                            "language": lang.name, "detail": out.detail,
                            "compile_s": round(out.compile_s, 3), "run_s": round(out.run_s, 3)})
    return results, env_errors


def _build(lang: Language, problem: dict, completion: str, run_timeout_s: float | None) -> Program:
    program = lang.build(problem, completion)
    if run_timeout_s is not None:  # e.g. shorter for tests, longer for slow machines
        program.run.limits = dataclasses.replace(program.run.limits, timeout_s=run_timeout_s)
    return program


def languages_in(results: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        grouped[r["language"]].append(r)
    return dict(grouped)
