"""RFT scaling at tiny scale (the shape of Yuan et al. 2023's figure): held-out accuracy of SFT, of RFT with
k = 1, 2, 4, 8 samples per training problem, and of RFT-U (the samples of SFT models of several seeds pooled
before deduplication), with the distinct reasoning paths each kept; all measured in one run on the same
held-out problems, so every RFT row carries its paired 95% interval against the SFT it sampled from.

The pieces are the recipe's own (math_qwen.sft, rft_sampling, rft_data): the first sampler draws k_max samples
per problem once and RFT at k uses the first k of each problem's samples (what a k-sample round draws when a
sample's randomness depends only on (seed, task, index)). A control row trains SFT on the gold data alone for
as many steps as the RFT rounds, so a lift that is only "more steps" shows as such.

    .venv/bin/python -m bench.rft_scaling [--ks 1,2,4,8] [--seeds 1234,1,2] [--rftu-k 4] [--out bench/out/rft_scaling]
        [key=value ...]   # math-rft config overrides, e.g. train.max_steps=200 rft.sampling.max_problems=500
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
from math_qwen.heldout_eval import paired_comparison  # noqa: E402
from math_qwen.rft_data import augmented_conversations, pool, round_stats, write_augmented  # noqa: E402
from math_qwen.rft_problems import read_problems  # noqa: E402
from math_qwen.rft_sampling import sample_problems  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.modeling import load_tokenizer  # noqa: E402

log = logging.getLogger("bench.rft_scaling")


def eval_dir(result: dict[str, Any]) -> Path:
    return Path(result["run_dir"]) / "eval" / "heldout" / f"step-{result['step']}"


def train(cfg: rft.Config, name: str, files: list[Path], prepared: PreparedData, steps: int, seed: int) -> dict:
    """One SFT run of the bench under cfg.runs_dir (resumed when it exists); its result with the held-out summary."""
    train_cfg = dataclasses.replace(cfg.train, max_steps=steps, seed=seed)
    run_cfg = rft.as_sft_config(cfg, run_name=name, train=train_cfg, eval=dataclasses.replace(cfg.eval, baseline=False))
    return sft.run(run_cfg, "bench-rft-scaling", PreparedData(files, prepared.heldout_file, None))


def row(label: str, k: int | None, paths: int | None, result: dict, sft_result: dict | None) -> dict[str, Any]:
    after = result["eval_after"]
    out = {"model": label, "k": k, "distinct_paths_kept": paths, "accuracy": after["accuracy"],
           "ci95": after["ci95"], "n_heldout": after["n_problems"], "steps": result["step"]}  # fmt: skip
    if sft_result is not None:
        out["vs_sft"] = paired_comparison(eval_dir(sft_result), eval_dir(result))
    return out


def sample_all(cfg: rft.Config, exports: list[Path], k_first: int, k_others: int, problems, out: Path) -> list[dict]:
    tokenizer = load_tokenizer(cfg.model)
    records = []
    for s, export in enumerate(exports):
        k = k_first if s == 0 else k_others
        sampling = dataclasses.replace(cfg.rft.sampling, k=k)
        model = sft.exported_model(export, cfg, tokenizer)
        records.append(sample_problems(model, tokenizer, problems, out / f"samples-{s}-k{k}.jsonl", sampling,
                                       model_name=str(export), progress=False))  # fmt: skip
    return records


def first_k(records: dict[str, dict], k: int) -> dict[str, dict]:
    return {t: {**r, "completions": r["completions"][:k]} for t, r in records.items()}


def run(cfg: rft.Config, ks: list[int], seeds: list[int], rftu_k: int, out: Path) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, runs_dir=str(out / "runs"))
    prepared = prepare_data(cfg.data, out)
    sft_steps, rft_steps = cfg.train.max_steps, cfg.rft.max_steps or cfg.train.max_steps
    sfts = [train(cfg, f"sft-seed{s}", prepared.train_files, prepared, sft_steps, s) for s in seeds]
    problems = read_problems(prepared.train_files, cfg.rft.sampling.max_problems).problems
    exports = [Path(r["export_dir"]) for r in sfts]
    records = sample_all(cfg, exports, max(ks + [rftu_k]), rftu_k, problems, out / "samples")
    seed = seeds[0]
    rows = [row(f"SFT (seed {seed})", None, 0, sfts[0], None)]
    if rft_steps != sft_steps:
        gold_only = train(cfg, f"sft-seed{seed}-{rft_steps}steps", prepared.train_files, prepared, rft_steps, seed)
        rows.append(row(f"SFT, {rft_steps} steps (control)", None, 0, gold_only, sfts[0]))
    variants = [(f"RFT k={k}", f"rft-k{k}", k, [first_k(records[0], k)]) for k in ks]
    if len(seeds) > 1:
        variants.append((f"RFT-U k={rftu_k} x {len(seeds)} models", f"rftu-k{rftu_k}", rftu_k,
                         [first_k(r, rftu_k) for r in records]))  # fmt: skip
    for label, name, k, recs in variants:
        pooled = pool(problems, recs)
        stats = round_stats(pooled, [str(e) for e in exports[: len(recs)]])
        aug = write_augmented(out / "augmented" / f"{name}.jsonl", augmented_conversations(pooled))
        result = train(cfg, name, [*prepared.train_files, aug], prepared, rft_steps, seed)
        rows.append({**row(label, k, stats["distinct_paths_kept"], result, sfts[0]),
                     "new_path_share": stats["new_path_share"], "per_sampler": stats["per_sampler"]})  # fmt: skip
        log.info("%s: %s", label, rows[-1])
    for s, r in zip(seeds[1:], sfts[1:], strict=True):
        rows.append(row(f"SFT (seed {s}, RFT-U sampler)", None, 0, r, None))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | distinct paths kept | held-out accuracy [95% CI] | vs SFT [paired 95% CI] |",
             "|---|---:|---|---|"]  # fmt: skip
    for r in rows:
        acc = f"{r['accuracy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] (n={r['n_heldout']})"
        vs = r.get("vs_sft")
        diff = f"{vs['difference']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}]" if vs else ""
        lines.append(f"| {r['model']} | {r['distinct_paths_kept']} | {acc} | {diff} |")
    return "\n".join(lines)


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    sft_row = rows[0]
    rft_rows = [r for r in rows if r["model"].startswith("RFT k=")]
    ks = [r["k"] for r in rft_rows]
    acc = [r["accuracy"] for r in rft_rows]
    err = [[a - r["ci95"][0] for a, r in zip(acc, rft_rows, strict=True)],
           [r["ci95"][1] - a for a, r in zip(acc, rft_rows, strict=True)]]
    left.errorbar(ks, acc, yerr=err, marker="o", capsize=3, label="RFT")
    left.axhline(sft_row["accuracy"], color="grey", linestyle="--", label="SFT")
    for r in rows:
        if r["model"].startswith("RFT-U"):
            left.errorbar([r["k"]], [r["accuracy"]], yerr=[[r["accuracy"] - r["ci95"][0]], [r["ci95"][1] - r["accuracy"]]],
                          marker="*", markersize=12, capsize=3, linestyle="none", label=r["model"])  # fmt: skip
    left.set_xscale("log", base=2)
    left.set(xlabel="k (samples per problem)", ylabel="held-out accuracy", title="accuracy vs k")
    left.legend()
    right.plot(ks, [r["distinct_paths_kept"] for r in rft_rows], marker="o", label="RFT")
    for r in rows:
        if r["model"].startswith("RFT-U"):
            right.plot([r["k"]], [r["distinct_paths_kept"]], marker="*", markersize=12, linestyle="none", label=r["model"])
    right.set_xscale("log", base=2)
    right.set(xlabel="k (samples per problem)", ylabel="distinct paths kept", title="new reasoning paths")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--seeds", default="1234,1,2", help="train.seed of the SFT models (the first, the default's, samples for RFT)")
    parser.add_argument("--rftu-k", type=int, default=4)
    parser.add_argument("--out", default="bench/out/rft_scaling")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(rft.Config, rft.DEFAULT_CONFIG, overrides)
    start = time.monotonic()
    rows = run(cfg, [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")], args.rftu_k,
               Path(args.out))  # fmt: skip
    out = Path(args.out)
    (out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    figure(rows, out / "rft_scaling.png")
    print(table(rows))
    print(f"\n{time.monotonic() - start:.0f}s wall; figure {out / 'rft_scaling.png'}; overrides: {' '.join(overrides) or 'none'}")


if __name__ == "__main__":
    main()
