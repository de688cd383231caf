"""The training loop: one DeepSpeed engine for CPU and GPU, exact resume, HF export, metrics.

A recipe is a few lines:

    from shared.config import parse_cli
    from shared.data import sft_dataset
    from shared.modeling import load_tokenizer
    from shared.trainer import Trainer

    cfg = parse_cli(MathSFTConfig, argv, DEFAULT_YAML)          # a RunConfig subclass with a `data` field
    tok = load_tokenizer(cfg.model)
    data = sft_dataset(cfg.data.train_files, tok, cfg.data, cfg.train.seq_len)
    run = Trainer(cfg, recipe="math-sft", dataset=data, tokenizer=tok,
                  init_from=None,                                # or stage k's export/ for SFT stage k+1
                  on_checkpoint=[my_eval])                       # my_eval(step, hf_dir, ckpt_dir), main rank (every rank if my_eval.all_ranks)
    result = run.train()   # {"step", "loss", "tokens", "run_dir", "export_dir", ...}

Pretraining: `dataset=pretrain_dataset(shard_dir, cfg.train.seq_len, tok.eos_token_id)`.

The run folder is runs_dir/<recipe>/<run_name>/: config.yaml (saved at start), data_report.json, metrics.jsonl,
tensorboard/, checkpoints/step-N/ (see shared/checkpoint.py; `hf/` inside is loadable by from_pretrained), and
export/ at the end. Re-running the same command resumes from the newest complete checkpoint, agreed by all ranks
(init_from then only gives the architecture: the weights come from the checkpoint). A checkpoint that does not
load stops the run with its name and why (or, with train.on_bad_checkpoint=previous, the previous one is used);
see shared/resume.py, also for resuming at another world size. `run.eval_dir(bench, step)` is where in-training evaluations go.

Speed: on CPU (and GPUs without flash-attn) the model runs "sdpa_packed" attention during training
(shared/packed_attention.py: causal SDPA per document instead of a dense block-diagonal mask) and the loss
takes logits only where there is a target (shared/packed_loss.py); both are exact (tests prove equality).

Loss: sum of token cross-entropy over the whole optimizer step's targets (all micro-batches, all ranks) divided
by their count, so gradient accumulation and data parallelism equal one big batch. DeepSpeed divides by the
number of accumulation steps (we pass scale_wrt_gas=False) and averages gradients over ranks (we multiply by
the world size), which this compensates exactly. In bf16, gradients are accumulated and reduced in fp32
(build_ds_config).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from shared import checkpoint as ckpt
from shared.config import RunConfig, save_config, to_dict
from shared.data import ResumableSampler, RowDataset, SamplerLayout, real_tokens
from shared.distributed import DistInfo, all_reduce_sum, barrier, init_distributed
from shared.metrics import MetricsLog, flops_per_token, peak_flops, read_metrics_if_any, truncate_jsonl
from shared.modeling import load_model, load_tokenizer, pick_dtype
from shared.packed_attention import restore_attention, use_packed_attention
from shared.packed_loss import packed_loss_sum
from shared.packing import collate_rows
from shared.resume import resume
from shared.schedules import build_scheduler
from shared.separation_probe import packing_guard, unpack_rows

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine

log = logging.getLogger(__name__)

CheckpointHook = Callable[[int, Path, Path], None]


def build_ds_config(cfg: RunConfig, world_size: int, dtype: torch.dtype) -> dict[str, Any]:
    """The DeepSpeed config our TrainConfig means. No `scheduler` or `optimizer` block: ours are passed in."""
    t = cfg.train
    ds: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": t.micro_batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "train_batch_size": t.micro_batch_size * t.grad_accum * world_size,
        "gradient_clipping": t.optimizer.grad_clip,
        "zero_optimization": {"stage": t.zero_stage},
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        # A torch AdamW object is what runs on CPU and GPU alike; DeepSpeed must accept it under ZeRO.
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    if dtype == torch.bfloat16:
        ds.update(bf16_fp32_accumulation(t.zero_stage))
    return ds


def bf16_fp32_accumulation(zero_stage: int) -> dict[str, Any]:
    """bf16 weights and activations, but gradients summed over micro-batches and reduced over ranks in fp32.

    DeepSpeed's default under bf16 is bf16 for both (8 significant bits: 32 micro-batches summed in bf16 lose
    about 5 of them). `data_types.grad_accum_dtype` is honoured by DeepSpeed 0.19.8's BF16_Optimizer (what it
    runs for ZeRO-1 + bf16 + fp32 accumulation) and by the ZeRO-2 and ZeRO-3 optimizers; without ZeRO it raises
    NotImplementedError ("unsupported mix"), so bf16 at train.zero_stage=0 runs ZeRO-1: on one rank the same
    update, on several the fp32 master weights and Adam states are partitioned (nothing else changes).
    """
    return {
        "data_types": {"grad_accum_dtype": "fp32"},
        "communication_data_type": "fp32",
        "zero_optimization": {"stage": max(zero_stage, 1)},
    }


def build_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases and norms (1-D tensors)."""
    o = cfg.train.optimizer
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if p.ndim >= 2]
    no_decay = [p for n, p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr, betas=(o.betas[0], o.betas[1]), eps=o.eps)


