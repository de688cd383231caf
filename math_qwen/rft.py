"""`just math-rft [config.yaml] [key=value ...]`: rejection-sampling fine-tuning rounds (RFT, Yuan et al. 2023).

Round r: the current model samples k solutions per training problem (math_qwen.rft_sampling, resumable),
correct ones with valid calculator annotations are kept and deduplicated by equation list and text
(math_qwen.rft_filter), written with provenance to round-<r>/augmented.jsonl, and the masked math SFT
(math_qwen.sft) trains on the original data plus every round's augmented file so far, from the base model
(rft.train_from=base, as in RFT) or from the sampling model (current). Each round appends a line to
runs/math-rft/<run>/rounds.jsonl; the newest round's export is published as runs/math-rft/<run>/export/ and
its held-out summary as eval/summary.json. The first sampler is rft.sampler, or else the math-sft run of the
same name and settings (trained first when it is not there yet); with rft.samplers (RFT-U) round 1 pools the
samples of several models before deduplication (math_qwen.rft_data). Each round's line carries the held-out
accuracies with their Wilson intervals and the paired before/after difference with its 95% interval. Re-running resumes: finished rounds are
skipped, sampling continues where it stopped, the SFT resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.generate import Engine, open_engine, vllm_available
from math_qwen import sft
from math_qwen.data import PreparedData, prepare_data
from math_qwen.heldout_eval import evaluate_heldout, paired_comparison, read_summary, write_run_summary
from math_qwen.rft_data import augmented_conversations, pool, round_stats, write_augmented
from math_qwen.rft_problems import read_problems
from math_qwen.rft_sampling import SamplingConfig, sample_problems
from shared.config import ConfigError, parse_cli
from shared.distributed import init_distributed, is_main, main_then_broadcast
from shared.modeling import load_tokenizer

log = logging.getLogger("math_qwen.rft")
RECIPE = "math-rft"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "rft" / "tiny.yaml"


@dataclass
class RFTConfig:
    rounds: int = 1
    # HF folder of the round-1 sampler (an SFT export). Empty: the math-sft run with this run's name and settings.
    sampler: str = ""
    # RFT-U (Yuan et al. 2023): round 1 pools the samples of several models before deduplication. Each entry is
    # an SFT export folder, or "seed=<n>": the math-sft run <run_name>-seed<n> of these settings with
    # train.seed=<n> (trained first when absent; n = train.seed is the run's own SFT). Empty: rft.sampler alone.
    samplers: list[str] = field(default_factory=list)
    # Steps of each round's SFT; None: train.max_steps. RFT trains for the same epochs on the larger set.
    max_steps: int | None = None
    # base: each round's SFT starts from the base model (RFT); current: from the model that sampled.
    train_from: str = "base"
    # Peak learning rate of each round's SFT; None: train.optimizer.lr (a round continuing from the sampler
    # usually wants less than a from-scratch SFT). The rest of train: (schedule, batch, seed) is the SFT's.
    lr: float | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def validate(self) -> None:
        if self.rounds < 1:
            raise ConfigError("rft.rounds must be >= 1")
        if self.train_from not in ("base", "current"):
            raise ConfigError("rft.train_from must be base or current")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError("rft.lr must be > 0 (or null: train.optimizer.lr)")
        if self.sampling.k < 1 or self.sampling.temperature <= 0:
            raise ConfigError("rft.sampling.k must be >= 1 and rft.sampling.temperature > 0 (sampling, not greedy)")


@dataclass
class Config(sft.Config):
    rft: RFTConfig = field(default_factory=RFTConfig)


def as_sft_config(cfg: Config, **changes: Any) -> sft.Config:
    """The SFT part of an RFT config (what math_qwen.sft would be run with)."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(sft.Config)}
    return dataclasses.replace(sft.Config(**fields), **changes)


def round_sft_config(cfg: Config, run_name: str, sampler: Path) -> sft.Config:
    """The SFT of a round that sampled with `sampler`: from the base or the sampler (rft.train_from), for
    rft.max_steps at rft.lr, no untrained evaluation. Also what bench/rft_scaling.py trains its rows with."""
    init = cfg.init_from if cfg.rft.train_from == "base" else str(sampler)
    optimizer = dataclasses.replace(cfg.train.optimizer, lr=cfg.rft.lr or cfg.train.optimizer.lr)
    train = dataclasses.replace(cfg.train, max_steps=cfg.rft.max_steps or cfg.train.max_steps, optimizer=optimizer)
    return as_sft_config(cfg, run_name=run_name, init_from=init, train=train,
                         eval=dataclasses.replace(cfg.eval, baseline=False))  # fmt: skip


