"""HumanEvalPack synthesize in six languages: every canonical solution passes; empty and swapped ones fail."""

from __future__ import annotations

import pytest

from eval.code.humanevalpack import evaluate_humanevalpack
from eval.code.languages import LANGUAGES
from eval.code.problems import read_records
from eval.code.report import summarize

pytestmark = pytest.mark.timeout(600)

# Canonical solutions whose own verdict is random. Go/95 ranges over a map and decides after two keys; Go
# randomises map iteration order, so that canonical fails about one run in four (two of its asserts depend
# on which key comes first). These must pass on a rerun; every other problem must pass the first time.
NONDETERMINISTIC_CANONICAL = {"Go/95"}


def load(shared_data, lang: str) -> dict[str, dict]:
    rows = read_records(shared_data("humanevalpack", f"{LANGUAGES[lang].dataset}.jsonl"))
    return {r["task_id"]: r for r in rows}


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_canonical_solution_passes(shared_data, lang):
    problems = load(shared_data, lang)
    samples = [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()]
    results, env = evaluate_humanevalpack(problems, samples, language=lang, progress=False)
    assert env == {}, f"toolchain missing for {lang}: {env}"
    for i, r in enumerate(results):
        for _ in range(5 if r["task_id"] in NONDETERMINISTIC_CANONICAL and not r["passed"] else 0):
            (r,), _ = evaluate_humanevalpack(problems, [samples[i]], language=lang, progress=False)
            results[i] = r
            if r["passed"]:
                break
    failed = [(r["task_id"], r["status"], r["detail"][:200]) for r in results if not r["passed"]]
    assert failed == []
    summary = summarize("humanevalpack", results, dataset="HumanEvalPack")
    assert summary["pass@1"] == 1.0 and summary["n_problems"] == 164
    assert summary["languages"][lang]["pass@1"] == 1.0


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_empty_and_swapped_completions_fail(shared_data, lang):
    problems = load(shared_data, lang)
    tids = list(problems)[:4]
    samples = [{"task_id": t, "completion": ""} for t in tids]
    # each task gets the next task's canonical body: it compiles in some languages, but must not pass
    samples += [{"task_id": t, "completion": problems[tids[(i + 1) % len(tids)]]["canonical_solution"]}
                for i, t in enumerate(tids)]
    results, env = evaluate_humanevalpack(problems, samples, language=lang, progress=False)
    assert env == {}
    assert [r["passed"] for r in results] == [False] * len(samples), results
    assert summarize("humanevalpack", results, dataset="HumanEvalPack")["pass@1"] == 0.0


def test_missing_toolchain_is_an_environment_error_not_a_failure(shared_data, monkeypatch):
    from eval.code import toolchains

    problems = load(shared_data, "go")
    monkeypatch.setattr(toolchains.shutil, "which", lambda name: None if name == "go" else "/bin/true")
    toolchains.go_env.cache_clear()
    try:
        samples = [{"task_id": "Go/0", "completion": problems["Go/0"]["canonical_solution"]}]
        results, env = evaluate_humanevalpack(problems, samples, progress=False)
    finally:
        toolchains.go_env.cache_clear()
    assert "go" in env and "missing go" in env["go"]
    assert results[0]["status"] == "environment_error"
    summary = summarize("humanevalpack", results, dataset="HumanEvalPack")
    assert summary["n_samples"] == 0 and summary["pass@1"] is None  # not counted as a failed sample
