"""Greedy held-out accuracy of a model through eval/math (zero-shot ChatML, as eval.watch and math-eval do).

Results go where the results layer reads them: `<run>/eval/heldout/step-<N>/{samples,results}.jsonl` and
`summary.json`, written into a scratch folder that is renamed into place, so a summary is never half-written.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from eval.math.evaluate import evaluate_samples, write_outputs
from eval.math.generation import generate_samples, write_samples
from eval.math.problems import load_problems
from eval.stats import accuracy_with_interval, paired_difference
from shared.distributed import broadcast_object, is_main

log = logging.getLogger(__name__)


@dataclass
class HeldoutEvalConfig:
    enabled: bool = True
    # Evaluate the model before training too (step 0), so the summary shows what training changed.
    baseline: bool = True
    max_problems: int | None = None  # None: the whole held-out file
    max_new_tokens: int = 160  # synthetic solutions are under 100 tokens; GSM8K runs use 512
    batch_size: int = 32


def eval_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def read_summary(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def evaluate_heldout(model, tokenizer, problems_file: Path, out_dir: Path, cfg: HeldoutEvalConfig,
                     benchmark: str = "gsm8k") -> dict[str, Any]:  # fmt: skip
    """Generate greedily for every held-out problem, grade with eval.math, write out_dir; the summary.

    Under torchrun call it on every rank: they share the generation (eval.sharded), rank 0 grades and writes,
    every rank gets the summary. An out_dir that already holds a summary is not evaluated again.
    """
    done = broadcast_object(read_summary(out_dir) if is_main() else None)
    if done is not None:
        log.info("held-out evaluation already in %s: accuracy %.3f", out_dir, done["accuracy"])
        return done
    problems = load_problems(problems_file, benchmark)
    if cfg.max_problems is not None:
        problems = problems[: cfg.max_problems]
    start = time.monotonic()
    samples = generate_samples(model, benchmark, problems, chat=True, n=1, temperature=0.0,
                               max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, tokenizer=tokenizer,
                               progress=False)  # fmt: skip
    if not is_main():
        return broadcast_object(None)
    results, summary = evaluate_samples(benchmark, problems, samples)
    summary.update(problems_file=str(problems_file), seconds=round(time.monotonic() - start, 1),
                   ci95=accuracy_with_interval([r["passed"] for r in results])["ci95"])
    scratch = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    write_samples(scratch / "samples.jsonl", samples)
    write_outputs(scratch, results, summary)
    shutil.rmtree(out_dir, ignore_errors=True)
    scratch.rename(out_dir)
    log.info("held-out accuracy %.3f on %d problems (%.0fs) -> %s", summary["accuracy"], len(problems),
             summary["seconds"], out_dir)  # fmt: skip
    return broadcast_object(summary)


def write_run_summary(run_dir: Path, after: dict[str, Any], before: dict[str, Any] | None, step: int,
                      extra: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """`<run>/eval/summary.json`: the trained model's held-out accuracy with the untrained model's beside it."""
    summary = {**after, "step": step,
               "untrained_accuracy": before["accuracy"] if before else None,
               "untrained_n_correct": before["n_correct"] if before else None,
               "untrained_ci95": before.get("ci95") if before else None, **(extra or {})}  # fmt: skip
    path = run_dir / "eval" / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(path)
    return path


def heldout_verdicts(eval_dir: Path) -> dict[str, bool]:
    """task_id -> correct, from an evaluation folder's results.jsonl (greedy: one sample per problem)."""
    path = eval_dir / "results.jsonl"
    verdicts: dict[str, bool] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{line_no}: malformed results line ({e.msg})") from e
        if row["task_id"] in verdicts:
            raise ValueError(f"{path}:{line_no}: task {row['task_id']} graded twice; expected one greedy sample")
        verdicts[str(row["task_id"])] = bool(row["passed"])
    return verdicts


def paired_comparison(before_dir: Path, after_dir: Path) -> dict[str, Any]:
    """after - before on the same held-out problems, with its paired 95% interval (eval.stats)."""
    before, after = heldout_verdicts(before_dir), heldout_verdicts(after_dir)
    if set(before) != set(after):
        raise ValueError(f"{before_dir} and {after_dir} graded different problems: no paired comparison")
    ids = sorted(before)
    return paired_difference([before[i] for i in ids], [after[i] for i in ids])
