"""Math grading benchmark: our grader against Math-Verify (PyPI `math-verify`) in the same run.

First, whole responses (`grade`) on 2,370 real model responses labelled by people, per split and per model
(bench/math_grading_labelled.py; `--labelled-only` stops after it). Then final answers (`is_equiv`):
  * speed: calls/s and the slowest call on MATH-500 gold answers vs model-style variants (equivalent
    rewrites and wrong answers, built from each gold by fixed rules, so every pair has a known verdict);
  * accuracy on those variant pairs, and on the hand-checked table (tests/eval/math/equivalence_table.py).
Math-Verify is run two ways: on the raw answer strings (its `parse(text)`), and with each answer wrapped in
`$...$` (its LaTeX extractor's anchor); its better accuracy is the one to beat.

    .venv/bin/python bench/math_grading.py [--labelled-only] [--math500 ../shared/data/math/math500_test.jsonl]
        [--limit N]
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.math.grader import SYMPY_CACHE, is_equiv  # noqa: E402
from eval.math.problems import gold_answer, load_problems  # noqa: E402
from tests.eval.math.equivalence_table import CASES  # noqa: E402

Pair = tuple[str, str, bool]


def equivalent_variants(gold: str) -> list[str]:
    """Rewrites a model produces for the same answer: presentation only, never the value."""
    out = {gold.replace("\\frac", "\\dfrac"), f"${gold}$"}
    if not re.search(r"\\[a-zA-Z]+ +[a-zA-Z]|\\ ", gold):  # "\\cot x" and "\\ " need their space
        out.add(gold.replace(" ", ""))
    if re.fullmatch(r"-?\d+", gold):
        out |= {gold + ".0", f"{int(gold):,}", f"x = {gold}"}
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", gold)
    if m:
        out.add(f"{m.group(1)}{m.group(2)}/{m.group(3)}")
    if "^\\circ" in gold:
        out.add(gold.replace("^\\circ", ""))
    if gold.startswith("\\left(") or gold.startswith("\\left["):
        out.add(gold.replace("\\left", "").replace("\\right", ""))
    out.discard(gold)
    return sorted(out)


def wrong_variants(gold: str) -> list[str]:
    """Answers a model gets wrong: a different value in the same style."""
    if re.fullmatch(r"-?\d+", gold):
        return [str(int(gold) + 1), str(int(gold) - 10)]
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", gold)
    if m:
        return [f"{m.group(1)}\\frac{{{int(m.group(2)) + 1}}}{{{m.group(3)}}}"]
    return [f"{gold}+1"]


def variant_pairs(golds: list[str]) -> list[Pair]:
    pairs: list[Pair] = []
    for gold in golds:
        pairs += [(v, gold, True) for v in equivalent_variants(gold)]
        pairs += [(v, gold, False) for v in wrong_variants(gold)]
    return pairs


def math_verify_grader(wrap: bool) -> Callable[[str, str], bool]:
    from math_verify import parse, verify

    def grade(prediction: str, gold: str) -> bool:
        if wrap:
            prediction, gold = f"${prediction}$", f"${gold}$"
        try:
            return bool(verify(parse(gold), parse(prediction)))
        except Exception:  # a crash is a wrong verdict for a grader, never the end of the benchmark
            return False

    return grade


def run(grade: Callable[[str, str], bool], pairs: list[Pair]) -> dict[str, float]:
    slowest, correct = 0.0, 0
    start = time.perf_counter()
    for prediction, gold, expected in pairs:
        t = time.perf_counter()
        verdict = grade(prediction, gold)
        slowest = max(slowest, time.perf_counter() - t)
        correct += verdict == expected
    elapsed = time.perf_counter() - start
    return {"calls_per_s": len(pairs) / elapsed, "max_call_s": slowest, "accuracy": correct / len(pairs),
            "wrong": len(pairs) - correct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--math500", default=str(ROOT.parent / "shared" / "data" / "math" / "math500_test.jsonl"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--labelled-only", action="store_true", help="only the labelled whole-response part")
    args = parser.parse_args()
    from bench.math_grading_labelled import main as labelled_main

    labelled_main([] if args.limit is None else ["--limit", str(args.limit)])
    if args.labelled_only:
        return
    golds = [gold_answer(p, "math") for p in load_problems(args.math500, "math")][: args.limit]
    pairs = variant_pairs(golds)
    table = [(p, g, e) for p, g, e, _ in CASES]
    forms = {(p, g): form for p, g, _, form in CASES}
    graders = {"ours": is_equiv, "math-verify (raw)": math_verify_grader(False),
               "math-verify ($-wrapped)": math_verify_grader(True)}
    is_equiv("x^2-1", "(x-1)(x+1)")  # start our sympy worker (Math-Verify imports sympy at import time)
    SYMPY_CACHE.clear()  # no verdict is reused from the warm-up or between runs
    report: dict[str, Any] = {"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
              "n_variant_pairs": len(pairs), "n_table_pairs": len(table)}
    for name, grade in graders.items():
        report[name] = {"variants": run(grade, pairs), "table": run(grade, table)}
        if name == "ours":
            SYMPY_CACHE.clear()
    best_mv = max((report[n] for n in graders if n != "ours"), key=lambda r: r["table"]["accuracy"])
    ours = report["ours"]
    report["speed_ratio_vs_math_verify"] = ours["variants"]["calls_per_s"] / best_mv["variants"]["calls_per_s"]
    report["table_accuracy_ours_minus_math_verify"] = ours["table"]["accuracy"] - best_mv["table"]["accuracy"]
    print(json.dumps(report, indent=2))
    for name in graders:
        r = report[name]
        print(f"{name:26s} variants: {r['variants']['calls_per_s']:8.1f} calls/s  max {r['variants']['max_call_s']:.2f}s"
              f"  acc {r['variants']['accuracy']:.4f} | table: acc {r['table']['accuracy']:.4f}"
              f" ({r['table']['wrong']} wrong)  max {r['table']['max_call_s']:.2f}s")
    for name, grade in graders.items():
        misses = [forms[(p, g)] for p, g, e in table if grade(p, g) != e]
        print(f"{name} misses on the table ({len(misses)}): {'; '.join(misses) or '-'}")
    print(f"speed ratio ours / math-verify (best-accuracy config): {report['speed_ratio_vs_math_verify']:.2f}x")


if __name__ == "__main__":
    main()
