"""Training throughput on the same tiny Qwen2 and GSM8K-in-ChatML data, all measured in one run:

  ours      shared.trainer (DeepSpeed engine, conversations bin-packed into full rows, per-document attention)
  hf        transformers.Trainer, one conversation per sample, batches padded to their longest sample
  trl       trl.SFTTrainer with packing (its default best-fit-decreasing strategy)

The figure of merit is REAL tokens per second (padding excluded), over the steps after a warm-up. MFU is
model FLOP/s (6 x parameters + attention, per real token) over this machine's measured fp32 matmul peak.

    .venv/bin/python -m bench.train_throughput [--steps 12] [--warmup 3] [--conversations 1024]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from shared.chat import fit_to_length, tokenize_chat
from shared.config import ChatDataConfig, RunConfig, load_config
from shared.data import sft_dataset
from shared.metrics import flops_per_token, measure_matmul_flops, read_metrics
from shared.modeling import load_model, load_tokenizer
from shared.trainer import Trainer

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"


def write_chat(src: Path, dst: Path, n: int) -> list[list[dict]]:
    conversations: list[list[dict]] = []
    with open(src) as f:
        for line in f:
            if len(conversations) == n:
                break
            row = json.loads(line)
            conversations.append([{"role": "user", "content": row["question"]},
                                  {"role": "assistant", "content": row["answer"]}])
    dst.write_text("".join(json.dumps({"messages": m}) + "\n" for m in conversations))
    return conversations


def bench_config(workdir: Path, args) -> RunConfig:
    return load_config(RunConfig, None, [
        f"runs_dir={workdir}", "run_name=ours", f"train.seq_len={args.seq_len}",
        f"train.micro_batch_size={args.batch}", "train.grad_accum=1", f"train.max_steps={args.warmup + args.steps}",
        f"train.save_every={10**6}", "train.log_every=1", "train.schedule.name=constant", "train.optimizer.lr=3e-4",
    ])


def run_ours(cfg: RunConfig, tok, chat_file: Path, warmup: int) -> dict:
    data = sft_dataset([chat_file], tok, ChatDataConfig(), cfg.train.seq_len)
    Trainer(cfg, recipe="bench", dataset=data, tokenizer=tok).train()
    records = read_metrics(Path(cfg.runs_dir) / "bench" / "ours")[warmup:]
    tokens = np.diff([r["tokens"] for r in read_metrics(Path(cfg.runs_dir) / "bench" / "ours")])[warmup - 1 :]
    seconds = sum(t / r["tokens_per_s"] for t, r in zip(tokens, records, strict=True))
    assert data.report is not None
    return {"tokens_per_s": float(tokens.sum() / seconds), "pad_fraction": data.report.to_dict()["pad_fraction"]}


class StepClock:
    """Trainer callback: wall time of each optimizer step (forward, backward, clip, update)."""

    def __init__(self):
        self.times: list[float] = []
        self._t0 = 0.0

    def make(self):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                clock._t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                clock.times.append(time.perf_counter() - clock._t0)

        return _Callback()


def counting(trainer_cls):
    """A subclass that counts the real (attended, non-pad) tokens of every batch it trains on."""

    class Counting(trainer_cls):
        real_tokens: list[int] = []
        slots: list[int] = []

        def training_step(self, model, inputs, *a, **kw):
            ids = inputs["input_ids"]
            mask = inputs.get("attention_mask")
            self.real_tokens.append(int(mask.sum()) if mask is not None else int(ids.numel()))
            self.slots.append(int(ids.numel()))
            return super().training_step(model, inputs, *a, **kw)

    return Counting


def summarize(trainer, clock: StepClock, warmup: int) -> dict:
    tokens = trainer.real_tokens[warmup:]
    seconds = clock.times[warmup:]
    return {"tokens_per_s": sum(tokens) / sum(seconds),
            "pad_fraction": 1 - sum(trainer.real_tokens) / sum(trainer.slots)}


def fitted(conversations, tok, seq_len: int) -> list:
    """Each conversation tokenised (loss on every token, as the HF baselines train) and cut to seq_len."""
    out = [fit_to_length(tokenize_chat(m, tok, train_on="all"), seq_len, "truncate") for m in conversations]
    return [s for s in out if s is not None]


def padded_batch(samples, pad_id: int) -> dict[str, torch.Tensor]:
    """Conversations padded to the longest of them, as the HF Trainer's collator does."""
    width = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id)
    labels = torch.full((len(samples), width), -100)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for i, s in enumerate(samples):
        n = len(s.input_ids)
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(s.input_ids), torch.tensor(s.labels), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def run_hf_padded(cfg: RunConfig, tok, conversations, workdir: Path, args) -> dict:
    from datasets import Dataset
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    rows = [{"input_ids": list(s.input_ids), "labels": list(s.labels)} for s in fitted(conversations, tok, args.seq_len)]

    def collate(batch):
        return padded_batch([SimpleNamespace(**b) for b in batch], tok.pad_token_id)

    clock = StepClock()
    trainer = counting(HFTrainer)(
        model=load_model(cfg.model, tok, seed=cfg.train.seed),
        args=TrainingArguments(output_dir=str(workdir / "hf"), per_device_train_batch_size=args.batch,
                               max_steps=args.warmup + args.steps, learning_rate=3e-4, lr_scheduler_type="constant",
                               report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
                               dataloader_num_workers=0, remove_unused_columns=False, seed=cfg.train.seed),
        train_dataset=Dataset.from_list(rows), data_collator=collate, callbacks=[clock.make()],
    )
    trainer.train()
    return summarize(trainer, clock, args.warmup)


