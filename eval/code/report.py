"""results.jsonl and summary.json in the DESIGN.md format (pass@k for every k the sample counts allow)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from eval.code.executor import ENV_ERROR
from eval.pass_at_k import mean_pass_at_k


def _outcomes(results: list[dict], key: str) -> dict[str, list[bool]]:
    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        if r["status"] != ENV_ERROR and r.get(key) is not None:
            by_task[r["task_id"]].append(bool(r[key]))
    return dict(by_task)


def verdict_block(results: list[dict], key: str = "passed") -> dict[str, Any]:
    outcomes = _outcomes(results, key)
    if not outcomes:  # nothing evaluable (e.g. every sample hit an environment error)
        return {"n_problems": 0, "n_samples": 0, "pass@1": None}
    return {"n_problems": len(outcomes), "n_samples": sum(len(v) for v in outcomes.values()),
            **mean_pass_at_k(outcomes)}


def summarize(benchmark: str, results: list[dict], *, dataset: str, extra: dict | None = None) -> dict[str, Any]:
    """Top-level pass@k from `passed`; per-verdict (base/plus/original) or per-language blocks beside it."""
    summary: dict[str, Any] = {"benchmark": benchmark, "dataset": dataset, **verdict_block(results)}
    summary["n_samples_total"] = len(results)
    summary["status_counts"] = dict(Counter(r["status"] for r in results))
    for key, name in (("base_passed", "base"), ("plus_passed", "plus"), ("original_passed", "original")):
        if any(r.get(key) is not None for r in results):
            summary[name] = verdict_block(results, key)
    languages = sorted({r["language"] for r in results if "language" in r})
    if languages:
        summary["languages"] = {lang: verdict_block([r for r in results if r.get("language") == lang])
                                for lang in languages}
    summary.update(extra or {})
    return summary


def write_outputs(out_dir: str | Path, results: list[dict], summary: dict) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
