"""Code-Qwen-Chat: multi-stage supervised fine-tuning (Qwen technical report, section 4.2).

    python -m code_qwen.sft [config.yaml] [key=value ...]             # just code-sft
    python -m code_qwen.sft code_qwen/configs/sft/7b.yaml stages.stage2.epochs=1

`stages` is an ordered mapping name -> {train_files (the stage's chat JSONL mixture), max_steps or epochs, lr}.
Stage 1 starts from `init_from` (the continued-pretraining export), every later stage from the previous stage's
export. The loss is masked on system and user turns (shared/chat.py). `train.max_steps` caps every stage, so
`train.max_steps=5` is a quick pass through all of them.

Run folders: each stage is a complete run of its own (DESIGN.md: config.yaml, metrics.jsonl, checkpoints/,
export/, eval/), `runs/code-sft/<run_name>-<stage>/`, so the results layer and `just watch` see every stage.
`runs/code-sft/<run_name>/` holds the whole config, `stages.json` (each stage's folder, init and steps),
`export` (a link to the last stage's export) and `chat_sample.json` (the final export answering a prompt
rendered with its chat template). Re-running resumes: finished stages are skipped, an interrupted one resumes.

Tiny default: two stages on instruction data built from the stdlib's documented functions (data_recipes), each
with its own mixture, steps and lr. Stage 1 starts from the tiny pretraining export runs/code-pretrain/tiny/export
when it exists; otherwise (missing_init: random) from the tiny random init, with a warning saying so.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from code_qwen.cpu_threads import limit_cpu_threads
from code_qwen.in_training_eval import (
    InTrainingEvalConfig,
    check_schedule,
    make_eval_hook,
    problem_entry_points,
    resolve_problems,
)
from code_qwen.problem_data import ProblemDataConfig, ensure_problem_data
from shared.config import ChatDataConfig, ConfigError, RunConfig, parse_cli, save_config

RECIPE = "code-sft"
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "sft" / "tiny.yaml"

log = logging.getLogger("code_qwen.sft")
HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")  # org/name: not a local folder


@dataclass
class StageConfig:
    train_files: list[str] = field(default_factory=list)  # this stage's mixture: chat JSONL files
    max_steps: int = 0  # 0: derived from epochs
    epochs: float = 0.0
    lr: float | None = None  # None: train.optimizer.lr

    def validate(self) -> None:
        if not self.train_files:
            raise ConfigError("every stage needs train_files")
        if (self.max_steps > 0) == (self.epochs > 0):
            raise ConfigError("a stage sets exactly one of max_steps or epochs")


@dataclass
class StdlibDataConfig:
    """The tiny default's data: data_recipes.sft_data.build_code_sft_tiny writes stage1/stage2.jsonl here."""

    out_dir: str = ""  # empty: off (real runs bring their own files)
    max_examples: int = 3000


@dataclass
class InstructionDataConfig:
    """Stage-1 instruction data from hub sets or JSONL (data_recipes.sft_data `code` records), decontaminated."""

    sources: list[str] = field(default_factory=list)  # hub dataset names or local JSONL files
    split: str = "train"
    out_file: str = ""  # built when missing; empty: off


@dataclass
class FeedbackRoundConfig:
    """An execution-feedback round (code_qwen/feedback.py) between stages, from the previous stage's export."""

    before: str = ""  # the stage whose data the round writes (empty: no round); runs when its files are missing
    config: str = ""  # the code-feedback YAML
    overrides: list[str] = field(default_factory=list)  # key=value for it (model= is set here)


