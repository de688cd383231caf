"""`python -m eval.math --benchmark <gsm8k|math> --problems <file or hub name> --samples <file> --out <dir>`.

Without --samples, --model (a path or hub name) generates the samples first and writes
`<out>/samples.jsonl`. Writes `<out>/results.jsonl` and `<out>/summary.json` (DESIGN.md, Evaluation).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from eval.math.evaluate import evaluate_samples, read_samples, write_outputs
from eval.math.problems import BENCHMARKS, DEFAULT_HUB, load_problems
from shared.distributed import init_data_parallel, is_main

log = logging.getLogger("eval.math")
DEFAULT_MAX_NEW_TOKENS = {"gsm8k": 512, "math": 1024}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.math", description=__doc__.split("\n")[0])
    p.add_argument("--benchmark", choices=BENCHMARKS, required=True)
    p.add_argument("--problems", help="JSONL/JSON/parquet file or hub dataset (name[:config][@split]); "
                                      f"default {DEFAULT_HUB}")
    p.add_argument("--samples", help="samples JSONL (task_id, completion); omit to generate with --model")
    p.add_argument("--model", help="model path or hub name, used when --samples is not given")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--chat", action="store_true", help="zero-shot ChatML prompts (chat models); "
                                                       "default few-shot (base models)")
    # --num-samples: torchrun's parser takes a bare --n for an ambiguous abbreviation of --nnodes/--nproc-per-node
    p.add_argument("--n", "--num-samples", dest="n", type=int, default=1, help="samples per problem")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (the default)")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N problems")
    return p


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    """Under torchrun every rank generates its share; rank 0 grades and writes (the summary), the others None."""
    init_data_parallel()  # a no-op unless a launcher started several ranks
    problems = load_problems(args.problems or DEFAULT_HUB[args.benchmark], args.benchmark)
    if args.limit is not None:
        problems = problems[: args.limit]
    out = Path(args.out)
    if args.samples:
        samples = read_samples(args.samples)
    else:
        if not args.model:
            raise SystemExit("error: give --samples, or --model to generate them")
        from eval.math.generation import generate_samples, write_samples
        from eval.sharded import release_work_dir

        parts = out / "samples.parts"  # finished blocks of every rank: a rerun continues from them
        samples = generate_samples(
            args.model, args.benchmark, problems, chat=args.chat, n=args.n, temperature=args.temperature,
            top_p=args.top_p, max_new_tokens=args.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[args.benchmark],
            batch_size=args.batch_size, seed=args.seed, work_dir=parts,
        )
        if is_main():
            write_samples(out / "samples.jsonl", samples)
        release_work_dir(parts)
    if not is_main():
        return None
    results, summary = evaluate_samples(args.benchmark, problems, samples)
    write_outputs(out, results, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    summary = run(build_parser().parse_args(argv))
    if summary is None:  # a non-zero rank: rank 0 reports
        return 0
    print(json.dumps({k: summary[k] for k in ("benchmark", "n_problems", "n_samples", "accuracy")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
