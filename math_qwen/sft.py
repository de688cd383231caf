"""`just math-sft [config.yaml] [key=value ...]`: masked math SFT in ChatML (Qwen report section 5.1).

Chat JSONL -> rows whose loss is masked on system and user turns -> shared.trainer (DeepSpeed) ->
runs/math-sft/<run>/ (config.yaml, metrics.jsonl, checkpoints/, export/), then greedy accuracy on the
held-out problems through eval/math: eval/heldout/step-0/ (the untrained model), eval/heldout/step-<N>/
(the trained one) and eval/summary.json with both accuracies. With no arguments: a tiny Qwen2-architecture
model on the synthetic arithmetic problems, on CPU, in minutes. Re-running the same command resumes the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from math_qwen.data import MathDataConfig, PreparedData, math_sft_dataset, prepare_data
from math_qwen.heldout_eval import HeldoutEvalConfig, eval_device, evaluate_heldout, write_run_summary
from shared.config import RunConfig, parse_cli
from shared.distributed import init_distributed
from shared.modeling import load_model, load_tokenizer
from shared.trainer import Trainer

log = logging.getLogger("math_qwen.sft")
RECIPE = "math-sft"
CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "sft"
DEFAULT_CONFIG = CONFIG_DIR / "tiny.yaml"


@dataclass
class Config(RunConfig):
    # A Hugging Face checkpoint folder to start from (a previous stage's export/); None: model.name_or_path.
    init_from: str | None = None
    data: MathDataConfig = field(default_factory=MathDataConfig)
    eval: HeldoutEvalConfig = field(default_factory=HeldoutEvalConfig)


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def initial_model(cfg: Config, tokenizer):
    """Exactly the weights training starts from (the trainer seeds a tiny model's init with train.seed)."""
    mcfg = cfg.model if cfg.init_from is None else dataclasses.replace(cfg.model, name_or_path=cfg.init_from)
    model = load_model(mcfg, tokenizer, cfg.train.precision, eval_device(), seed=cfg.train.seed)
    return model.to(eval_device())  # type: ignore[arg-type]  # transformers' stub of .to is narrower than torch's


def exported_model(export_dir: Path, cfg: Config, tokenizer):
    mcfg = dataclasses.replace(cfg.model, name_or_path=str(export_dir))
    model = load_model(mcfg, tokenizer, cfg.train.precision, eval_device())
    return model.to(eval_device())  # type: ignore[arg-type]


def run(cfg: Config, recipe: str = RECIPE, prepared: PreparedData | None = None) -> dict[str, Any]:
    """Train (or resume) and evaluate one math SFT run; the trainer's result plus the evaluation summaries."""
    init_distributed()  # before the baseline evaluation, which the ranks share (the trainer reuses the group)
    run_dir = Path(cfg.runs_dir) / recipe / cfg.run_name
    prepared = prepared or prepare_data(cfg.data, run_dir)
    tokenizer = load_tokenizer(cfg.model)
    dataset = math_sft_dataset(prepared.train_files, tokenizer, cfg.data, cfg.train.seq_len)
    heldout = prepared.heldout_file if cfg.eval.enabled else None
    bench = cfg.data.heldout_benchmark
    before = None
    if heldout is not None and cfg.eval.baseline:  # every rank: they share the generation
        before = evaluate_heldout(initial_model(cfg, tokenizer), tokenizer, heldout,
                                  run_dir / "eval" / "heldout" / "step-0", cfg.eval, bench)  # fmt: skip
    result = Trainer(cfg, recipe=recipe, dataset=dataset, tokenizer=tokenizer, init_from=cfg.init_from).train()
    if heldout is None:
        return result
    step = int(result["step"])
    model = exported_model(Path(result["export_dir"]), cfg, tokenizer)
    after = evaluate_heldout(model, tokenizer, heldout, run_dir / "eval" / "heldout" / f"step-{step}", cfg.eval, bench)
    if not is_main_process():
        return {**result, "eval_before": before, "eval_after": after}
    summary_path = write_run_summary(run_dir, after, before, step,
                                     {"recipe": recipe, "run": cfg.run_name, "train_files": list(map(str, prepared.train_files))})  # fmt: skip
    return {**result, "eval_before": before, "eval_after": after, "summary": str(summary_path)}


def report_line(result: dict[str, Any]) -> str:
    after, before = result.get("eval_after"), result.get("eval_before")
    fields = {"run_dir": result["run_dir"], "step": result["step"], "loss": result.get("loss")}
    if after:
        fields.update(accuracy=after["accuracy"], n_problems=after["n_problems"])
    if before:
        fields["untrained_accuracy"] = before["accuracy"]
    return json.dumps(fields)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = parse_cli(Config, argv, DEFAULT_CONFIG)
    result = run(cfg)
    if is_main_process():
        print(report_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
