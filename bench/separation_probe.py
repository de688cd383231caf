"""Separation probe benchmark: what the probe and the padded fallback cost next to a training step.

On the tiny default model (or --hidden/--layers for a larger one), fp32 CPU, it times
- the probe (shared/separation_probe.py: three forwards of 24 tokens) vs one micro-batch forward+backward of
  packed rows (the trainer's packed_loss_sum): the probe runs once per run, so this is its cost in steps;
- the padded fallback (unpack_rows: one padded row per document) vs the packed rows, forward+backward of the
  same tokens and targets (the two losses are printed: they must be equal).

    .venv/bin/python bench/separation_probe.py [--rows 8] [--seq-len 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.config import ModelConfig, TinyModelConfig  # noqa: E402
from shared.modeling import load_model, load_tokenizer  # noqa: E402
from shared.packed_attention import use_packed_attention  # noqa: E402
from shared.packed_loss import packed_loss_sum  # noqa: E402
from shared.packing import collate_rows, pack_documents  # noqa: E402
from shared.separation_probe import probe_separation, unpack_rows  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="rows per micro-batch (the tiny default's micro_batch_size)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--hidden", type=int, default=TinyModelConfig.hidden_size)
    p.add_argument("--layers", type=int, default=TinyModelConfig.num_hidden_layers)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=args.hidden, num_hidden_layers=args.layers,
                                           intermediate_size=args.hidden * 8 // 3))
    tok = load_tokenizer(cfg)
    model = load_model(cfg, tok, precision="fp32", seed=0)
    use_packed_attention(model)
    rng = np.random.default_rng(0)
    docs = [rng.integers(10, len(tok) - 10, size=int(n)) for n in rng.integers(30, 300, size=4 * args.rows * 8)]
    rows = list(pack_documents(docs, args.seq_len, tok.eos_token_id))[: args.rows]
    unpacked = unpack_rows(rows, tok.pad_token_id)

    def step(batch_rows):
        def run():
            model.zero_grad(set_to_none=True)
            loss, _ = packed_loss_sum(model, collate_rows(batch_rows, tok.pad_token_id))
            loss.backward()
            return float(loss.detach())
        return run

    probe = median_seconds(lambda: probe_separation(model), args.repeats)
    packed = median_seconds(step(rows), args.repeats)
    model.set_attn_implementation("sdpa")  # the fallback serves models without per-document attention
    padded = median_seconds(step(unpacked), args.repeats)
    loss_packed, loss_padded = step(rows)(), step(unpacked)()

    print(f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, torch threads "
          f"{torch.get_num_threads()}; model hidden {args.hidden} x {args.layers} layers; {len(rows)} rows x "
          f"{args.seq_len} = {len(unpacked)} documents")
    print(f"probe: {probe * 1e3:.1f} ms vs one packed micro-batch fwd+bwd {packed * 1e3:.1f} ms: "
          f"ratio {probe / packed:.3f}")
    print(f"padded fallback fwd+bwd: {padded * 1e3:.1f} ms vs packed {packed * 1e3:.1f} ms: ratio {padded / packed:.2f}"
          f" (loss sums {loss_padded:.4f} vs {loss_packed:.4f})")


if __name__ == "__main__":
    main()
