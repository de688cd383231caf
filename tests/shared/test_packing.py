"""Packing is proved by equivalence: a packed row's loss and gradients equal those of its documents one by one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.chat import IGNORE_INDEX, TokenizedChat, tokenize_chat
from shared.config import ModelConfig, TinyModelConfig
from shared.loss import token_loss_sum
from shared.modeling import load_model, load_tokenizer
from shared.packing import (
    best_fit_decreasing,
    collate_rows,
    minimum_slack_bins,
    pack_conversations,
    pack_documents,
    pad_conversations,
    positions_from_starts,
    row_from_token_block,
)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(ModelConfig())


@pytest.fixture(scope="module")
def model(tok):
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                           num_key_value_heads=2, intermediate_size=128))
    return load_model(cfg, tok, precision="fp32", seed=0)


def conversations(n: int):
    for i in range(n):
        yield [
            {"role": "user", "content": f"What is {i} plus {3 * i + 1}?" + " Think." * (i % 4)},
            {"role": "assistant", "content": f"{i}+{3 * i + 1}=<<{i}+{3 * i + 1}={4 * i + 1}>>{4 * i + 1}\n#### {4 * i + 1}"},
        ]


def grads_of(model, batches):
    """Token-weighted mean loss over all batches and its gradients (flattened)."""
    model.zero_grad()
    sums, counts = zip(*(token_loss_sum(model, b) for b in batches), strict=True)
    loss = sum(sums) / sum(counts)
    loss.backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return loss.detach(), g.clone()


def one_doc_batch(ids, labels):
    n = len(ids)
    return {
        "input_ids": torch.tensor([ids]),
        "labels": torch.tensor([labels]),
        "position_ids": torch.arange(n)[None],
    }


def test_packed_sft_loss_and_grads_equal_one_conversation_at_a_time(model, tok):
    samples = [tokenize_chat(c, tok) for c in conversations(12)]
    rows = pack_conversations(samples, 160, tok.pad_token_id)
    assert len(rows) < len(samples)  # several conversations share rows
    packed_loss, packed_grad = grads_of(model, [collate_rows(rows, tok.pad_token_id)])
    single_loss, single_grad = grads_of(model, [one_doc_batch(s.input_ids, s.labels) for s in samples])
    assert torch.allclose(packed_loss, single_loss, atol=1e-5, rtol=0)
    assert torch.allclose(packed_grad, single_grad, atol=1e-5, rtol=1e-4)


def test_padded_rows_equal_packed_rows(model, tok):
    samples = [tokenize_chat(c, tok) for c in conversations(6)]
    packed, _ = grads_of(model, [collate_rows(pack_conversations(samples, 256, tok.pad_token_id), tok.pad_token_id)])
    padded, _ = grads_of(model, [collate_rows(pad_conversations(samples, tok.pad_token_id), tok.pad_token_id)])
    assert torch.allclose(packed, padded, atol=1e-5, rtol=0)


def test_pretraining_block_equals_documents_alone(model, tok):
    eos = tok.pad_token_id  # <|endoftext|>
    docs = [tok.encode(t) + [eos] for t in ["def f(x):\n    return x + 1\n", "import os\nprint(os.sep)\n", "x = [1, 2, 3]\n"]]
    block = np.concatenate(docs)
    row = row_from_token_block(block, eos)
    # A document's first token is never a target predicted from the previous document.
    starts = np.cumsum([0] + [len(d) for d in docs[:-1]])
    assert all(row.labels[s] == IGNORE_INDEX for s in starts[1:])
    assert row.position_ids.tolist() == sum((list(range(len(d))) for d in docs), [])
    packed_loss, packed_grad = grads_of(model, [collate_rows([row], eos)])
    alone_loss, alone_grad = grads_of(model, [one_doc_batch(d, d) for d in docs])
    assert torch.allclose(packed_loss, alone_loss, atol=1e-5, rtol=0)
    assert torch.allclose(packed_grad, alone_grad, atol=1e-5, rtol=1e-4)


def test_pack_documents_streams_fixed_blocks():
    eos = 0
    docs = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14]]
    rows = list(pack_documents(iter(docs), seq_len=4, eos_id=eos))
    stream = [5, 6, 7, 0, 8, 9, 0, 10, 11, 12, 13, 0, 14, 0]
    assert [r.input_ids.tolist() for r in rows] == [stream[0:4], stream[4:8], stream[8:12]]
    assert rows[1].position_ids.tolist() == [0, 1, 2, 0]
    assert rows[1].labels.tolist() == [8, 9, 0, IGNORE_INDEX]


def test_positions_restart_at_every_start():
    assert positions_from_starts(7, [0, 3, 4]).tolist() == [0, 1, 2, 0, 0, 1, 2]


@pytest.mark.parametrize("pack", [best_fit_decreasing, minimum_slack_bins])
def test_bin_packers_are_complete_and_within_capacity(pack):
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 400, size=500).tolist()
    bins = pack(lengths, 1024)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 1024 for b in bins)
    lower_bound = -(-sum(lengths) // 1024)
    assert len(bins) <= lower_bound + 2
    assert pack(lengths, 1024) == bins  # deterministic
    with pytest.raises(ValueError, match="more than the row length"):
        pack([2000], 1024)


def test_minimum_slack_fills_gaps_that_best_fit_leaves():
    # 5+3+2 and 4+4+2 fill two bins of 10 exactly; best-fit decreasing puts 5 with a 4 and needs three.
    lengths = [5, 4, 4, 3, 2, 2]
    assert len(minimum_slack_bins(lengths, 10)) == 2
    assert len(best_fit_decreasing(lengths, 10)) == 3


def test_row_target_counts():
    s = TokenizedChat([1, 2, 3, 4], [IGNORE_INDEX, IGNORE_INDEX, 3, 4])
    (row,) = pack_conversations([s, s], 10, pad_id=0)
    assert row.n_targets == 4 and row.position_ids.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