def first_sampler(cfg: Config) -> Path:
    if cfg.rft.sampler:
        return Path(cfg.rft.sampler)
    log.info("round-1 sampler: the math-sft run %s (trained now unless it is finished)", cfg.run_name)
    return Path(sft.run(as_sft_config(cfg))["export_dir"])


def first_samplers(cfg: Config) -> list[Path]:
    """Round 1's sampling models: rft.samplers (RFT-U) or the single first_sampler."""
    if not cfg.rft.samplers:
        return [first_sampler(cfg)]
    paths = []
    for spec in cfg.rft.samplers:
        if not spec.startswith("seed="):
            paths.append(Path(spec))
            continue
        seed = int(spec.removeprefix("seed="))
        if seed == cfg.train.seed:  # this run's own SFT: the one a plain math-rft samples from
            paths.append(first_sampler(dataclasses.replace(cfg, rft=dataclasses.replace(cfg.rft, sampler=""))))
            continue
        train = dataclasses.replace(cfg.train, seed=seed)
        log.info("RFT-U sampler %s: the math-sft run %s-seed%d", spec, cfg.run_name, seed)
        paths.append(Path(sft.run(as_sft_config(cfg, run_name=f"{cfg.run_name}-seed{seed}", train=train))["export_dir"]))
    return paths


def sampler_accuracy(cfg: Config, sampler: Path, tokenizer, heldout: Path, out_dir: Path) -> tuple[dict[str, Any], Path]:
    """Held-out summary of the sampling model and its folder: its own run's when made on the same problems."""
    own = read_summary(sampler.parent / "eval")
    if own and Path(own.get("problems_file", "")).is_file() and Path(own["problems_file"]).read_bytes() == heldout.read_bytes():
        return own, sampler.parent / "eval" / "heldout" / f"step-{own['step']}"
    return evaluate_heldout(sft.exported_model(sampler, cfg, tokenizer), tokenizer, heldout, out_dir, cfg.eval,
                            cfg.data.heldout_benchmark), out_dir  # fmt: skip


def sampling_engine(cfg: Config, sampler: Path, tokenizer) -> Engine:
    """The round's one engine, reused for every chunk: vLLM (a child process) when installed with a GPU and
    rft.sampling.backend allows it, else the HF model of the sampler export."""
    s = cfg.rft.sampling
    if s.backend == "vllm" or (s.backend == "auto" and vllm_available()):
        return open_engine(str(sampler), tokenizer, backend="vllm", tensor_parallel_size=s.tensor_parallel_size)
    return open_engine(sft.exported_model(sampler, cfg, tokenizer), tokenizer, backend="hf")


def read_rounds(path: Path) -> dict[int, dict[str, Any]]:
    if not path.exists():
        return {}
    return {r["round"]: r for r in (json.loads(line) for line in path.read_text().splitlines() if line.strip())}


def publish(run_dir: Path, export: Path) -> None:
    """The newest round's model as <run>/export (what `just math-eval` picks up), replaced atomically."""
    tmp = run_dir / ".export.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(export, tmp)
    shutil.rmtree(run_dir / "export", ignore_errors=True)
    tmp.rename(run_dir / "export")


def samples_path(round_dir: Path, s: int) -> Path:
    """Sampler s's samples: round-<r>/samples.jsonl for the first (or only) one, samples-<s>.jsonl after it."""
    return round_dir / ("samples.jsonl" if s == 0 else f"samples-{s}.jsonl")


