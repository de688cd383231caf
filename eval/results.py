"""The results layer: every evaluation of every run, and every run's training curve, as pandas tables.

Evaluations land in `runs/<recipe>/<run>/eval/<benchmark>/step-<N>/{summary.json,results.jsonl}` (written by
`python -m eval.code` / `python -m eval.math`, in training or later by `eval.watch`). `load_results` walks a
runs folder and returns one row per (run, step, benchmark, language, metric); `load_metrics` returns the
`metrics.jsonl` curves (step, loss, lr, tokens, tokens_per_s) of every run.

A tiny math run also writes its held-out evaluation straight into `eval/summary.json` (DESIGN.md); that one
is read too, at the step recorded in the summary or else the run's last logged step.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.jsonl import read_jsonl_objects

log = logging.getLogger(__name__)

# n_problems extends the contract's columns: a score is comparable with the report's only on the full set.
RESULT_COLUMNS = ["run", "recipe", "step", "tokens", "benchmark", "language", "metric", "value", "n_problems"]
METRIC_COLUMNS = ["run", "recipe", "step", "loss", "lr", "tokens", "tokens_per_s"]
STEP_DIR = re.compile(r"^step-(\d+|final)$")  # eval.math.latest writes step-final for a run without metrics
# Summary keys that are scores (fractions in [0, 1]); everything else in a summary is bookkeeping.
SCORE_KEY = re.compile(r"^(accuracy|pass@\d+|pass@\d+_(base|plus)|(base|plus)_pass@\d+)$")
# One spelling per language, the evaluator's `--language` one (DESIGN.md).
LANGUAGE_ALIASES = {"javascript": "js", "c++": "cpp", "py": "python"}


class ResultsError(ValueError):
    """A results or metrics file that cannot be read; the message names the file (and line)."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSONL file; blank lines are allowed, a malformed line is an error naming it."""
    return read_jsonl_objects(path, error=ResultsError)


