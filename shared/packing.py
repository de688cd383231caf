"""Packing token sequences into fixed-length rows without cross-contamination between documents.

Every row carries `position_ids` that restart at 0 at each document. The model is called with position_ids and
no attention_mask: transformers then derives a block-diagonal causal mask from the restarts (sdpa / eager on
CPU) or takes flash-attention's variable-length path (GPU), so attention never crosses a document boundary.
The first token of a document is never a target predicted from the previous document (its label is -100).
Padding (pad id, label -100) forms its own segment, so the same code path serves padded rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from shared.chat import IGNORE_INDEX, TokenizedChat


@dataclass
class Row:
    input_ids: np.ndarray  # int64 [seq]
    labels: np.ndarray  # int64 [seq], IGNORE_INDEX where no loss
    position_ids: np.ndarray  # int64 [seq], restarting at each document

    @property
    def n_targets(self) -> int:
        # Labels are aligned with input_ids; the model predicts labels[1:] from input_ids[:-1].
        return int((self.labels[1:] != IGNORE_INDEX).sum())


def positions_from_starts(length: int, starts: Sequence[int]) -> np.ndarray:
    """Position ids for a row whose documents begin at `starts` (sorted, first is 0)."""
    pos = np.arange(length, dtype=np.int64)
    seg_start = np.zeros(length, dtype=np.int64)
    seg_start[np.asarray(starts, dtype=np.int64)] = np.asarray(starts, dtype=np.int64)
    np.maximum.accumulate(seg_start, out=seg_start)
    return pos - seg_start


def row_from_token_block(block: np.ndarray, eos_id: int) -> Row:
    """A pretraining row from a contiguous slice of the document stream (documents end with eos_id)."""
    ids = np.asarray(block, dtype=np.int64)
    starts = [0, *(np.flatnonzero(ids[:-1] == eos_id) + 1).tolist()]
    labels = ids.copy()
    labels[starts[1:]] = IGNORE_INDEX
    return Row(ids, labels, positions_from_starts(len(ids), starts))


def pack_documents(
    docs: Iterable[Sequence[int] | np.ndarray], seq_len: int, eos_id: int, append_eos: bool = True
) -> Iterator[Row]:
    """Concatenate documents (each closed by eos_id) and cut the stream into rows of seq_len, streaming.

    Memory stays bounded by one row plus one document. The trailing partial row is dropped (as every
    pretraining packer does); its tokens are reported by `count_stream_tokens` users if needed.
    """
    buf = np.empty(0, dtype=np.int64)
    for doc in docs:
        arr = np.asarray(doc, dtype=np.int64)
        if append_eos and (arr.size == 0 or arr[-1] != eos_id):
            arr = np.append(arr, eos_id)
        buf = np.concatenate([buf, arr])
        while buf.size >= seq_len:
            yield row_from_token_block(buf[:seq_len], eos_id)
            buf = buf[seq_len:]


def _row_from_samples(samples: Sequence[TokenizedChat], seq_len: int, pad_id: int) -> Row:
    ids = np.full(seq_len, pad_id, dtype=np.int64)
    labels = np.full(seq_len, IGNORE_INDEX, dtype=np.int64)
    starts, at = [], 0
    for s in samples:
        n = len(s.input_ids)
        ids[at : at + n] = s.input_ids
        labels[at : at + n] = s.labels
        labels[at] = IGNORE_INDEX  # never predict a conversation's first token from the previous one
        starts.append(at)
        at += n
    if at < seq_len:
        starts.append(at)  # padding is a segment of its own
    return Row(ids, labels, positions_from_starts(seq_len, starts))


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bin indices: longest first, each into the fullest bin it still fits (deterministic)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin id)
    for i in order:
        n = lengths[i]
        if n > capacity:
            raise ValueError(f"sample {i} has {n} tokens, more than the row length {capacity}")
        k = bisect.bisect_left(free, (n, -1))
        if k == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - n, len(bins) - 1))
        else:
            remaining, b = free.pop(k)
            bins[b].append(i)
            bisect.insort(free, (remaining - n, b))
    return bins


def minimum_slack_bins(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bin indices: each bin opens with the longest item left, then takes the subset of the remaining items that
    fills its gap most exactly (bounded subset sum over distinct lengths, bitsets as Python ints).

    On GSM8K-like length mixes this reaches the lower bound ceil(total / capacity) where best-fit decreasing
    leaves 2-3% padding; items are whole, never split. Deterministic.
    """
    pool: dict[int, list[int]] = {}
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], -i)):
        if lengths[i] > capacity:
            raise ValueError(f"sample {i} has {lengths[i]} tokens, more than the row length {capacity}")
        pool.setdefault(lengths[i], []).append(i)  # pop() then yields the lowest index of a length
    bins: list[list[int]] = []
    while pool:
        top = max(pool)
        current = [_take(pool, top)]
        gap = capacity - top
        sizes = sorted((n for n in pool if n <= gap), reverse=True)
        reach, history, mask = 1, [], (1 << (gap + 1)) - 1  # bit s set <=> sum s reachable
        for n in sizes:
            history.append(reach)
            for _ in range(min(len(pool[n]), gap // n)):
                grown = (reach | (reach << n)) & mask
                if grown == reach:
                    break
                reach = grown
            if (reach >> gap) & 1:
                break
        total = reach.bit_length() - 1
        for n, before in zip(reversed(sizes[: len(history)]), reversed(history), strict=True):
            while not (before >> total) & 1:  # take copies of n until the rest was reachable before n
                total -= n
                current.append(_take(pool, n))
        bins.append(current)
    return bins


def _take(pool: dict[int, list[int]], n: int) -> int:
    i = pool[n].pop()
    if not pool[n]:
        del pool[n]
    return i


def pack_conversations(samples: Sequence[TokenizedChat], seq_len: int, pad_id: int) -> list[Row]:
    """Whole conversations packed into rows of seq_len, none split: the fewer rows of minimum-slack filling
    and best-fit decreasing (each wins on some length mixes)."""
    lengths = [len(s.input_ids) for s in samples]
    bins = min(minimum_slack_bins(lengths, seq_len), best_fit_decreasing(lengths, seq_len), key=len)
    return [_row_from_samples([samples[i] for i in b], seq_len, pad_id) for b in bins]


def pad_conversations(samples: Sequence[TokenizedChat], pad_id: int) -> list[Row]:
    """One conversation per row, unpadded; `collate_rows` pads a batch to its longest row (for comparison)."""
    return [_row_from_samples([s], len(s.input_ids), pad_id) for s in samples]


def collate_rows(rows: Sequence[Row], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack rows into tensors, padding shorter rows to the longest (padding is its own segment, label -100)."""
    width = max(len(r.input_ids) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    labels = np.full((len(rows), width), IGNORE_INDEX, dtype=np.int64)
    pos = np.zeros((len(rows), width), dtype=np.int64)
    for b, r in enumerate(rows):
        n = len(r.input_ids)
        ids[b, :n], labels[b, :n], pos[b, :n] = r.input_ids, r.labels, r.position_ids
        pos[b, n:] = np.arange(width - n)
    return {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(labels),
        "position_ids": torch.from_numpy(pos),
    }