@dataclass
class Config(RunConfig):
    # HF folder stage 1 starts from (the code-pretrain export); empty: model.name_or_path itself.
    init_from: str = ""
    # init_from missing: error, or random (tiny only: start from model.name_or_path with a warning).
    missing_init: str = "error"
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    stages: dict[str, StageConfig] = field(default_factory=dict)
    stdlib_data: StdlibDataConfig = field(default_factory=StdlibDataConfig)
    problem_data: ProblemDataConfig = field(default_factory=ProblemDataConfig)  # tiny: the generator's data
    instruction_data: InstructionDataConfig = field(default_factory=InstructionDataConfig)  # real runs
    feedback: FeedbackRoundConfig = field(default_factory=FeedbackRoundConfig)
    eval: InTrainingEvalConfig = field(default_factory=InTrainingEvalConfig)
    chat_sample_prompt: str = "Write a Python function `add(a, b)` that returns the sum of a and b."
    cpu_threads: int = 0  # CPU only: torch threads (0 = torch's default); see code_qwen/cpu_threads.py

    def validate(self) -> None:
        if not self.stages:
            raise ConfigError("stages: at least one stage")
        if self.missing_init not in {"error", "random"}:
            raise ConfigError("missing_init must be error or random")
        if self.feedback.before and (self.feedback.before not in self.stages
                                     or list(self.stages).index(self.feedback.before) == 0):
            raise ConfigError("feedback.before must name a stage after the first (the round samples from the "
                              "previous stage's export)")


@dataclass
class StageRunConfig(RunConfig):
    """What one stage's run folder records as its config.yaml: a plain SFT run."""

    stage: str = ""
    init_from: str = ""
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    eval: InTrainingEvalConfig = field(default_factory=InTrainingEvalConfig)


def stage_run_name(cfg: Config, stage: str) -> str:
    return f"{cfg.run_name}-{stage}"


def stage_dir(cfg: Config, stage: str) -> Path:
    return Path(cfg.runs_dir) / RECIPE / stage_run_name(cfg, stage)


def top_dir(cfg: Config) -> Path:
    return Path(cfg.runs_dir) / RECIPE / cfg.run_name


def stage_steps(stage: StageConfig, n_rows: int, cfg: Config) -> int:
    """The stage's optimizer steps: its own, or epochs over its packed rows; capped by train.max_steps."""
    t = cfg.train
    global_batch = t.micro_batch_size * t.grad_accum * int(os.environ.get("WORLD_SIZE", "1"))
    steps = stage.max_steps or math.ceil(stage.epochs * n_rows / global_batch)
    return max(1, min(steps, t.max_steps))


def stage_init(cfg: Config, previous: Path | None) -> str:
    """Where the stage starts: the previous stage's export, else init_from (or the random init, if allowed)."""
    if previous is not None:
        return str(previous)
    if not cfg.init_from:
        return ""
    if Path(cfg.init_from).is_dir() or HUB_NAME.match(cfg.init_from):
        return cfg.init_from
    if cfg.missing_init == "random":
        log.warning("init_from %s does not exist: stage 1 starts from %s (random init for `tiny`). Run "
                    "`just code-pretrain` first to start from the tiny pretraining export.",
                    cfg.init_from, cfg.model.name_or_path)
        return ""
    raise SystemExit(f"init_from {cfg.init_from} does not exist: run the pretraining first or fix init_from")


def stage_config(cfg: Config, name: str, stage: StageConfig, steps: int, init: str) -> StageRunConfig:
    t = cfg.train
    train = replace(t, max_steps=steps, optimizer=replace(t.optimizer, lr=stage.lr or t.optimizer.lr))
    # The tokenizer of the checkpoint we start from, unless the config names one.
    model = replace(cfg.model, tokenizer=cfg.model.tokenizer or init or None)
    return StageRunConfig(run_name=stage_run_name(cfg, name), runs_dir=cfg.runs_dir, model=model, train=train,
                          stage=name, init_from=init, data=replace(cfg.data, train_files=stage.train_files),
                          eval=cfg.eval)


def build_stage_trainer(cfg: Config, name: str, init: str):
    """The Trainer of one stage (its data loaded, its eval hook attached), ready for .train()."""
    from shared.data import sft_dataset
    from shared.modeling import load_tokenizer
    from shared.trainer import Trainer

    stage = cfg.stages[name]
    tokenizer = load_tokenizer(replace(cfg.model, tokenizer=cfg.model.tokenizer or init or None))
    dataset = sft_dataset(stage.train_files, tokenizer, replace(cfg.data, train_files=stage.train_files),
                          cfg.train.seq_len)
    scfg = stage_config(cfg, name, stage, stage_steps(stage, len(dataset), cfg), init)
    trainer = Trainer(scfg, recipe=RECIPE, dataset=dataset, tokenizer=tokenizer, init_from=init or None)
    hook = make_eval_hook(cfg.eval, trainer, chat=True, zero_stage=cfg.train.zero_stage)
    if hook is not None:
        trainer.on_checkpoint.append(hook)
    return trainer


