"""Figures and tables over the results layer, shared by `just report` (eval/report.py) and the notebook.

Each figure function takes the tables of eval/results.py and returns a matplotlib Figure; nothing here reads
files except `load_reference` (the Qwen report's numbers) and nothing writes except `write_figures`.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

if matplotlib.get_backend().lower() not in {"module://matplotlib_inline.backend_inline", "inline"}:
    matplotlib.use("Agg")  # headless everywhere except inside Jupyter
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

REFERENCE_FILE = Path(__file__).with_name("qwen_reference.yaml")
# The headline metric of each kind of benchmark: curves are drawn for these, other pass@k stay in the table.
CURVE_METRICS = ("pass@1", "accuracy")
X_LABELS = {"step": "training step", "tokens": "trained tokens"}
Key = tuple[str, str, str]  # (benchmark, language, metric)


def load_reference(path: str | Path = REFERENCE_FILE) -> pd.DataFrame:
    """The Qwen report's scores as fractions: model, table, benchmark, language, metric, value."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    frame = pd.DataFrame(data["entries"])
    frame["language"] = frame["language"].fillna("").astype(str)
    frame["value"] = frame.pop("percent").astype(float) / 100.0
    frame["n_problems"] = frame["benchmark"].map(data.get("full_set_sizes", {})).astype("Int64")
    return frame


def curve_keys(results: pd.DataFrame) -> list[Key]:
    headline = results[results["metric"].isin(CURVE_METRICS)]
    keys = headline[["benchmark", "language", "metric"]].drop_duplicates().itertuples(index=False)
    return sorted(tuple(k) for k in keys)  # type: ignore[misc]


def key_title(key: Key) -> str:
    benchmark, language, metric = key
    return f"{benchmark} ({language}) {metric}" if language else f"{benchmark} {metric}"


def run_label(recipe: str, run: str) -> str:
    return f"{recipe}/{run}"