def read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(summary, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return summary


def run_dirs(runs_dir: Path) -> list[Path]:
    """Run folders `runs_dir/<recipe>/<run>/`: any folder two levels down with a metrics file or eval/ in it."""
    found = []
    for recipe_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        for run_dir in sorted(p for p in recipe_dir.iterdir() if p.is_dir()):
            if (run_dir / "metrics.jsonl").exists() or (run_dir / "eval").is_dir():
                found.append(run_dir)
    return found


# ----------------------------------------------------------------------------- training curves


def load_run_metrics(run_dir: Path) -> pd.DataFrame:
    """metrics.jsonl of one run as a table sorted by step (a resumed run may log a step twice: last wins)."""
    path = run_dir / "metrics.jsonl"
    rows = read_jsonl(path) if path.exists() else []
    for lineno, row in enumerate(rows, start=1):
        if "step" not in row:
            raise ResultsError(f"{path}: record {lineno} has no 'step'")
    frame = pd.DataFrame(rows)
    for column in METRIC_COLUMNS[2:]:
        if column not in frame:
            frame[column] = np.nan
    frame.insert(0, "run", run_dir.name)
    frame.insert(1, "recipe", run_dir.parent.name)
    if frame.empty:
        return frame
    frame["step"] = frame["step"].astype(int)
    frame = frame.drop_duplicates("step", keep="last").sort_values("step")
    return frame.reset_index(drop=True)


def load_metrics(runs_dir: str | Path = "runs") -> pd.DataFrame:
    """Training curves of every run under runs_dir: run, recipe, step, loss, lr, tokens, tokens_per_s, ..."""
    frames = [load_run_metrics(d) for d in run_dirs(Path(runs_dir))] if Path(runs_dir).is_dir() else []
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def tokens_at(metrics: pd.DataFrame, step: int) -> float:
    """Cumulative trained tokens at `step`: the logged value, else interpolated between the logged steps
    around it (tokens grow linearly between logs); NaN outside the logged range."""
    if metrics.empty or metrics["tokens"].isna().all():
        return math.nan
    logged = metrics.dropna(subset=["tokens"])
    steps = logged["step"].to_numpy(dtype=float)
    if step < steps[0] or step > steps[-1]:
        return math.nan
    return float(np.interp(step, steps, logged["tokens"].to_numpy(dtype=float)))


# ----------------------------------------------------------------------------- evaluations


@dataclass
class ResultsScan:
    """What a walk over the runs folder found: score rows, and what it skipped, counted by reason."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=RESULT_COLUMNS)
        frame["step"] = frame["step"].astype("int64")
        frame["tokens"] = frame["tokens"].astype(float)
        frame["value"] = frame["value"].astype(float)
        frame["n_problems"] = frame["n_problems"].astype("Int64")
        return frame.sort_values(["recipe", "run", "benchmark", "language", "metric", "step"], ignore_index=True)


def split_benchmark(folder: str, summary: dict[str, Any]) -> tuple[str, str]:
    """(benchmark, language) of an evaluation: the summary's own fields, else the folder name
    (`humanevalpack-rust` -> humanevalpack, rust). Language is "" for single-language benchmarks."""
    benchmark = str(summary.get("benchmark") or folder)
    if folder != benchmark and not folder.startswith(benchmark + "-"):
        benchmark = folder  # the folder names the problem set (eval/heldout/ graded by the gsm8k grader)
    language = summary.get("language")
    if not language and folder.startswith(benchmark + "-"):
        language = folder[len(benchmark) + 1 :]
    if not language and "-" in benchmark:
        benchmark, language = benchmark.split("-", 1)
    language = str(language or "").lower()
    return benchmark, LANGUAGE_ALIASES.get(language, language)


def score_rows(summary: dict[str, Any], base: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    rows = []
    for key, value in summary.items():
        if not SCORE_KEY.match(key) or value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ResultsError(f"{path}: score {key!r} is not a number: {value!r}")
        rows.append({**base, "metric": key, "value": float(value)})
    return rows


def scan_run(run_dir: Path, scan: ResultsScan) -> None:
    metrics = load_run_metrics(run_dir)
    last_step = int(metrics["step"].max()) if not metrics.empty else None
    eval_dir = run_dir / "eval"
    if not eval_dir.is_dir():
        return
    found: list[tuple[Path, str, int | None]] = []
    if (eval_dir / "summary.json").exists():
        found.append((eval_dir / "summary.json", "heldout", None))
    for bench_dir in sorted(p for p in eval_dir.iterdir() if p.is_dir()):
        for step_dir in sorted(p for p in bench_dir.iterdir() if p.is_dir()):
            match = STEP_DIR.match(step_dir.name)
            if not match:
                continue  # a watcher's scratch folder (step-N.tmp-...) or anything else
            if not (step_dir / "summary.json").exists():
                scan.skipped["step folder without summary.json"] += 1
                continue
            step = None if match.group(1) == "final" else int(match.group(1))
            found.append((step_dir / "summary.json", bench_dir.name, step))
    for path, folder, step in found:
        summary = read_summary(path)
        step = step if step is not None else summary.get("step", last_step)
        if step is None:
            scan.skipped["final evaluation of a run with no step (no metrics.jsonl)"] += 1
            continue
        # The root eval/summary.json is the run's own held-out set, whatever benchmark grader scored it.
        labelled = {**summary, "benchmark": "heldout"} if folder == "heldout" else summary
        benchmark, language = split_benchmark(folder, labelled)
        base = {"run": run_dir.name, "recipe": run_dir.parent.name, "step": int(step),
                "tokens": tokens_at(metrics, int(step)), "benchmark": benchmark, "language": language,
                "n_problems": summary.get("n_problems")}
        rows = score_rows(summary, base, path)
        if not rows:
            scan.skipped["summary.json without a score (pass@k or accuracy)"] += 1
        scan.rows.extend(rows)


def scan_results(runs_dir: str | Path = "runs") -> ResultsScan:
    scan = ResultsScan()
    runs_path = Path(runs_dir)
    if not runs_path.is_dir():
        raise ResultsError(f"runs folder {runs_path} does not exist")
    for run_dir in run_dirs(runs_path):
        scan_run(run_dir, scan)
    for reason, count in sorted(scan.skipped.items()):
        log.warning("skipped %d evaluation(s): %s", count, reason)
    return scan


def load_results(runs_dir: str | Path = "runs") -> pd.DataFrame:
    """Every evaluation under runs_dir, one row per score: run, recipe, step, tokens (from metrics.jsonl),
    benchmark, language, metric (pass@1, accuracy, ...), value, n_problems."""
    return scan_results(runs_dir).frame()
