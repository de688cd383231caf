"""`just math-eval`: evaluate the newest math run's export on that run's held-out set (or GSM8K / MATH-500).

Finds the newest `runs/math-sft/<run>` or `runs/math-rft/<run>` with an `export/`, generates with it
(zero-shot ChatML: the math recipes train chat models) and grades into
`runs/<recipe>/<run>/eval/<set>/step-<N>/` where N is the last step in the run's metrics.jsonl (or `final`
when the run logged none). Default problems: the run's `data/heldout.jsonl` (GSM8K-style question/answer
rows, graded by the gsm8k grader), written under `eval/heldout/`; `--problems` with `--benchmark gsm8k|math`
evaluates a full GSM8K or MATH-500 set under `eval/gsm8k/` or `eval/math/`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from eval.math.__main__ import DEFAULT_MAX_NEW_TOKENS, run
from eval.math.problems import BENCHMARKS

log = logging.getLogger("eval.math.latest")
MATH_RECIPES = ("math-sft", "math-rft")
HELDOUT = Path("data") / "heldout.jsonl"


def find_latest_run(runs_dir: Path) -> Path:
    """The run folder (under math-sft or math-rft) whose export/ was written last."""
    candidates = [
        run for recipe in MATH_RECIPES for run in sorted((runs_dir / recipe).glob("*"))
        if (run / "export").is_dir()
    ]
    if not candidates:
        raise SystemExit(f"error: no run with an export/ under {runs_dir}/{{{','.join(MATH_RECIPES)}}}; "
                         "run `just math-sft` first (or pass --run)")
    return max(candidates, key=lambda run: (run / "export").stat().st_mtime)


def export_step(run_dir: Path) -> str:
    """The last logged step of the run (the export is made at the end of training), else 'final'."""
    metrics = run_dir / "metrics.jsonl"
    last_step = None
    if metrics.exists():
        for line_no, line in enumerate(metrics.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: malformed metrics line skipped", metrics, line_no)
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                last_step = record["step"]
    return str(last_step) if last_step is not None else "final"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.math.latest", description=__doc__.split("\n")[0])
    p.add_argument("--runs-dir", default="runs")
    # --run-dir: torchrun takes a bare --run for an ambiguous abbreviation of its --run-path
    p.add_argument("--run", "--run-dir", dest="run", help="a specific run folder instead of the newest")
    p.add_argument("--benchmark", choices=BENCHMARKS, default="gsm8k",
                   help="gsm8k for the held-out set and GSM8K; math for MATH-500")
    p.add_argument("--problems", help="default: the run's data/heldout.jsonl")
    p.add_argument("--few-shot", action="store_true", help="few-shot base-model prompts instead of ChatML")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    run_dir = Path(args.run) if args.run else find_latest_run(Path(args.runs_dir))
    problems = args.problems or str(run_dir / HELDOUT)
    if not args.problems and not (run_dir / HELDOUT).exists():
        raise SystemExit(f"error: {run_dir / HELDOUT} not found; pass --problems")
    # The folder names the problem set (eval/results.py reads eval/heldout/ as the run's held-out set, graded
    # by the gsm8k grader), so a held-out score never lands beside a full GSM8K one.
    folder = "heldout" if not args.problems else args.benchmark
    out = run_dir / "eval" / folder / f"step-{export_step(run_dir)}"
    log.info("evaluating %s on %s -> %s", run_dir / "export", problems, out)
    eval_args = argparse.Namespace(
        benchmark=args.benchmark, problems=problems, samples=None, model=str(run_dir / "export"), out=str(out),
        chat=not args.few_shot, n=1, temperature=0.0, top_p=1.0,
        max_new_tokens=args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[args.benchmark],
        batch_size=args.batch_size, seed=0, limit=args.limit,
    )
    summary = run(eval_args)
    if summary is None:  # a non-zero rank under torchrun: rank 0 reports
        return 0
    print(json.dumps({"run": str(run_dir), "out": str(out),
                      **{k: summary[k] for k in ("benchmark", "n_problems", "n_samples", "accuracy")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
