"""In-training code evaluation: a trainer `on_checkpoint` hook that scores pass@1 on a small problem subset.

Every `every` steps (a multiple of train.save_every, since the trainer calls hooks at checkpoints) and at the
last step, the hook generates with the model of that checkpoint and runs `eval.code` on the first `limit`
problems. Results land where the results layer and `eval.watch` look for them,
`<run>/eval/<name>/step-<N>/{summary.json,results.jsonl,samples.jsonl}` (written into a scratch folder and
renamed, so a summary is never seen half-written and a watcher never re-does a finished step), and a copy of
the summary goes beside the checkpoint, `checkpoints/step-<N>/eval/<name>/summary.json`.

problems: a file, folder or hub name as `eval.code --problems` takes; `local` = the first `limit` held-out problems
of the tiny problem generator (data_recipes/code_problems.py: unseen family/constant combinations, hidden tests;
tiny runs, no evaluation data needed), written to data/code_eval_local/heldout-<limit>.jsonl; empty = evaluation
off, said once in the log. `baseline` also evaluates the starting model as step 0 (code-pretrain).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.config import ConfigError
from shared.distributed import barrier, is_main, main_then_broadcast

log = logging.getLogger(__name__)

LOCAL = "local"
LOCAL_PROBLEMS_DIR = Path("data") / "code_eval_local"


@dataclass
class InTrainingEvalConfig:
    # Steps between evaluations (a multiple of train.save_every); 0 = at every checkpoint. The last step always.
    every: int = 0
    problems: str = ""
    benchmark: str = "humaneval"  # humaneval | mbpp | humanevalpack (what eval.code scores the problems as)
    language: str | None = None  # humanevalpack only
    # Folder under eval/ (default: the benchmark, `local` for the local set, `<benchmark>-<language>`).
    name: str = ""
    limit: int = 20  # the first N problems
    n: int = 1  # samples per problem
    temperature: float = 0.0
    max_new_tokens: int = 384
    batch_size: int = 8
    workers: int | None = None
    # Also evaluate the model training starts from, as step 0 (the first point of the curve); main rank only.
    baseline: bool = False

    def validate(self) -> None:
        if self.every < 0 or self.limit < 1 or self.n < 1:
            raise ConfigError("eval.every must be >= 0, eval.limit and eval.n >= 1")
        if self.benchmark not in {"humaneval", "mbpp", "humanevalpack"}:
            raise ConfigError("eval.benchmark must be humaneval, mbpp or humanevalpack")

    def folder_name(self) -> str:
        if self.name:
            return self.name
        if self.problems == LOCAL:
            return "local"
        return f"{self.benchmark}-{self.language}" if self.language else self.benchmark


def check_schedule(cfg: InTrainingEvalConfig, save_every: int) -> None:
    if cfg.problems and cfg.every and cfg.every % save_every:
        raise ConfigError(f"eval.every={cfg.every} must be a multiple of train.save_every={save_every} "
                          "(evaluations run on checkpoints)")


def resolve_problems(cfg: InTrainingEvalConfig) -> str | None:
    """The problems source to pass to eval.code, building the local set when asked for; None = evaluation off."""
    if not cfg.problems:
        log.info("in-training evaluation off: no eval.problems configured")
        return None
    if cfg.problems == LOCAL:
        from data_recipes.code_problems import build_problems, write_jsonl_atomic

        # One file per size: runs (and tests) asking for other sizes never rewrite the file a run is reading.
        return str(write_jsonl_atomic(LOCAL_PROBLEMS_DIR / f"heldout-{cfg.limit}.jsonl",
                                      build_problems("heldout", cfg.limit)))
    return cfg.problems


def problem_entry_points(source: str | None) -> set[str]:
    """Function names of a local problems file (kept out of the SFT data); empty for hub names or folders."""
    if source is None or not Path(source).is_file():
        return set()
    from eval.code.problems import read_records

    return {str(r["entry_point"]) for r in read_records(source) if "entry_point" in r}


def make_eval_hook(cfg: InTrainingEvalConfig, trainer, *, chat: bool, zero_stage: int
                   ) -> Callable[[int, Path, Path], None] | None:
    """The on_checkpoint hook for `trainer`, or None when evaluation is off."""
    problems = resolve_problems(cfg)
    if problems is None:
        return None
    name = cfg.folder_name()
    max_steps = trainer.cfg.train.max_steps

    def hook(step: int, hf_dir: Path, ckpt_dir: Path) -> None:
        if cfg.every and step % cfg.every and step != max_steps:
            return
        out = trainer.eval_dir(name, step)
        if main_then_broadcast(lambda: (out / "summary.json").exists()):
            return  # evaluated before a resume (or by a watcher)
        # ZeRO 0-2 hold the whole model on every rank: evaluate it in place; ZeRO-3 has only shards, so reload.
        model = trainer.engine.module if zero_stage < 3 else str(hf_dir)
        summary = evaluate_into(out, step, cfg, problems, model, trainer.tokenizer, chat)
        if not is_main():
            return
        beside = ckpt_dir / "eval" / name
        beside.mkdir(parents=True, exist_ok=True)
        shutil.copy2(out / "summary.json", beside / "summary.json")
        log.info("step %d: %s pass@1 = %s on %s problems (%s)", step, name, summary.get("pass@1"),
                 summary.get("n_problems"), out)

    hook.all_ranks = True  # type: ignore[attr-defined]  # the trainer calls it on every rank: they share generation
    return hook


def evaluate_baseline(cfg: InTrainingEvalConfig, trainer, model, *, chat: bool) -> dict | None:
    """Step 0: the starting model, evaluated once (skipped when its summary exists, as after a resume)."""
    problems = resolve_problems(cfg) if cfg.baseline else None
    if problems is None:
        return None
    out = trainer.eval_dir(cfg.folder_name(), 0)
    if (out / "summary.json").exists():
        return None
    summary = evaluate_into(out, 0, cfg, problems, model, trainer.tokenizer, chat)
    log.info("step 0 (starting model): %s pass@1 = %s", cfg.folder_name(), summary.get("pass@1"))
    return summary


def evaluate_into(out: Path, step: int, cfg: InTrainingEvalConfig, problems: str, model, tokenizer,
                  chat: bool) -> dict:
    """Run eval.code into a scratch folder, record the step in its summary, then rename it to `out` (atomic).

    On every rank under a launcher: each generates its share, rank 0 executes and writes; all get the summary."""
    import torch

    from eval.code.run import evaluate_model_on_subset

    scratch = out.with_name(out.name + ".tmp-train")
    if is_main():
        shutil.rmtree(scratch, ignore_errors=True)
    barrier()  # nobody writes its share into the scratch folder before it is fresh
    # Training with gradient checkpointing turns the KV cache off; generation needs it (else O(n^2) forwards).
    config = getattr(model, "config", None)
    cache_was = getattr(config, "use_cache", None)
    if config is not None:
        config.use_cache = True
    try:
        with torch.no_grad():
            summary = evaluate_model_on_subset(
                model, None if isinstance(model, str) else tokenizer, cfg.benchmark, problems, scratch,
                language=cfg.language, limit=cfg.limit, n=cfg.n, temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, chat=chat, workers=cfg.workers)
    finally:
        if config is not None:
            config.use_cache = cache_was
    if cfg.problems == LOCAL:
        summary["dataset"] = "held-out generated functions (data_recipes/code_problems.py), not a benchmark"
    summary["step"] = step
    if is_main():
        (scratch / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        scratch.rename(out)
    return summary
