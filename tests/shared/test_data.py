"""The sampler and the pretraining blocks, proved against the straightforward computation."""

from __future__ import annotations

import numpy as np
import pytest

from shared.chat import IGNORE_INDEX
from shared.data import PretrainBlocks, ResumableSampler, SamplerLayout, pretrain_dataset, real_tokens
from shared.packing import Row, row_from_token_block
from shared.token_shards import write_manifest, write_shard


def flat(micro: list[list[int]]) -> list[int]:
    return [i for mb in micro for i in mb]


def test_ranks_split_the_global_batch_of_the_single_process_stream():
    n, steps = 23, 9  # 23 is not a multiple of the global batch: batches straddle epochs
    single = ResumableSampler(n, seed=7, layout=SamplerLayout(4, 2, 1), rank=0)
    ranks = [ResumableSampler(n, seed=7, layout=SamplerLayout(2, 2, 2), rank=r) for r in range(2)]
    for _ in range(steps):
        one = single.next_step()
        parts = [s.next_step() for s in ranks]
        both = sorted(flat(parts[0]) + flat(parts[1]))
        assert both == sorted(flat(one))
        assert len(flat(parts[0])) == len(flat(parts[1])) == 4


def test_epochs_are_permutations_reshuffled_by_seed_and_epoch():
    n = 10
    s = ResumableSampler(n, seed=3, layout=SamplerLayout(5, 1, 1), rank=0)
    stream = flat(s.next_step()) + flat(s.next_step()) + flat(s.next_step()) + flat(s.next_step())
    first, second = stream[:n], stream[n:]
    assert sorted(first) == sorted(second) == list(range(n))
    assert first != second  # epoch 1 is reshuffled
    assert first == np.random.default_rng(3).permutation(n).tolist()
    other = ResumableSampler(n, seed=4, layout=SamplerLayout(5, 1, 1), rank=0)
    assert flat(other.next_step()) + flat(other.next_step()) != first


def test_resume_from_cursor_neither_repeats_nor_skips():
    layout = SamplerLayout(3, 2, 1)
    straight = ResumableSampler(17, seed=1, layout=layout, rank=0)
    expected = [straight.next_step() for _ in range(10)]
    first = ResumableSampler(17, seed=1, layout=layout, rank=0)
    got = [first.next_step() for _ in range(4)]
    state = first.state_dict()
    resumed = ResumableSampler(17, seed=1, layout=layout, rank=0)
    resumed.load_state_dict(state)
    got += [resumed.next_step() for _ in range(6)]
    assert got == expected
    with pytest.raises(ValueError, match="seed"):
        ResumableSampler(17, seed=2, layout=layout, rank=0).load_state_dict(state)


def test_pretrain_blocks_are_the_concatenated_stream_across_shards(tmp_path):
    eos = 0
    rng = np.random.default_rng(0)
    docs = [np.append(rng.integers(1, 50, rng.integers(1, 12)), eos) for _ in range(30)]
    entries = [write_shard(tmp_path, 0, docs[:11]), write_shard(tmp_path, 1, docs[11:])]
    write_manifest(tmp_path, {"shards": entries})
    blocks = pretrain_dataset(tmp_path, seq_len=16, eos_id=eos)
    stream = np.concatenate(docs)
    assert len(blocks) == len(stream) // 16 and blocks.report["dropped_tail_tokens"] == len(stream) % 16
    for i in range(len(blocks)):
        expected = row_from_token_block(stream[i * 16 : (i + 1) * 16], eos)
        row = blocks[i]
        np.testing.assert_array_equal(row.input_ids, expected.input_ids)
        np.testing.assert_array_equal(row.labels, expected.labels)
        np.testing.assert_array_equal(row.position_ids, expected.position_ids)
    with pytest.raises(IndexError):
        blocks[len(blocks)]
    assert isinstance(blocks, PretrainBlocks)


def test_real_tokens_excludes_only_trailing_padding():
    pad = 0
    ids = np.array([5, 6, 0, 7, 8, 0, 0, 0])  # an <|endoftext|>-like 0 inside a document is not padding
    labels = np.array([5, 6, 0, 7, 8, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX])
    row = Row(ids, labels, np.arange(8))
    assert real_tokens(row, pad) == 5
    block = row_from_token_block(np.array([3, 4, 0, 5, 0]), eos_id=0)  # pretraining block ending with eos
    assert real_tokens(block, pad) == 5
