"""Grade samples against problems: results rows (one per sample) and a summary (accuracy and breakdowns)."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from eval.math.problems import gold_answer, question_of
from eval.math.response import grade_response
from shared.jsonl import iter_jsonl

log = logging.getLogger(__name__)


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """Samples JSONL (`task_id`, `completion`); a malformed line is an error naming file and line."""
    samples = []
    for line_no, row in iter_jsonl(path, error=ValueError):
        if not isinstance(row, dict) or "task_id" not in row or "completion" not in row:
            raise ValueError(f"{path}:{line_no}: a sample needs 'task_id' and 'completion'")
        samples.append(row)
    return samples


def _breakdown(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        if row.get(key) is not None:
            groups[str(row[key])].append(row["passed"])
    return {k: {"accuracy": sum(v) / len(v), "n_samples": len(v)} for k, v in sorted(groups.items())}


def _log_progress(done: int, total: int, start: float) -> None:
    rate = done / max(time.monotonic() - start, 1e-9)
    log.info("graded %d/%d samples (%.0f/s, ETA %.0fs)", done, total, rate, (total - done) / max(rate, 1e-9))


def evaluate_samples(
    benchmark: str, problems: list[dict[str, Any]], samples: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(results rows, summary) for samples graded against problems (as load_problems returns them)."""
    by_id = {str(p["task_id"]): p for p in problems}
    golds: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    start = time.monotonic()
    for i, sample in enumerate(samples):
        task_id = str(sample["task_id"])
        problem = by_id.get(task_id)
        if problem is None:
            skipped["task_id not in problems"] += 1
            continue
        if task_id not in golds:
            golds[task_id] = gold_answer(problem, benchmark)
        passed, extraction = grade_response(str(sample["completion"]), golds[task_id], question_of(problem))
        row = {"task_id": task_id, "passed": passed,
               "status": "no_answer" if extraction.answer is None else ("correct" if passed else "wrong"),
               "prediction": extraction.answer, "gold": golds[task_id], "extraction_rule": extraction.rule}
        for key, names in (("subject", ("subject", "type")), ("level", ("level",))):
            value = next((problem[n] for n in names if problem.get(n) is not None), None)
            if value is not None:
                row[key] = value
        results.append(row)
        if (i + 1) % 1000 == 0:
            _log_progress(i + 1, len(samples), start)
    if skipped:
        log.warning("skipped samples by reason: %s", dict(skipped))
    return results, summarize(benchmark, problems, results, skipped)


def summarize(
    benchmark: str, problems: list[dict[str, Any]], results: list[dict[str, Any]], skipped: Counter[str]
) -> dict[str, Any]:
    graded_ids = {r["task_id"] for r in results}
    summary: dict[str, Any] = {
        "benchmark": benchmark,
        "n_problems": len(problems),
        "n_samples": len(results),
        "accuracy": sum(r["passed"] for r in results) / len(results) if results else 0.0,
        "n_correct": sum(r["passed"] for r in results),
        "n_problems_without_samples": len(problems) - len(graded_ids),
        "extraction_rules": dict(Counter(r["extraction_rule"] for r in results)),
        "skipped": dict(skipped),
    }
    if any("subject" in r for r in results):
        summary["per_subject"] = _breakdown(results, "subject")
    if any("level" in r for r in results):
        summary["per_level"] = _breakdown(results, "level")
    return summary


def write_outputs(out_dir: str | Path, results: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for row in results:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