def freeze_parameters(model: torch.nn.Module, patterns: Sequence[str]) -> list[str]:
    frozen = []
    for name, p in model.named_parameters():
        if any(s in name for s in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    if patterns and not frozen:
        raise ValueError(f"train.freeze={list(patterns)} matches no parameter")
    return frozen


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(
        self,
        cfg: RunConfig,
        *,
        recipe: str,
        dataset: RowDataset,
        model: torch.nn.Module | None = None,
        tokenizer=None,
        init_from: str | Path | None = None,
        on_checkpoint: Sequence[CheckpointHook] = (),
        log_sample_ids: bool = False,
    ):
        self.cfg = cfg
        self.recipe = recipe
        self.dataset = dataset
        self.model = model
        self.tokenizer = tokenizer
        self.init_from = Path(init_from) if init_from else None
        self.on_checkpoint = list(on_checkpoint)
        self.log_sample_ids = log_sample_ids
        self.run_dir = Path(cfg.runs_dir) / recipe / cfg.run_name
        self.ckpt_root = self.run_dir / "checkpoints"
        self.export_dir = self.run_dir / "export"
        self.engine: DeepSpeedEngine | None = None  # built by _setup; a caller may drop it (set None) after train()
        self.step = 0
        self.tokens = 0  # cumulative real (non-pad) tokens trained, all ranks
        self.window: dict[str, float] = {}
        self.last_record: dict[str, Any] = {}

    # ------------------------------------------------------------------ setup

    def eval_dir(self, bench: str, step: int) -> Path:
        return self.run_dir / "eval" / bench / f"step-{step}"

    def _setup(self) -> None:
        if not logging.getLogger().handlers:  # a recipe that configured nothing still gets the progress line
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        self.dist: DistInfo = init_distributed()
        t = self.cfg.train
        seed_everything(t.seed)
        if self.dist.is_main:
            save_config(self.cfg, self.run_dir / "config.yaml")
            self._write_data_report()
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.cfg.model)
        self.dtype = pick_dtype(t.precision, self.dist.device)
        if self.model is None:
            self.model = self._model_for_resume()
        self.model.to(self.dist.device)
        # Per-document attention without a dense block mask where no flash-attention kernel does it.
        self.packed_attention = use_packed_attention(self.model)
        self.unpack_documents = packing_guard(self.model, self.cfg, self.run_dir, self.dist.is_main)
        self.frozen = freeze_parameters(self.model, t.freeze)
        self.flops_per_token = flops_per_token(self.model, t.seq_len)
        optimizer = build_optimizer(self.model, self.cfg)
        scheduler = build_scheduler(optimizer, t.schedule, t.max_steps)
        import deepspeed

        self.engine, _, _, self.scheduler = deepspeed.initialize(
            model=self.model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=build_ds_config(self.cfg, self.dist.world_size, self.dtype),
            dist_init_required=False,
        )
        layout = SamplerLayout(t.micro_batch_size, t.grad_accum, self.dist.world_size)
        self.sampler = ResumableSampler(len(self.dataset), t.seed, layout, self.dist.rank)
        resumed = resume(self.ckpt_root, self.engine, self.dist, t.on_bad_checkpoint)
        if resumed is not None:
            self._restore(*resumed)
        self.metrics = MetricsLog(self.run_dir, self.dist.is_main, t.max_steps, resume_step=self.step)
        if self.log_sample_ids:
            truncate_jsonl(self._samples_log(), self.step)

    def _model_for_resume(self) -> torch.nn.Module:
        """On resume the architecture comes from the newest sound checkpoint's export (init_from may be gone);
        the engine state that resume() loads then replaces the weights, so an unreadable export falls back to
        init_from (or the config) instead of stopping the run."""
        sound = [p for _, p in ckpt.list_checkpoints(self.ckpt_root) if ckpt.check_checkpoint(p) is None]
        if sound:
            try:
                return self._load_model(sound[0] / "hf")
            except Exception as e:  # a corrupt safetensors file, a missing config.json, ...
                log.warning("cannot build the model from %s (%s: %s); building it from %s instead", sound[0] / "hf",
                            type(e).__name__, e, self.init_from or "the config")
        return self._load_model(self.init_from)

    def _load_model(self, source: Path | None) -> torch.nn.Module:
        mcfg = self.cfg.model if source is None else dataclasses.replace(self.cfg.model, name_or_path=str(source))
        return load_model(mcfg, self.tokenizer, self.cfg.train.precision, self.dist.device, seed=self.cfg.train.seed)

    def _write_data_report(self) -> None:
        report = getattr(self.dataset, "report", None)
        if report is None:
            return
        data = report.to_dict() if hasattr(report, "to_dict") else report
        (self.run_dir / "data_report.json").write_text(json.dumps(data, indent=2))

    def _restore(self, step: int, state: dict[str, Any]) -> None:
        self.step = step
        self.tokens = state["tokens"]
        self.window = state["window"]
        self.sampler.load_state_dict(state["data"])
        ckpt.set_rng_state(state["rng"])
        if self.dist.is_main:
            log.info("resumed at step %d (%d samples consumed)", self.step, self.sampler.consumed)
            done = [r for r in read_metrics_if_any(self.run_dir) if r["step"] <= self.step]
            self.last_record = done[-1] if done else {}

    # ------------------------------------------------------------------ one optimizer step

    def _train_step(self) -> dict[str, float]:
        micro = self.sampler.next_step()
        batches = []
        n_real = 0
        for indices in micro:
            rows = [self.dataset[i] for i in indices]
            n_real += sum(real_tokens(r, self.tokenizer.pad_token_id) for r in rows)
            if self.unpack_documents:  # the model mixes packed documents: one padded row per document
                rows = unpack_rows(rows, self.tokenizer.pad_token_id)
            batches.append(collate_rows(rows, self.tokenizer.pad_token_id))
        if self.log_sample_ids:
            self._log_samples(micro)
        local_targets = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
        n_targets = all_reduce_sum(local_targets, self.dist.device)
        scale = self.dist.world_size / max(n_targets, 1.0)
        lr = self.scheduler.get_last_lr()[0]
        loss_sum = 0.0
        grad_norm = None
        engine = self._built_engine()
        for k, batch in enumerate(batches):
            batch = {key: v.to(self.dist.device) for key, v in batch.items()}
            loss, _ = packed_loss_sum(engine, batch)
            engine.backward(loss * scale, scale_wrt_gas=False)
            if k == len(batches) - 1 and engine.zero_optimization_stage() == 0:
                grad_norm = self._stage0_grad_norm()
            engine.step()
            loss_sum += float(loss.detach())
        ds_norm = engine.get_global_grad_norm()
        if ds_norm is not None:
            grad_norm = float(ds_norm)
        return {
            "loss_sum": all_reduce_sum(loss_sum, self.dist.device),
            "targets": n_targets,
            "real_tokens": all_reduce_sum(n_real, self.dist.device),
            "lr": lr,
            "grad_norm": grad_norm if grad_norm is not None else float("nan"),
        }

    def _built_engine(self) -> DeepSpeedEngine:
        if self.engine is None:
            raise RuntimeError("the DeepSpeed engine is built by Trainer.train(); it is not there yet or was dropped")
        return self.engine

    def _stage0_grad_norm(self) -> float | None:
        """Gradients are all-reduced at the boundary backward; DeepSpeed's stage-0 fp32 path does not record it.

        In fp64, as DeepSpeed's ZeRO optimizers compute theirs (an fp32 sum of squares is ~1e-5 off).
        """
        grads = [p.grad for p in self._built_engine().module.parameters() if p.grad is not None]
        if not grads:
            return None
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads])))

    def _samples_log(self) -> Path:
        return self.run_dir / f"samples-rank{self.dist.rank}.jsonl"

    def _log_samples(self, micro: list[list[int]]) -> None:
        with open(self._samples_log(), "a") as f:
            f.write(json.dumps({"step": self.step + 1, "indices": micro}) + "\n")

    # ------------------------------------------------------------------ logging and checkpoints

    def _accumulate(self, out: dict[str, float], seconds: float) -> None:
        w = self.window
        for key in ("loss_sum", "targets", "real_tokens"):
            w[key] = w.get(key, 0.0) + out[key]
        w["seconds"] = w.get("seconds", 0.0) + seconds
        w["steps"] = w.get("steps", 0) + 1
        self.tokens += int(out["real_tokens"])

    def _log(self, out: dict[str, float]) -> None:
        w = self.window
        tps = w["real_tokens"] / w["seconds"] if w["seconds"] > 0 else 0.0
        record = {
            "step": self.step,
            "loss": w["loss_sum"] / max(w["targets"], 1.0),
            "lr": out["lr"],
            "tokens": self.tokens,
            "tokens_per_s": tps,
            "grad_norm": out["grad_norm"],
            "epoch": self.sampler.epoch,
            "samples": self.sampler.consumed,
            "target_tokens": int(w["targets"]),
        }
        if self.flops_per_token > 0:
            record["mfu"] = tps * self.flops_per_token / (peak_flops(self.dist.device) * self.dist.world_size)
        self.metrics.write(record)
        self.last_record = record
        self.window = {}

    def _checkpoint(self) -> Path:
        state = {
            "step": self.step,
            "tokens": self.tokens,
            "window": self.window,
            "data": self.sampler.state_dict(),
            "config": to_dict(self.cfg),
        }
        t = self.cfg.train
        path = ckpt.save_checkpoint(self.ckpt_root, self.step, self.engine, self.tokenizer, state, self.dist.rank, t.keep_last)
        for hook in self.on_checkpoint:  # a hook marked all_ranks (data-parallel evaluation) runs on every rank
            if self.dist.is_main or getattr(hook, "all_ranks", False):
                hook(self.step, path / "hf", path)
        barrier()
        return path

    def _export(self) -> None:
        tmp = self.run_dir / ".export.tmp"
        if self.dist.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        barrier()
        ckpt.export_hf(self.engine, tmp, self.tokenizer, is_main=self.dist.is_main)
        if self.dist.is_main:
            if self.export_dir.exists():
                shutil.rmtree(self.export_dir)
            tmp.rename(self.export_dir)
            log.info("exported %s", self.export_dir)
        barrier()

    # ------------------------------------------------------------------ the loop

    def train(self) -> dict[str, Any]:
        self._setup()
        t = self.cfg.train
        last_saved = self.step
        if self.dist.is_main and self.step < t.max_steps:
            log.info("training %s/%s: steps %d..%d, world size %d, ZeRO-%d, %s",
                     self.recipe, self.cfg.run_name, self.step + 1, t.max_steps, self.dist.world_size,
                     self._built_engine().zero_optimization_stage(), self.dtype)
        self._built_engine().train()
        while self.step < t.max_steps:
            t0 = time.perf_counter()
            out = self._train_step()
            self.step += 1
            self._accumulate(out, time.perf_counter() - t0)
            if self.step % t.log_every == 0 or self.step == t.max_steps:
                self._log(out)
            if self.step % t.save_every == 0 or self.step == t.max_steps:
                self._checkpoint()
                last_saved = self.step
        if last_saved != self.step:
            self._checkpoint()
        self._export()
        self.metrics.close()
        if self.packed_attention:
            restore_attention(self._built_engine().module)
        return {**self.last_record, "step": self.step, "tokens": self.tokens,
                "run_dir": str(self.run_dir), "export_dir": str(self.export_dir)}