def grid(n_panels: int, ncols: int = 3, size: tuple[float, float] = (4.6, 3.4)) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n_panels))
    nrows = max(1, math.ceil(n_panels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def comparable_reference(reference: pd.DataFrame | None, key: Key, sizes: set[int]) -> tuple[pd.DataFrame, str]:
    """The report's rows on the same benchmark, language and metric, kept only when the runs were evaluated
    on the report's full test set (same scale); else none, and a note saying why."""
    if reference is None or reference.empty:
        return pd.DataFrame(columns=["model", "table", "value", "n_problems"]), ""
    benchmark, language, metric = key
    same = reference[(reference["benchmark"] == benchmark) & (reference["language"] == language)
                     & (reference["metric"] == metric)]
    full = same["n_problems"].dropna().unique()
    if len(same) and len(full) and sizes - {int(full[0])}:
        return same.iloc[0:0], f"n={'/'.join(map(str, sorted(sizes)))}, report n={int(full[0])}: no report lines"
    return same, ""


def draw_reference(ax, key: Key, reference: pd.DataFrame | None, sizes: set[int]) -> float:
    """Dashed lines for the report's comparable numbers; returns the highest line drawn (0 when none)."""
    same, note = comparable_reference(reference, key, sizes)
    if note:
        ax.text(0.02, 0.98, note, transform=ax.transAxes, va="top", fontsize=7, color="0.4")
    for i, ref in enumerate(same.itertuples(index=False)):
        ax.axhline(ref.value, linestyle="--", linewidth=0.9, color=f"C{(i + 5) % 10}", alpha=0.7,
                   label=f"{ref.model} (report T{ref.table})")
    return float(same["value"].max()) if not same.empty else 0.0


def draw_score_panel(ax, results: pd.DataFrame, key: Key, x: str, reference: pd.DataFrame | None) -> None:
    benchmark, language, metric = key
    rows = results[(results["benchmark"] == benchmark) & (results["language"] == language)
                   & (results["metric"] == metric)].dropna(subset=[x])
    top = 0.0
    for i, ((recipe, run), curve) in enumerate(rows.groupby(["recipe", "run"], sort=True)):
        curve = curve.sort_values(x)
        ax.plot(curve[x], curve["value"], marker="o", color=f"C{i % 10}", label=run_label(recipe, run))
        top = max(top, float(curve["value"].max()))
    if rows.empty:
        ax.text(0.5, 0.5, f"no {x} for these evaluations", ha="center", va="center", transform=ax.transAxes)
    sizes = {int(n) for n in rows["n_problems"].dropna()} if "n_problems" in rows else set()
    top = max(top, draw_reference(ax, key, reference, sizes))
    ax.set_ylim(0.0, min(1.0, max(top * 1.15, 0.05)))
    ax.set_title(key_title(key))
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def draw_loss_panel(ax, metrics: pd.DataFrame, x: str) -> None:
    rows = metrics.dropna(subset=[x, "loss"]) if not metrics.empty else metrics
    for i, ((recipe, run), curve) in enumerate(rows.groupby(["recipe", "run"], sort=True)):
        curve = curve.sort_values(x)
        ax.plot(curve[x], curve["loss"], color=f"C{i % 10}", label=run_label(recipe, run))
    if rows.empty:
        ax.text(0.5, 0.5, "no metrics.jsonl", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    ax.set_title("training loss")
    ax.set_xlabel(X_LABELS.get(x, x))
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)


def curves_figure(results: pd.DataFrame, metrics: pd.DataFrame, x: str = "step",
                  reference: pd.DataFrame | None = None) -> Figure:
    """pass@1 per language and math accuracy against `x` (step or tokens), one line per run, with the
    report's numbers as dashed lines, and the loss curves in the last panel."""
    keys = curve_keys(results)
    fig, axes = grid(len(keys) + 1)
    for ax, key in zip(axes[:-1], keys, strict=True):
        draw_score_panel(ax, results, key, x, reference)
    draw_loss_panel(axes[-1], metrics, x)
    fig.suptitle(f"evaluations and loss against {X_LABELS.get(x, x)}")
    fig.tight_layout()
    return fig


def latest_scores(results: pd.DataFrame) -> pd.DataFrame:
    """The last evaluated step of every run on every benchmark/language/metric, with the run's best."""
    if results.empty:
        return results.assign(best=pd.Series(dtype=float))
    keys = ["recipe", "run", "benchmark", "language", "metric"]
    ordered = results.sort_values("step")
    latest = ordered.groupby(keys, sort=True).tail(1).set_index(keys)
    latest["best"] = ordered.groupby(keys)["value"].max()
    return latest.reset_index().sort_values(keys, ignore_index=True)


def comparison_figure(results: pd.DataFrame, reference: pd.DataFrame | None = None) -> Figure:
    """Runs side by side: the latest headline score of each run per benchmark/language."""
    latest = latest_scores(results)
    latest = latest[latest["metric"].isin(CURVE_METRICS)]
    keys = curve_keys(latest) if not latest.empty else []
    runs = sorted({(r.recipe, r.run) for r in latest.itertuples(index=False)})
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * max(1, len(keys)) * max(1, len(runs)) ** 0.5 + 2), 3.8))
    width = 0.8 / max(1, len(runs))
    for i, (recipe, run) in enumerate(runs):
        mine = latest[(latest["recipe"] == recipe) & (latest["run"] == run)]
        values = [mine[(mine["benchmark"] == b) & (mine["language"] == lang) & (mine["metric"] == m)]["value"]
                  for b, lang, m in keys]
        heights = [float(v.iloc[0]) if len(v) else math.nan for v in values]  # no bar where not evaluated
        ax.bar([k + i * width for k in range(len(keys))], heights, width, label=run_label(recipe, run))
    if reference is not None and keys:
        for k, key in enumerate(keys):
            mine = latest[(latest["benchmark"] == key[0]) & (latest["language"] == key[1])
                          & (latest["metric"] == key[2])]
            same, _ = comparable_reference(reference, key, {int(n) for n in mine["n_problems"].dropna()})
            if not same.empty:
                ax.hlines(same["value"].max(), k - width / 2, k + 0.8 - width / 2, colors="k",
                          linestyles="--", linewidth=0.8)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(keys))], [key_title(k) for k in keys],
                  rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("latest score")
    ax.set_title("runs at their latest evaluated step (dashed: best Qwen report model)", fontsize=10)
    if not keys:
        ax.text(0.5, 0.5, "no evaluations yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_figures(results: pd.DataFrame, metrics: pd.DataFrame, out_dir: str | Path,
                  reference: pd.DataFrame | None = None) -> list[Path]:
    """The report's PNG files: curves against step, against tokens, and the run comparison."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "curves_vs_step.png": curves_figure(results, metrics, "step", reference),
        "curves_vs_tokens.png": curves_figure(results, metrics, "tokens", reference),
        "runs_comparison.png": comparison_figure(results, reference),
    }
    paths = []
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        paths.append(out / name)
    return paths