def release(trainer) -> None:
    """Free a finished stage's engine before the next stage builds its own (GPU memory)."""
    import gc

    import torch

    if trainer.engine is not None and hasattr(trainer.engine, "destroy"):
        trainer.engine.destroy()
    trainer.engine = trainer.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def stage_finished(folder: Path, steps: int) -> bool:
    from shared.checkpoint import complete_checkpoints

    done = complete_checkpoints(folder / "checkpoints")
    return (folder / "export" / "config.json").exists() and bool(done) and done[0][0] >= steps


def ensure_stdlib_data(cfg: Config) -> None:
    """Build the tiny default's stage files when they are missing (kept clear of the eval problems' names)."""
    if not cfg.stdlib_data.out_dir:
        return
    ours = Path(cfg.stdlib_data.out_dir)
    missing = [f for s in cfg.stages.values() for f in s.train_files if Path(f).parent == ours and not Path(f).exists()]
    if not missing:
        return
    from data_recipes.config import DecontaminationConfig
    from data_recipes.decontaminate import build_index
    from data_recipes.sft_data import build_code_sft_tiny

    log.info("building the stdlib instruction data in %s (missing: %s)", cfg.stdlib_data.out_dir, missing)
    index = build_index(DecontaminationConfig(allow_hub=False))
    exclude = problem_entry_points(resolve_problems(cfg.eval))
    build_code_sft_tiny(cfg.stdlib_data.out_dir, cfg.stdlib_data.max_examples, index, exclude)


def ensure_instruction_data(cfg: Config) -> None:
    """Convert the configured instruction sets into stage-1 chat JSONL when it is missing (decontaminated)."""
    data = cfg.instruction_data
    if not data.out_file or Path(data.out_file).exists():
        return
    from data_recipes.config import DecontaminationConfig
    from data_recipes.decontaminate import build_index
    from data_recipes.sft_data import convert

    stats = convert("code", data.sources, data.out_file, build_index(DecontaminationConfig(require_all=True)),
                    split=data.split)
    log.info("instruction data %s: %d conversations, skipped %s, %d decontaminated", data.out_file, stats.written,
             stats.skipped, len(stats.decontaminated))


def feedback_round(cfg: Config, name: str, previous: Path | None) -> None:
    """Before stage `name`: the execution-feedback round writing its data, from the previous stage's export."""
    if name != cfg.feedback.before or previous is None:
        return
    if all(Path(f).exists() for f in cfg.stages[name].train_files):
        log.info("stage %s: its feedback data exists (%s): round skipped", name, cfg.stages[name].train_files)
        return
    from code_qwen.feedback import main as feedback_main

    log.info("execution-feedback round from %s for stage %s", previous, name)
    # The problem files are this recipe's (problem_data above, its data seed): the round must not rewrite them.
    config = Path(cfg.feedback.config)
    if not config.exists() and (Path(__file__).parents[1] / config).exists():
        config = Path(__file__).parents[1] / config  # the shipped configs, named relative to the repository
    report = feedback_main([str(config), *cfg.feedback.overrides, f"model={previous}", "problem_data.out_dir="])
    if not report["total"]["kept"]:
        raise SystemExit(f"the execution-feedback round kept no verified solution for stage {name} (its report: "
                         f"{report['languages']}): train stage 1 longer or sample more (sampling.k)")


def last_eval_verdicts(run_dir: Path, name: str) -> dict[str, bool]:
    """task_id -> passed (all samples) at the run's last evaluated step; empty when none."""
    steps = sorted((int(p.name.split("-")[1]), p) for p in (run_dir / "eval" / name).glob("step-*")
                   if (p / "summary.json").exists())
    if not steps:
        return {}
    verdicts: dict[str, bool] = {}
    for line in (steps[-1][1] / "results.jsonl").open():
        r = json.loads(line)
        verdicts[r["task_id"]] = verdicts.get(r["task_id"], True) and bool(r["passed"])
    return verdicts


