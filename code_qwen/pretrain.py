"""Code-Qwen continued pretraining (Qwen technical report, section 4.1).

    python -m code_qwen.pretrain [config.yaml] [key=value ...]        # just code-pretrain
    python -m code_qwen.pretrain code_qwen/configs/pretrain/7b.yaml train.max_steps=10

Continues training a base model (model.name_or_path) on code token shards (data.shard_dir, written by
data_recipes) with the trainer of shared/, evaluating pass@1 on a problem subset at checkpoints (eval.*).
With no arguments: the tiny default (configs/pretrain/tiny.yaml) on CPU: the stdlib code shards (built first
when absent), a tiny random-init Qwen2 model, a few hundred steps. The run folder is
runs/code-pretrain/<run_name>/ (DESIGN.md); re-running the same command resumes it.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from code_qwen.cpu_threads import limit_cpu_threads
from code_qwen.in_training_eval import InTrainingEvalConfig, check_schedule, evaluate_baseline, make_eval_hook
from shared.config import RunConfig, parse_cli

RECIPE = "code-pretrain"
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "pretrain" / "tiny.yaml"

log = logging.getLogger("code_qwen.pretrain")


@dataclass
class PretrainDataConfig:
    shard_dir: str = "data/code_tiny"
    # A data_recipes corpus recipe that builds shard_dir when it holds no manifest; empty = shards must exist.
    build_recipe: str = ""
    verify_checksums: bool = False


@dataclass
class Config(RunConfig):
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    eval: InTrainingEvalConfig = field(default_factory=InTrainingEvalConfig)
    # CPU only: torch threads (0 = torch's default). See limit_cpu_threads.
    cpu_threads: int = 0


def ensure_shards(data: PretrainDataConfig) -> Path:
    """The shard folder, built by data_recipes first when absent and a build recipe is configured."""
    from shared.token_shards import MANIFEST

    folder = Path(data.shard_dir)
    if (folder / MANIFEST).exists():
        return folder
    if not data.build_recipe:
        raise SystemExit(f"{folder} holds no token shards ({MANIFEST} missing): build them with "
                         "`just code-data <recipe.yaml> out_dir=...` or set data.build_recipe")
    from data_recipes.pipeline import build_code_corpus

    log.info("%s has no shards yet: building them from %s", folder, data.build_recipe)
    return build_code_corpus(data.build_recipe, folder)


def check_tokenizer(shard_dir: Path, tokenizer, cfg: Config) -> None:
    """Shards tokenised with another tokenizer would train on garbage ids: refuse them."""
    from data_recipes.tokenization import end_of_text_id, tokenizer_identity
    from shared.token_shards import MANIFEST

    written = json.loads((shard_dir / MANIFEST).read_text()).get("tokenizer", {})
    try:
        ours = tokenizer_identity(tokenizer, cfg.model)
    except AttributeError:  # a slow (non-Rust) tokenizer: nothing to fingerprint, compare what can be
        ours = {"name": cfg.model.tokenizer or cfg.model.name_or_path, "vocab_size": len(tokenizer),
                "end_of_text_id": end_of_text_id(tokenizer)}
    differ = [k for k in ("vocab_size", "end_of_text_id") if k in written and written[k] != ours[k]]
    if written.get("sha256_of") == ours.get("sha256_of") and written.get("sha256") != ours.get("sha256"):
        differ.append("sha256 of " + str(ours.get("sha256_of")))
    if differ:
        raise SystemExit(f"{shard_dir} was tokenised with {written.get('name')}, not with the model's tokenizer "
                         f"{ours['name']} ({', '.join(differ)} differ): rebuild the shards with the model's tokenizer")


def main(argv: list[str] | None = None) -> dict:
    from data_recipes.tokenization import end_of_text_id
    from shared.data import pretrain_dataset
    from shared.distributed import barrier, init_distributed
    from shared.modeling import load_tokenizer
    from shared.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_cli(Config, argv, DEFAULT_CONFIG)
    check_schedule(cfg.eval, cfg.train.save_every)
    limit_cpu_threads(cfg.cpu_threads)
    tokenizer = load_tokenizer(cfg.model)
    if init_distributed().is_main:  # one rank builds missing shards; the others wait for them
        ensure_shards(cfg.data)
    barrier()
    shard_dir = ensure_shards(cfg.data)
    check_tokenizer(shard_dir, tokenizer, cfg)
    dataset = pretrain_dataset(shard_dir, cfg.train.seq_len, end_of_text_id(tokenizer),
                               verify=cfg.data.verify_checksums)
    trainer = Trainer(cfg, recipe=RECIPE, dataset=dataset, tokenizer=tokenizer)
    hook = make_eval_hook(cfg.eval, trainer, chat=False, zero_stage=cfg.train.zero_stage)
    if hook is not None:
        trainer.on_checkpoint.append(hook)
    if cfg.eval.baseline and init_distributed().is_main:  # the random (or base) model the run starts from
        from shared.modeling import load_model

        evaluate_baseline(cfg.eval, trainer, load_model(cfg.model, tokenizer, seed=cfg.train.seed), chat=False)
    result = trainer.train()
    print(json.dumps({k: result[k] for k in ("step", "loss", "tokens", "run_dir", "export_dir") if k in result}))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
