"""Whole-response grading on real, human-labelled model responses: our `grade` vs Math-Verify, one run.

The set is ProcessBench's GSM8K, MATH and OlympiadBench responses of 12 open models with their
`final_answer_correct` labels (tests/eval/math/fixtures/processbench_labelled.jsonl.xz, see build_processbench.py
there). Math-Verify is called the way its README grades a response: `verify(parse("$" + gold + "$"),
parse(response))`. Prints agreement with the labels per split and per model, the rows each grader gets
wrong against the label (false positives: a wrong answer scored right), and calls/s of both.

    .venv/bin/python bench/math_grading_labelled.py [--limit N] [--show-disagreements]
"""

from __future__ import annotations

import argparse
import json
import lzma
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.math.grader import SYMPY_CACHE, grade, is_equiv  # noqa: E402
from eval.stats import wilson_interval  # noqa: E402

FIXTURE = ROOT / "tests" / "eval" / "math" / "fixtures" / "processbench_labelled.jsonl.xz"
SPLITS = ("gsm8k", "math", "olympiadbench")


def load_rows(path: Path = FIXTURE) -> list[dict[str, Any]]:
    with lzma.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def math_verify_grade(response: str, gold: str) -> bool:
    from math_verify import parse, verify

    try:
        return bool(verify(parse("$" + gold + "$"), parse(response)))
    except Exception:  # a crash is a wrong verdict for a grader, never the end of the benchmark
        return False


def run(grader: Callable[[dict[str, Any]], bool], rows: list[dict[str, Any]]) -> tuple[list[bool], float, float]:
    """(verdicts, seconds, slowest call)."""
    verdicts, slowest = [], 0.0
    start = time.perf_counter()
    for row in rows:
        t = time.perf_counter()
        verdicts.append(grader(row))
        slowest = max(slowest, time.perf_counter() - t)
    return verdicts, time.perf_counter() - start, slowest


def agreement(rows: list[dict[str, Any]], verdicts: list[bool], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for row, verdict in zip(rows, verdicts, strict=True):
        groups[row[key]].append(verdict == row["final_answer_correct"])
    out = {}
    for name, hits in sorted(groups.items()):
        low, high = wilson_interval(sum(hits), len(hits))
        out[name] = {"n": len(hits), "agreement": sum(hits) / len(hits), "interval95": [low, high]}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--show-disagreements", action="store_true")
    args = parser.parse_args(argv)
    rows = load_rows()[: args.limit]
    is_equiv("x^2-1", "(x-1)(x+1)")  # start our sympy worker (Math-Verify imports sympy at import time)
    math_verify_grade("$1$", "1")
    SYMPY_CACHE.clear()  # no verdict is reused from the warm-up
    graders = {
        "ours": lambda r: grade(r["response"], r["gold"], r["problem"]),
        "math-verify": lambda r: math_verify_grade(r["response"], r["gold"]),
    }
    report: dict[str, Any] = {"machine": f"{platform.node()} {platform.machine()}", "n_rows": len(rows)}
    verdicts = {}
    for name, grader in graders.items():
        verdicts[name], seconds, slowest = run(grader, rows)
        wrong = [(r["id"], r["final_answer_correct"]) for r, v in zip(rows, verdicts[name], strict=True)
                 if v != r["final_answer_correct"]]
        report[name] = {
            "calls_per_s": len(rows) / seconds, "seconds": seconds, "slowest_call_s": slowest,
            "per_split": agreement(rows, verdicts[name], "split"),
            "per_model": agreement(rows, verdicts[name], "generator"),
            "false_positives": [i for i, label in wrong if not label],
            "false_negatives": [i for i, label in wrong if label],
        }
    report["speed_ratio_ours_over_math_verify"] = report["ours"]["calls_per_s"] / report["math-verify"]["calls_per_s"]
    print(json.dumps(report, indent=1) if args.show_disagreements else "")
    print(f"{'split/model':28s} {'n':>5s} {'ours':>7s} {'math-verify':>12s}")
    for key in ("per_split", "per_model"):
        for name, ours in report["ours"][key].items():
            mv = report["math-verify"][key][name]
            print(f"{name:28s} {ours['n']:5d} {ours['agreement']:7.4f} {mv['agreement']:12.4f}")
    for name in graders:
        r = report[name]
        print(f"{name}: {r['calls_per_s']:.1f} calls/s ({r['seconds']:.1f} s, slowest {r['slowest_call_s']:.2f} s); "
              f"disagreements with the label: {len(r['false_positives'])} scored right against a 'wrong' label, "
              f"{len(r['false_negatives'])} scored wrong against a 'right' label")
    print(f"speed ratio ours / math-verify: {report['speed_ratio_ours_over_math_verify']:.1f}x")


if __name__ == "__main__":
    main()
