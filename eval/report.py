"""`just report [runs_dir] [--out reports/]`: the notebook's figures as PNG files plus a Markdown table,
for people without Jupyter.

Writes <out>/curves_vs_step.png, curves_vs_tokens.png, runs_comparison.png and report.md (latest and best
score of every run per benchmark and language, beside the Qwen report's numbers, then the loss summary).
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import pandas as pd

from eval.plots import comparable_reference, latest_scores, load_reference, write_figures
from eval.results import ResultsError, load_metrics, scan_results


def fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def count(value: float) -> int | None:
    """Token counts print as whole numbers; a missing count (no metrics log) as '-'."""
    return None if value is None or math.isnan(value) else int(round(value))


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def reference_text(reference: pd.DataFrame, key: tuple[str, str, str], n_problems: object) -> str:
    sizes = set() if pd.isna(n_problems) else {int(n_problems)}  # type: ignore[call-overload]
    same, note = comparable_reference(reference, key, sizes)
    return note or ", ".join(f"{r.model} {r.value:.3f}" for r in same.itertuples(index=False)) or "-"


def scores_section(results: pd.DataFrame, reference: pd.DataFrame) -> str:
    latest = latest_scores(results)
    if latest.empty:
        return "No evaluations found yet (no `eval/<benchmark>/step-<N>/summary.json` under the runs)."
    header = ["recipe", "run", "benchmark", "language", "metric", "step", "tokens", "latest", "best", "problems",
              "Qwen report (fraction)"]
    rows = [[r.recipe, r.run, r.benchmark, r.language or "-", r.metric, int(r.step), count(r.tokens), r.value, r.best,
             None if pd.isna(r.n_problems) else int(r.n_problems),
             reference_text(reference, (r.benchmark, r.language, r.metric), r.n_problems)]
            for r in latest.itertuples()]
    return markdown_table(header, rows)


def loss_section(metrics: pd.DataFrame) -> str:
    if metrics.empty:
        return "No metrics.jsonl found."
    rows = []
    for (recipe, run), curve in metrics.sort_values("step").groupby(["recipe", "run"], sort=True):
        first, last = curve.iloc[0], curve.iloc[-1]
        rows.append([recipe, run, int(last["step"]), count(last["tokens"]), first["loss"], last["loss"],
                     float(curve["tokens_per_s"].mean())])
    return markdown_table(["recipe", "run", "last step", "tokens", "first loss", "last loss", "mean tokens/s"],
                          rows)


def write_report(runs_dir: str | Path, out_dir: str | Path) -> Path:
    scan = scan_results(runs_dir)
    results, metrics, reference = scan.frame(), load_metrics(runs_dir), load_reference()
    figures = write_figures(results, metrics, out_dir, reference)
    skipped = "".join(f"\n- skipped {n}: {reason}" for reason, n in sorted(scan.skipped.items()))
    text = "\n\n".join([
        f"# Evaluation report for `{runs_dir}`",
        "## Scores (fractions of problems solved)", scores_section(results, reference),
        "## Training", loss_section(metrics),
        "## Figures", "\n".join(f"![{p.stem}]({p.name})" for p in figures),
        "Reference numbers: Qwen Technical Report (arXiv:2309.16609), Tables 10-12; see eval/qwen_reference.yaml."
        + skipped,
    ])
    path = Path(out_dir) / "report.md"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.report", description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", nargs="?", default="runs", help="folder holding <recipe>/<run>/ (default runs)")
    parser.add_argument("--out", default="reports", help="where the PNG files and report.md go (default reports)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        path = write_report(args.runs_dir, args.out)
    except ResultsError as exc:
        raise SystemExit(f"eval.report: {exc}") from exc
    print(f"wrote {path} and its figures in {path.parent}")


if __name__ == "__main__":
    main()
