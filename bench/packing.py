"""Packing benchmark: GSM8K train as ChatML at row length 1024 and 512.

Prints, for each length: the pad fraction of our best-fit-decreasing packed rows vs padding each batch to its
longest sample, and the time to tokenise+mask+pack vs tokenising+masking alone (the packing overhead), plus a
reference: the tokenizer's own batch encoding of the rendered text.

    .venv/bin/python bench/packing.py [--gsm8k ../shared/data/gsm8k/train.jsonl] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.chat import fit_to_length, render_chatml, tokenize_chat, with_default_system  # noqa: E402
from shared.config import ModelConfig  # noqa: E402
from shared.modeling import load_tokenizer  # noqa: E402
from shared.packing import pack_conversations  # noqa: E402

SYSTEM = "Solve the problem step by step and end with '#### <answer>'."


def gsm8k_conversations(path: Path) -> list[list[dict]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [[{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}] for r in rows]


def padded_to_longest_fraction(lengths: list[int], batch_size: int, seed: int = 0) -> float:
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    slots = real = 0
    for i in range(0, len(order), batch_size):
        batch = [lengths[j] for j in order[i : i + batch_size]]
        slots += max(batch) * len(batch)
        real += sum(batch)
    return 1 - real / slots


def best_of(fn, repeats: int = 3):
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gsm8k", type=Path, default=ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--tokenizer", default="tiny", help="'tiny' or a local tokenizer folder")
    args = ap.parse_args()
    if not args.gsm8k.exists():
        print(f"skip: {args.gsm8k} not found")
        return
    tok = load_tokenizer(ModelConfig(tokenizer=args.tokenizer))
    convs = gsm8k_conversations(args.gsm8k)
    texts = [render_chatml(with_default_system(c, SYSTEM)) for c in convs]
    print(f"{platform.processor() or platform.machine()}, {len(convs)} GSM8K train conversations, tokenizer={args.tokenizer}")

    t_ref, _ = best_of(lambda: tok(texts, add_special_tokens=False)["input_ids"])
    t_tok, samples = best_of(lambda: [tokenize_chat(c, tok, default_system_prompt=SYSTEM) for c in convs])
    lengths = [len(s.input_ids) for s in samples]
    n_tokens = sum(lengths)
    print(f"tokenise+mask: {len(convs) / t_tok:,.0f} conv/s, {n_tokens / t_tok:,.0f} tok/s "
          f"(reference batch encode of rendered text: {n_tokens / t_ref:,.0f} tok/s)")
    for seq_len in (1024, 512):
        fitted = [f for f in (fit_to_length(s, seq_len, "truncate") for s in samples) if f is not None]
        n_cut = sum(f.truncated for f in fitted)
        lengths = [len(f.input_ids) for f in fitted]
        n_tokens = sum(lengths)
        t_pack, rows = best_of(partial(pack_conversations, fitted, seq_len, tok.pad_token_id))
        slots = len(rows) * seq_len
        ours = 1 - n_tokens / slots
        padded = padded_to_longest_fraction(lengths, args.batch_size)
        print(f"\nseq_len {seq_len}: {len(rows)} rows (lower bound {-(-n_tokens // seq_len)}; {n_cut} over-long conversations truncated, "
              f"{len(samples) - len(fitted)} skipped)")
        print(f"  pad fraction  packed (ours) {ours:.4%}   padded to longest in batch of {args.batch_size}: {padded:.2%}"
              f"   ratio {padded / max(ours, 1e-9):.0f}x less padding"
              + (f"   target <2%: {'met' if ours < 0.02 else 'MISSED'}" if seq_len == 1024 else ""))
        overhead = t_pack / t_tok
        print(f"  packing {len(convs) / t_pack:,.0f} conv/s, {n_tokens / t_pack:,.0f} tok/s; tokenise+mask+pack takes "
              f"{1 + overhead:.3f}x tokenise+mask alone (+{overhead:.1%}; target <20%: {'met' if overhead < 0.2 else 'MISSED'})")


if __name__ == "__main__":
    main()