def feedback_gain(cfg: Config, record: dict[str, dict]) -> dict | None:
    """Held-out pass@1 of the stage trained on feedback data minus that of the stage before it (its sampler), on
    the same problems, with the paired 95% interval (eval/stats.py); None without a round or evaluations."""
    if not cfg.feedback.before or not cfg.eval.problems:
        return None
    from eval.stats import accuracy_with_interval, paired_difference

    names = list(cfg.stages)
    after_name = cfg.feedback.before
    before_name = names[names.index(after_name) - 1]
    before = last_eval_verdicts(Path(record[before_name]["run_dir"]), cfg.eval.folder_name())
    after = last_eval_verdicts(Path(record[after_name]["run_dir"]), cfg.eval.folder_name())
    tasks = sorted(before.keys() & after.keys())
    if not tasks:
        return None
    b, a = [before[t] for t in tasks], [after[t] for t in tasks]
    return {"before": {"stage": before_name, **accuracy_with_interval(b)},
            "after": {"stage": after_name, **accuracy_with_interval(a)},
            "gain": paired_difference(b, a)}


def chat_sample(export: Path, prompt: str, trust_remote_code: bool = False) -> dict:
    """The final export answering `prompt` rendered with its own chat template (greedy, a few tokens)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(export, trust_remote_code=trust_remote_code).eval()
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    ids = tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=48, do_sample=False,
                             eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    new = out[0, ids["input_ids"].shape[1]:]
    return {"export": str(export), "prompt": prompt, "rendered_prompt": rendered, "new_tokens": int(new.numel()),
            "completion": tokenizer.decode(new, skip_special_tokens=True)}


def write_pointers(cfg: Config, stages: dict[str, dict]) -> Path:
    top = top_dir(cfg)
    final = stage_dir(cfg, list(cfg.stages)[-1]) / "export"
    (top / "stages.json").write_text(json.dumps({"stages": stages, "final_export": str(final)}, indent=2) + "\n")
    link = top / "export"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(final.resolve(), top.resolve()), target_is_directory=True)
    return final


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_cli(Config, argv, DEFAULT_CONFIG)
    check_schedule(cfg.eval, cfg.train.save_every)
    limit_cpu_threads(cfg.cpu_threads)
    from shared.distributed import barrier, init_distributed

    is_main = init_distributed().is_main
    if is_main:  # one rank writes the top folder and builds missing tiny data; the others wait for it
        save_config(cfg, top_dir(cfg) / "config.yaml")
        if cfg.problem_data.out_dir:
            ensure_problem_data(cfg.problem_data)
        ensure_stdlib_data(cfg)
        ensure_instruction_data(cfg)
    barrier()
    previous, record = None, {}
    for name in cfg.stages:
        if is_main:
            feedback_round(cfg, name, previous)
        barrier()
        init = stage_init(cfg, previous)
        trainer = build_stage_trainer(cfg, name, init)
        steps = trainer.cfg.train.max_steps
        if stage_finished(trainer.run_dir, steps):
            log.info("stage %s already finished (%s): skipped", name, trainer.run_dir)
        else:
            result = trainer.train()
            log.info("stage %s done: step %d, loss %.4f", name, result["step"], result.get("loss", float("nan")))
        record[name] = {"run_dir": str(trainer.run_dir), "init_from": init or cfg.model.name_or_path,
                        "steps": steps, "lr": trainer.cfg.train.optimizer.lr}
        previous = trainer.export_dir
        release(trainer)
    if not is_main:
        return record
    final = write_pointers(cfg, record)
    gain = feedback_gain(cfg, record)
    if gain is not None:
        (top_dir(cfg) / "feedback_gain.json").write_text(json.dumps(gain, indent=2) + "\n")
        log.info("execution feedback: held-out pass@1 %.3f -> %.3f, gain %+.3f (95%% CI %s)",
                 gain["before"]["accuracy"], gain["after"]["accuracy"], gain["gain"]["difference"],
                 gain["gain"]["ci95"])
    sample = chat_sample(final, cfg.chat_sample_prompt, cfg.model.trust_remote_code)
    (top_dir(cfg) / "chat_sample.json").write_text(json.dumps(sample, indent=2) + "\n")
    print(json.dumps({"final_export": str(final), "stages": record, "chat_sample": sample["completion"]}))
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
