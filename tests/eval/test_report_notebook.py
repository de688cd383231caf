"""`just report` and the notebook over tiny results: both run headless and write their figures, and the
report's table says what the results layer says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from eval.plots import latest_scores
from eval.results import load_results
from tests.eval.test_results import build_runs

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ["curves_vs_step.png", "curves_vs_tokens.png", "runs_comparison.png"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_figures(folder: Path) -> None:
    for name in FIGURES:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name


def test_report_writes_figures_and_table(tmp_path, shared_data):
    shared_data("gsm8k", "test.jsonl")  # the math run is graded by eval.math on the full GSM8K test set
    runs = build_runs(tmp_path)
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "eval.report", str(runs), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_figures(out)
    report = (out / "report.md").read_text()
    table_rows = [line.split(" | ") for line in report.splitlines() if re.match(r"\| (code|math)-\w+ \| ", line)]
    latest = latest_scores(load_results(runs))
    scores = {(r[1], r[2], r[3], r[4]): (int(r[5]), r[7], r[10]) for r in table_rows if len(r) == 11}
    assert len(scores) == len(latest)
    for row in latest.itertuples():
        key = (row.run, row.benchmark, row.language or "-", row.metric)
        assert scores[key][:2] == (row.step, f"{row.value:.3f}")
    # Full GSM8K test set: the report's Table 12 numbers; 10 HumanEvalPack problems: not comparable.
    assert scores[("tiny", "gsm8k", "-", "accuracy")][2].startswith("Math-Qwen-Chat-7B 0.625, Math-Qwen-Chat-14B 0.698")
    assert scores[("tiny", "humanevalpack", "rust", "pass@1")][2].startswith("n=10, report n=164: no report lines")


def test_notebook_executes_headless_and_writes_figures(tmp_path, monkeypatch):
    runs = build_runs(tmp_path)
    figures = tmp_path / "figures"
    monkeypatch.setenv("QS_RUNS_DIR", str(runs))
    monkeypatch.setenv("QS_FIG_DIR", str(figures))
    notebook = nbformat.read(ROOT / "notebooks" / "pass_at_1_curves.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()
    assert_figures(figures)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= len(FIGURES)  # shown inline too
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"{len(load_results(runs))} scores from 3 run(s)" in text
