"""`just code-eval`: evaluate the newest Code-Qwen run's export on a small HumanEval subset (or any benchmark).

Finds the newest runs/code-sft/* or runs/code-pretrain/* with an export/, generates (chat prompts for SFT
runs, completion prompts for pretraining runs) and writes runs/<recipe>/<run>/eval/<benchmark>/step-<N>/.
Problems: --problems (file or hub name), else the first local HumanEval file found, else a clear message.

    python -m eval.code.latest [--benchmark humanevalpack --language rust] [--limit 20] [--problems P]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

from eval.code.problems import InputError
from eval.code.run import EvalOptions, run_evaluation

RECIPES = ("code-sft", "code-pretrain")
ROOT = Path(__file__).resolve().parents[2]
# Local copies of HumanEval looked for when --problems is not given (the last one is this checkout's sibling
# folder of public evaluation data, present on the development machines).
DEFAULT_PROBLEMS = {
    "humaneval": ["data/humaneval/HumanEval.jsonl.gz", "data/humaneval/HumanEval.jsonl",
                  "../shared/data/humaneval/HumanEval.jsonl.gz"],
    "humanevalpack": ["data/humanevalpack", "../shared/data/humanevalpack"],
    "mbpp": ["data/mbppplus/MbppPlus.jsonl", "../shared/data/mbppplus/MbppPlus_prerelease_767efcc.jsonl"],
}


def newest_export(runs_dir: Path, recipes: tuple[str, ...] = RECIPES) -> Path | None:
    exports = [p for r in recipes for p in (runs_dir / r).glob("*/export") if (p / "config.json").exists()]
    return max(exports, key=lambda p: p.stat().st_mtime) if exports else None


def export_step(run: Path) -> int:
    """The step the export was taken at: the newest checkpoint, else the last metrics line, else 0."""
    steps = [int(m.group(1)) for p in (run / "checkpoints").glob("step-*") if (m := re.fullmatch(r"step-(\d+)", p.name))]
    if steps:
        return max(steps)
    metrics = run / "metrics.jsonl"
    if metrics.exists():
        lines = [line for line in metrics.read_text().splitlines() if line.strip()]
        if lines:
            return int(json.loads(lines[-1]).get("step", 0))
    return 0


def find_problems(benchmark: str, given: str | None) -> str | None:
    if given:
        return given
    env = os.environ.get("QS_EVAL_PROBLEMS")
    if env:
        return env
    for candidate in DEFAULT_PROBLEMS[benchmark]:
        path = (ROOT / candidate).resolve()
        if path.exists():
            return str(path)
    return None


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m eval.code.latest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default="runs")
    # --run-dir: torchrun takes a bare --run for an ambiguous abbreviation of its --run-path
    p.add_argument("--run", "--run-dir", dest="run", help="a run folder (default: the newest code run with an export)")
    p.add_argument("--benchmark", default="humaneval", choices=["humaneval", "mbpp", "humanevalpack"])
    p.add_argument("--language")
    p.add_argument("--problems", help="problems file or hub dataset name (e.g. openai/openai_humaneval)")
    p.add_argument("--limit", type=int, default=20, help="first N problems (0: all)")
    p.add_argument("--n", "--num-samples", dest="n", type=int, default=1, help="samples per problem "
                   "(--num-samples under torchrun, whose parser takes --n for an abbreviation of its own options)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--chat", choices=["auto", "yes", "no"], default="auto",
                   help="auto: chat prompts for code-sft runs, completion prompts for code-pretrain runs")
    p.add_argument("--workers", type=int)
    args = p.parse_args(argv)

    run = Path(args.run) if args.run else None
    export = run / "export" if run else newest_export(Path(args.runs_dir))
    if export is None or not export.exists():
        print(f"no code run with an export/ under {args.runs_dir}/{{{','.join(RECIPES)}}}: run `just code-sft` "
              "or `just code-pretrain` first, or pass --run", file=sys.stderr)
        return 2
    run = export.parent
    problems = find_problems(args.benchmark, args.problems)
    if problems is None:
        print(f"no local {args.benchmark} problems file found (looked for {DEFAULT_PROBLEMS[args.benchmark]} and "
              "$QS_EVAL_PROBLEMS); pass --problems with a file or a hub dataset name such as "
              "openai/openai_humaneval (needs network)", file=sys.stderr)
        return 2
    chat = args.chat == "yes" or (args.chat == "auto" and run.parent.name == "code-sft")
    out = run / "eval" / args.benchmark / f"step-{export_step(run)}"
    from shared.distributed import init_data_parallel

    init_data_parallel()  # under torchrun: every rank generates its share, rank 0 executes and writes
    try:
        summary = run_evaluation(EvalOptions(
            benchmark=args.benchmark, problems=problems, out=out, language=args.language, model=str(export),
            limit=args.limit or None, n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
            chat=chat, workers=args.workers))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary is None:  # a non-zero rank: rank 0 reports
        return 0
    print(json.dumps({k: summary[k] for k in ("benchmark", "n_problems", "n_samples", "pass@1")}), f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
