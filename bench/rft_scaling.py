"""RFT scaling at tiny scale (the shape of Yuan et al. 2023's figure): held-out accuracy of SFT, of RFT with
k = 1, 2, 4, 8 samples per training problem and of RFT-U (the samples of SFT models of several train seeds pooled
before deduplication), with the distinct reasoning paths each kept; all in one run on the same held-out problems,
every row with its Wilson interval and paired 95% intervals against the SFT it sampled from and against a control.

The pieces are the recipe's own: the SFT models are the math-sft runs `just math-rft rft.samplers=[seed=...]`
uses (reused when they exist under runs_dir, trained when not), every row trains what a math-rft round trains
(rft.round_sft_config: from the sampler when rft.train_from=current, rft.max_steps at rft.lr), and the first
sampler draws max(k) samples per problem once: RFT at k takes the first k of each problem's samples, which is
what a k-sample round draws (a sample's randomness depends only on (seed, task, index)).

The control trains the same round on the gold data alone. With train_from=current the round adds steps to an SFT
that is still improving, so "RFT vs SFT" mixes the data with the extra steps; "vs control" is the data's own part.

    .venv/bin/python -m bench.rft_scaling [--ks 1,2,4,8] [--rftu-seeds 1234,1] [--rftu-k 4]
        [--out bench/out/rft_scaling] [key=value ...]   # math-rft config overrides (runs_dir=, rft.max_steps=, ...)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from math_qwen import rft, sft  # noqa: E402
from math_qwen.data import PreparedData, prepare_data  # noqa: E402
from math_qwen.heldout_eval import paired_comparison, read_summary  # noqa: E402
from math_qwen.rft_data import augmented_conversations, pool, round_stats, write_augmented  # noqa: E402
from math_qwen.rft_problems import read_problems  # noqa: E402
from math_qwen.rft_sampling import sample_problems  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.modeling import load_tokenizer  # noqa: E402

log = logging.getLogger("bench.rft_scaling")


def train_row(cfg: rft.Config, out: Path, name: str, sampler: Path, files: list[Path], heldout: Path) -> Path:
    """Train one row as a math-rft round from `sampler` (resumed when it exists); its held-out eval folder."""
    run_cfg = dataclasses.replace(rft.round_sft_config(cfg, name, sampler), runs_dir=str(out / "runs"))
    result = sft.run(run_cfg, "bench-rft-scaling", PreparedData(files, heldout, None))
    return Path(result["run_dir"]) / "eval" / "heldout" / f"step-{result['step']}"


def sample(cfg: rft.Config, samplers: list[Path], ks: list[int], problems, out: Path) -> list[dict]:
    """Sampler s draws ks[s] samples per problem from its own stream (as in a math-rft round), resumable."""
    tokenizer = load_tokenizer(cfg.model)
    records = []
    for s, (path, k) in enumerate(zip(samplers, ks, strict=True)):
        sampling = dataclasses.replace(cfg.rft.sampling, k=k, seed=cfg.rft.sampling.seed + 1_000_003 * s)
        engine = rft.sampling_engine(cfg, path, tokenizer)
        try:
            records.append(sample_problems(engine, tokenizer, problems, out / f"samples-{s}-k{k}.jsonl", sampling,
                                           model_name=str(path)))  # fmt: skip
        finally:
            engine.close()
    return records


def first_k(records: dict[str, dict], k: int) -> dict[str, dict]:
    return {t: {**r, "completions": r["completions"][:k]} for t, r in records.items()}


def summary_row(label: str, k: int | None, eval_dir: Path, compare: dict[str, Path]) -> dict[str, Any]:
    s = read_summary(eval_dir)
    assert s is not None, f"no held-out summary in {eval_dir}"
    return {"model": label, "k": k, "accuracy": s["accuracy"], "ci95": s["ci95"], "n_heldout": s["n_problems"],
            "eval_dir": str(eval_dir), **{f"vs_{n}": paired_comparison(d, eval_dir) for n, d in compare.items()}}  # fmt: skip


def run(cfg: rft.Config, ks: list[int], rftu_seeds: list[int], rftu_k: int, out: Path) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.monotonic()
    specs = [f"seed={s}" for s in rftu_seeds]  # the first is the sampler of the single-model rows
    samplers = rft.first_samplers(dataclasses.replace(cfg, rft=dataclasses.replace(cfg.rft, samplers=specs)))
    prepared = prepare_data(cfg.data, out)
    assert prepared.heldout_file is not None, "the bench needs a held-out set (data.synthetic)"
    tokenizer = load_tokenizer(cfg.model)
    _, sft_dir = rft.sampler_accuracy(cfg, samplers[0], tokenizer, prepared.heldout_file, out / "eval-sft")
    times["sft models (reused or trained) + data"] = time.monotonic() - t0
    problems = read_problems(prepared.train_files, cfg.rft.sampling.max_problems).problems
    t0 = time.monotonic()
    records = sample(cfg, samplers, [max(ks), *[rftu_k] * (len(samplers) - 1)], problems, out / "samples")
    times["sampling"] = time.monotonic() - t0
    t0 = time.monotonic()
    control = train_row(cfg, out, "control-gold-only", samplers[0], prepared.train_files, prepared.heldout_file)
    rows = [summary_row(f"SFT (train.seed {rftu_seeds[0]})", None, sft_dir, {}) | {"distinct_paths_kept": 0},
            summary_row("control: the round on gold only", 0, control, {"sft": sft_dir}) | {"distinct_paths_kept": 0}]
    variants = [(f"RFT k={k}", f"rft-k{k}", k, [first_k(records[0], k)]) for k in ks]
    if len(samplers) > 1:
        variants.append((f"RFT-U k={rftu_k} x {len(samplers)} models", f"rftu-k{rftu_k}", rftu_k,
                         [first_k(r, rftu_k) for r in records]))  # fmt: skip
    dirs: dict[str, Path] = {}
    for label, name, k, recs in variants:
        pooled = pool(problems, recs)
        stats = round_stats(pooled, [str(p) for p in samplers[: len(recs)]])
        aug = write_augmented(out / "augmented" / f"{name}.jsonl", augmented_conversations(pooled))
        dirs[name] = train_row(cfg, out, name, samplers[0], [*prepared.train_files, aug], prepared.heldout_file)
        compare = {"sft": sft_dir, "control": control}
        if label.startswith("RFT-U"):  # against one model at the same k per model, and at the same samples in all
            compare |= {f"rft_k{kk}": dirs[f"rft-k{kk}"] for kk in (k, k * len(recs)) if f"rft-k{kk}" in dirs}
        rows.append(summary_row(label, k, dirs[name], compare) | {
            "distinct_paths_kept": stats["distinct_paths_kept"], "new_path_share": stats["new_path_share"],
            "coverage": stats["coverage"], "per_sampler": stats["per_sampler"]})  # fmt: skip
        log.info("%s: %s", label, rows[-1])
    times["training + evaluation of every row"] = time.monotonic() - t0
    rows.append({"timings_s": {k: round(v) for k, v in times.items()}})
    return rows


def interval(d: dict | None) -> str:
    return f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else ""


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | distinct paths kept (problems with one) | held-out accuracy [Wilson 95%] | vs SFT [paired 95%] "
             "| vs control [paired 95%] |", "|---|---:|---|---|---|"]  # fmt: skip
    for r in rows:
        if "model" not in r:
            continue
        share = f" ({r['new_path_share']:.2f})" if "new_path_share" in r else ""
        acc = f"{r['accuracy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] (n={r['n_heldout']})"
        lines.append(f"| {r['model']} | {r['distinct_paths_kept']}{share} | {acc} | {interval(r.get('vs_sft'))} | "
                     f"{interval(r.get('vs_control'))} |")  # fmt: skip
    for r in rows:
        for key in [k for k in r if k.startswith("vs_rft_k")]:
            lines.append(f"\n{r['model']} vs RFT k={key.removeprefix('vs_rft_k')} (paired 95%): {interval(r[key])}")
    return "\n".join(lines)


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    rows = [r for r in rows if "model" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rft_rows = [r for r in rows if r["model"].startswith("RFT k=")]
    ks = [r["k"] for r in rft_rows]

    def bars(rs):
        return [[r["accuracy"] - r["ci95"][0] for r in rs], [r["ci95"][1] - r["accuracy"] for r in rs]]

    left.errorbar(ks, [r["accuracy"] for r in rft_rows], yerr=bars(rft_rows), marker="o", capsize=3, color="C0", label="RFT")
    for r, style in zip(rows[:2], ("--", ":"), strict=True):
        left.axhline(r["accuracy"], color="grey", linestyle=style, label=r["model"])
    for r in rows:
        if r["model"].startswith("RFT-U"):
            left.errorbar([r["k"]], [r["accuracy"]], yerr=bars([r]), marker="*", markersize=12, capsize=3,
                          linestyle="none", color="C1", label=r["model"])  # fmt: skip
            right.plot([r["k"]], [r["distinct_paths_kept"]], marker="*", markersize=12, linestyle="none", color="C1",
                       label=r["model"])  # fmt: skip
    left.set_xscale("log", base=2)
    left.set(xlabel="k (samples per problem)", ylabel="held-out accuracy", title="accuracy vs k")
    left.legend(fontsize=8)
    right.plot(ks, [r["distinct_paths_kept"] for r in rft_rows], marker="o", color="C0", label="RFT")
    right.set_xscale("log", base=2)
    right.set(xlabel="k (samples per problem)", ylabel="distinct paths kept", title="new reasoning paths")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--rftu-seeds", default="1234,1", help="train.seed of the pooled SFT models; the first "
                        "(1234: the default `just math-sft`) samples for the single-model rows")  # fmt: skip
    parser.add_argument("--rftu-k", type=int, default=4, help="samples per problem of each pooled model")
    parser.add_argument("--out", default="bench/out/rft_scaling")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(rft.Config, rft.DEFAULT_CONFIG, overrides)
    start = time.monotonic()
    out = Path(args.out)
    rows = run(cfg, [int(k) for k in args.ks.split(",")], [int(s) for s in args.rftu_seeds.split(",")], args.rftu_k, out)
    (out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    figure(rows, out / "rft_scaling.png")
    print(table(rows))
    print(f"\n{time.monotonic() - start:.0f}s wall ({rows[-1]['timings_s']}); figure {out / 'rft_scaling.png'}; "
          f"overrides: {' '.join(overrides) or 'none'}")


if __name__ == "__main__":
    main()