def run_trl_packed(cfg: RunConfig, tok, conversations, workdir: Path, args) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    clock = StepClock()
    trainer = counting(SFTTrainer)(
        model=load_model(cfg.model, tok, seed=cfg.train.seed),
        args=SFTConfig(output_dir=str(workdir / "trl"), per_device_train_batch_size=args.batch, packing=True,
                       max_length=args.seq_len, max_steps=args.warmup + args.steps, learning_rate=3e-4,
                       lr_scheduler_type="constant", report_to=[], save_strategy="no", logging_strategy="no",
                       use_cpu=True, dataloader_num_workers=0, seed=cfg.train.seed),
        train_dataset=Dataset.from_list([{"messages": m} for m in conversations]),
        processing_class=tok, callbacks=[clock.make()],
    )
    trainer.train()
    return summarize(trainer, clock, args.warmup)


def interleaved_model_steps(cfg: RunConfig, tok, conversations, chat_file: Path, args, reps: int = 8) -> dict:
    """Forward+backward only, the three batch layouts alternated step by step (robust to a shared machine's load):
    a padded batch of 8 conversations (transformers sdpa with a padding mask, HF loss), 8 packed rows with
    transformers' dense block-diagonal mask and full logits, and 8 packed rows our way (per-document SDPA,
    target-only logits). Each round draws new random conversations and rows (the same draws for every
    layout run on them); real tokens/s over all rounds after the first."""
    from shared.data import real_tokens
    from shared.loss import token_loss_sum
    from shared.packed_attention import restore_attention, use_packed_attention
    from shared.packed_loss import packed_loss_sum
    from shared.packing import collate_rows

    model = load_model(cfg.model, tok, seed=cfg.train.seed)
    data = sft_dataset([chat_file], tok, ChatDataConfig(), args.seq_len)
    samples = fitted(conversations, tok, args.seq_len)
    rng = np.random.default_rng(cfg.train.seed)
    pad = tok.pad_token_id

    def padded(batch):
        model(**batch, use_cache=False).loss.backward()

    def dense(batch):
        token_loss_sum(model, batch)[0].backward()

    def ours(batch):
        use_packed_attention(model)
        packed_loss_sum(model, batch)[0].backward()
        restore_attention(model)

    totals = {name: [0.0, 0.0] for name in ("hf_padded", "packed_dense_mask", "ours")}
    for rep in range(reps + 1):
        rows = [data[int(i)] for i in rng.choice(len(data), args.batch, replace=False)]
        convs = padded_batch([samples[int(i)] for i in rng.choice(len(samples), args.batch, replace=False)], pad)
        packed = collate_rows(rows, pad)
        packed_real = sum(real_tokens(r, pad) for r in rows)
        for name, fn, batch, real in (("hf_padded", padded, convs, int(convs["attention_mask"].sum())),
                                      ("packed_dense_mask", dense, packed, packed_real),
                                      ("ours", ours, packed, packed_real)):
            t0 = time.perf_counter()
            fn(batch)
            dt = time.perf_counter() - t0
            model.zero_grad(set_to_none=True)
            if rep:  # the first round warms up
                totals[name][0] += real
                totals[name][1] += dt
    return {k: tokens / seconds for k, (tokens, seconds) in totals.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--conversations", type=int, default=1024)
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--interleaved-only", action="store_true", help="only the forward+backward comparison")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not GSM8K.exists():
        print(f"skipped: {GSM8K} is absent")
        return
    workdir = Path(tempfile.mkdtemp(prefix="train_throughput-"))
    cfg = bench_config(workdir, args)
    tok = load_tokenizer(cfg.model)
    conversations = write_chat(GSM8K, workdir / "chat.jsonl", args.conversations)
    peak = measure_matmul_flops(2048)
    fpt = flops_per_token(load_model(cfg.model, tok), args.seq_len)
    results = {}
    if not args.interleaved_only:
        results["ours"] = run_ours(cfg, tok, workdir / "chat.jsonl", args.warmup)
        results["hf_padded"] = run_hf_padded(cfg, tok, conversations, workdir, args)
    if not args.skip_trl and not args.interleaved_only:
        try:
            results["trl_packed"] = run_trl_packed(cfg, tok, conversations, workdir, args)
        except ImportError:
            print("trl not installed (pip install -e .[bench]): skipping the TRL baseline")
    print(f"tiny Qwen2: {fpt / 6 / 1e6:.1f}M-parameter-equivalent FLOPs/token {fpt / 1e6:.1f} MFLOP; "
          f"batch {args.batch} x {args.seq_len}; fp32 matmul peak {peak / 1e9:.0f} GFLOP/s; torch threads "
          f"{torch.get_num_threads()}")
    for name, r in results.items():
        r["mfu"] = r["tokens_per_s"] * fpt / peak
        print(f"  {name:11s} {r['tokens_per_s']:8.0f} real tokens/s   padding {r['pad_fraction']:6.1%}   "
              f"MFU {r['mfu']:6.1%}   x{r['tokens_per_s'] / results['hf_padded']['tokens_per_s']:.2f} vs hf_padded")
    steps = interleaved_model_steps(cfg, tok, conversations, workdir / "chat.jsonl", args)
    print("forward+backward only, layouts interleaved step by step on the same random draws (real tokens/s):")
    for name, rate in steps.items():
        print(f"  {name:17s} {rate:8.0f}   x{rate / steps['hf_padded']:.2f} vs hf_padded")
    print(json.dumps({"peak_flops": peak, "flops_per_token": fpt, **results, "interleaved": steps}))


if __name__ == "__main__":
    main(sys.argv[1:])