def run_round(cfg: Config, r: int, samplers: list[Path], prepared: PreparedData, augmented: list[Path]) -> dict[str, Any]:
    """Sample (with each sampler), pool, filter, write the augmented file, train; the round's rounds.jsonl line."""
    start = time.monotonic()
    run_dir = Path(cfg.runs_dir) / RECIPE / cfg.run_name
    round_dir = run_dir / f"round-{r}"
    tokenizer = load_tokenizer(cfg.model)
    problem_set = read_problems(prepared.train_files, cfg.rft.sampling.max_problems)
    problems = problem_set.problems
    sampler = samplers[0]  # the model the round is compared with (RFT-U: the first of the pooled ones)
    before, before_dir = None, None
    if prepared.heldout_file is not None and cfg.eval.enabled:
        before, before_dir = sampler_accuracy(cfg, sampler, tokenizer, prepared.heldout_file, round_dir / "eval-sampler")
    records = []
    for s, path in enumerate(samplers):
        # RFT-U: sampler s > 0 draws from its own random stream (per-sample seeds are (seed, task_id, index))
        sampling = dataclasses.replace(cfg.rft.sampling, seed=cfg.rft.sampling.seed + 1_000_003 * s)
        engine = sampling_engine(cfg, path, tokenizer)
        try:  # every rank samples its share; rank 0 judges and writes
            records.append(sample_problems(engine, tokenizer, problems, samples_path(round_dir, s), sampling,
                                           round_=r, model_name=str(path)))  # fmt: skip
        finally:
            engine.close()  # before the next engine and before training: vLLM's child exits, the HF copy is dropped
    pooled = pool(problems, records) if is_main() else []  # the records are rank 0's
    augmented.append(main_then_broadcast(lambda: write_augmented(round_dir / "augmented.jsonl",
                                                                 augmented_conversations(pooled))))
    round_cfg = round_sft_config(cfg, f"{cfg.run_name}/round-{r}", sampler)
    result = sft.run(round_cfg, RECIPE, PreparedData([*prepared.train_files, *augmented], prepared.heldout_file, None))
    after = result.get("eval_after")
    if not is_main():
        return {}  # the statistics need the judged records, which rank 0 holds
    paired = None
    if before_dir is not None and after is not None:
        paired = paired_comparison(before_dir, Path(result["run_dir"]) / "eval" / "heldout" / f"step-{result['step']}")
    return {"round": r, **round_stats(pooled, [str(p) for p in samplers]), "skipped_problems": dict(problem_set.skipped),
            "skipped_where": problem_set.skipped_where[:20],
            "accuracy_before": before["accuracy"] if before else None,
            "accuracy_before_ci95": before.get("ci95") if before else None,
            "accuracy_after": after["accuracy"] if after else None,
            "accuracy_after_ci95": after.get("ci95") if after else None, "paired_difference": paired,
            "n_heldout": after["n_problems"] if after else None, "sampler": str(sampler),
            "trained_from": round_cfg.init_from or cfg.model.name_or_path, "export": result["export_dir"], "steps": result["step"],
            "train_files": [str(p) for p in [*prepared.train_files, *augmented]],
            "seconds": round(time.monotonic() - start, 1)}  # fmt: skip


def finish_round(cfg: Config, run_dir: Path, r: int, line: dict[str, Any]) -> dict[str, Any]:
    """Rank 0: the round's rounds.jsonl line, the published export and the run summary."""
    with open(run_dir / "rounds.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    export = Path(line["export"])
    publish(run_dir, export)
    after = read_summary(export.parent / "eval")
    if after is not None:
        write_run_summary(run_dir, after, None, line["steps"],
                          {"recipe": RECIPE, "run": cfg.run_name, "round": r,
                           "accuracy_before": line["accuracy_before"], "accuracy_before_ci95": line["accuracy_before_ci95"],
                           "paired_difference": line["paired_difference"], "before_is": "the round's sampling model"})  # fmt: skip
    return line


def run(cfg: Config) -> list[dict[str, Any]]:
    """One RFT job over every rank of the launcher: sampling sharded, SFT on all ranks, every write by rank 0."""
    init_distributed()
    run_dir = Path(cfg.runs_dir) / RECIPE / cfg.run_name
    prepared = main_then_broadcast(prepare_data, cfg.data, run_dir)
    rounds_path = run_dir / "rounds.jsonl"
    done = main_then_broadcast(read_rounds, rounds_path)
    samplers = first_samplers(cfg)
    augmented: list[Path] = []
    lines = []
    for r in range(1, cfg.rft.rounds + 1):
        if r in done:
            augmented.append(run_dir / f"round-{r}" / "augmented.jsonl")
            samplers = [Path(done[r]["export"])]
            lines.append(done[r])
            continue
        line = main_then_broadcast(finish_round, cfg, run_dir, r, run_round(cfg, r, samplers, prepared, augmented))
        samplers = [Path(line["export"])]
        lines.append(line)
        log.info("round %d: %s", r, {k: line[k] for k in ("coverage", "distinct_paths_kept", "accuracy_before", "accuracy_after")})
    return lines


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = parse_cli(Config, argv, DEFAULT_CONFIG)
    lines = run(cfg)
    if not is_main():
        return 0
    for line in lines:
        keys = ("round", "problems", "samples_drawn", "coverage", "distinct_paths_kept", "accuracy_before", "accuracy_after")
        print(json.dumps({k: line[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
