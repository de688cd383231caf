"""The math SFT loss mask equals labels derived independently from the rendered ChatML string's character spans."""

from __future__ import annotations

import json

import numpy as np
import pytest

from math_qwen.data import (
    EVAL_SYSTEM_PROMPT,
    MathDataConfig,
    SyntheticDataConfig,
    math_sft_dataset,
    prepare_synthetic,
)
from shared.chat import IGNORE_INDEX, render_chatml
from shared.config import ModelConfig
from shared.modeling import load_tokenizer
from shared.tokenizer import IM_END


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(ModelConfig())


def trained_char_spans(messages: list[dict]) -> list[tuple[int, int]]:
    """Character spans of the rendered conversation that must carry loss: assistant content and its <|im_end|>."""
    spans, pos = [], 0
    for m in messages:
        header = f"<|im_start|>{m['role']}\n"
        start = pos + len(header)
        end = start + len(m["content"]) + len(IM_END)
        if m["role"] == "assistant":
            spans.append((start, end))
        pos = end + 1  # the newline after <|im_end|>
    return spans


def expected_labels(messages: list[dict], tok) -> tuple[list[int], list[int]]:
    text = render_chatml(messages)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = trained_char_spans(messages)
    labels = [tid if any(a <= s and e <= b for a, b in spans) else IGNORE_INDEX
              for tid, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)]  # fmt: skip
    return enc["input_ids"], labels


def documents(row) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a packed row at its position restarts, dropping padding (pad ids without labels at the end)."""
    starts = [*np.flatnonzero(row.position_ids == 0).tolist(), len(row.input_ids)]
    return [(row.input_ids[a:b], row.labels[a:b]) for a, b in zip(starts, starts[1:], strict=False)]


@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_math_sft_labels_mask_system_and_user(tmp_path, tok, packing):
    prepared = prepare_synthetic(tmp_path, SyntheticDataConfig(n_train=12, n_heldout=4))
    conversations = [json.loads(line)["messages"] for line in prepared.train_files[0].read_text().splitlines()]
    assert all(c[0] == {"role": "system", "content": EVAL_SYSTEM_PROMPT} and "####" in c[2]["content"]
               for c in conversations)  # fmt: skip
    ds = math_sft_dataset(prepared.train_files, tok, MathDataConfig(packing=packing), seq_len=1024)
    docs = [d for i in range(len(ds)) for d in documents(ds[i])]
    docs = [d for d in docs if (d[0] != tok.pad_token_id).any()]
    expected = sorted((expected_labels(c, tok) for c in conversations), key=lambda e: e[0])
    got = sorted(((ids.tolist(), labels.tolist()) for ids, labels in docs), key=lambda e: e[0])
    assert len(got) == len(expected) == 12
    for (ids, labels), (want_ids, want_labels) in zip(got, expected, strict=True):
        assert ids == want_ids
        # The packer never trains a document's first token on the previous document; that token is a system header.
        assert labels == want_labels
    assert ds.report.target_tokens > 0


def test_unmasked_ablation_trains_every_token(tmp_path, tok):
    prepared = prepare_synthetic(tmp_path, SyntheticDataConfig(n_train=3, n_heldout=2))
    ds = math_sft_dataset(prepared.train_files, tok, MathDataConfig(packing="padded", mask_system_and_user=False), 1024)
    masked = math_sft_dataset(prepared.train_files, tok, MathDataConfig(packing="padded"), 1024)
    for i in range(len(ds)):
        row, ref = ds[i], masked[i]
        real = row.input_ids != tok.pad_token_id
        # every token but the first (which nothing before it predicts) is a target
        assert (row.labels[real][1:] == row.input_ids[real][1:]).all() and row.labels[0] == IGNORE_INDEX
        assert ref.n_targets < row.n_targets
