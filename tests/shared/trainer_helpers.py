"""A tiny model, a tiny chat data set and a config that trains in about a second per run (fp32, CPU)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from shared.config import ChatDataConfig, RunConfig, load_config
from shared.data import SFTRows, sft_dataset
from shared.modeling import load_tokenizer

TINY_MODEL = [
    "model.tiny.hidden_size=32",
    "model.tiny.num_hidden_layers=2",
    "model.tiny.num_attention_heads=4",
    "model.tiny.num_key_value_heads=2",
    "model.tiny.intermediate_size=64",
]


def write_chat_jsonl(path: Path, n: int = 48, seed: int = 0) -> Path:
    """Arithmetic conversations of very different lengths, so rows hold unequal numbers of target tokens."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            a, b = rng.randint(1, 999), rng.randint(1, 999)
            steps = " ".join(f"s{k}." for k in range(rng.randint(0, 12)))
            messages = [
                {"role": "user", "content": f"What is {a} plus {b}?"},
                {"role": "assistant", "content": f"{steps} {a} + {b} = {a + b}\n#### {a + b}"},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def tiny_config(runs_dir: Path, *overrides: str) -> RunConfig:
    base = [
        f"runs_dir={runs_dir}",
        "run_name=t",
        "train.seq_len=128",
        "train.micro_batch_size=2",
        "train.grad_accum=2",
        "train.max_steps=4",
        "train.save_every=2",
        "train.log_every=1",
        "train.keep_last=3",
        "train.optimizer.lr=0.003",
        "train.schedule.warmup_steps=2",
        *TINY_MODEL,
    ]
    return load_config(RunConfig, None, [*base, *overrides])


def tiny_data(folder: Path, seq_len: int = 128, packing: str = "packed") -> tuple[object, SFTRows]:
    tok = load_tokenizer(tiny_config(folder).model)
    path = write_chat_jsonl(folder / "chat.jsonl")
    return tok, sft_dataset([path], tok, ChatDataConfig(packing=packing, default_system_prompt=None), seq_len)


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine run several times faster with one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
