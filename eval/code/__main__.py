"""python -m eval.code --benchmark <humaneval|mbpp|humanevalpack> [--language L] --problems P
                      (--samples S | --model M) --out DIR

Writes DIR/results.jsonl (one line per sample) and DIR/summary.json (pass@k for every k the samples allow;
HumanEval/MBPP also base, plus and original-test verdicts; HumanEvalPack per language). Without --samples
it generates with --model first and writes DIR/samples.jsonl. Exit status 0 when evaluated, 2 on bad
input, 3 when a language's toolchain is missing (outputs are still written, those samples marked
environment_error and left out of pass@k).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from eval.code.problems import InputError
from eval.code.run import EvalOptions, run_evaluation

log = logging.getLogger("eval.code")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eval.code", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", required=True, choices=["humaneval", "mbpp", "humanevalpack"])
    p.add_argument("--language", help="humanevalpack language: python, js, java, go, cpp, rust "
                                      "(default: each sample's task id prefix says)")
    p.add_argument("--problems", required=True,
                   help="problems file (.jsonl, .jsonl.gz, .json), a folder of <language>.jsonl files "
                        "(humanevalpack), or a hub dataset name (e.g. bigcode/humanevalpack:js)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--samples", help='samples JSONL: {"task_id": ..., "completion": ...} per line')
    src.add_argument("--model", help="model path or hub name: generate the samples first")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--limit", type=int, help="only the first N problems")
    # --num-samples: torchrun's parser takes a bare --n for an ambiguous abbreviation of --nnodes/--nproc-per-node
    p.add_argument("--n", "--num-samples", dest="n", type=int, default=1, help="samples per problem when generating")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--chat", action="store_true", help="ChatML instruction prompts (chat models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="parallel sandboxed processes (default: CPU count)")
    p.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "none"])
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    opts = EvalOptions(
        benchmark=args.benchmark, language=args.language, problems=args.problems, samples=args.samples,
        model=args.model, out=Path(args.out), limit=args.limit, n=args.n, temperature=args.temperature,
        top_p=args.top_p, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, chat=args.chat,
        seed=args.seed, workers=args.workers, sandbox=args.sandbox, progress=not args.quiet,
    )
    start = time.monotonic()
    from shared.distributed import init_data_parallel

    init_data_parallel()  # under torchrun: every rank generates its share, rank 0 executes and writes
    try:
        summary = run_evaluation(opts)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary is None:  # a non-zero rank: rank 0 reports
        return 0
    log.info("%s: pass@1 %s over %d problems (%d samples) in %.1fs -> %s", summary["benchmark"],
             summary.get("pass@1"), summary["n_problems"], summary["n_samples"], time.monotonic() - start,
             opts.out)
    if summary.get("environment_errors"):
        for lang, msg in summary["environment_errors"].items():
            print(f"environment error ({lang}): {msg}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
