"""Datasets of packed rows and the resumable, distributed sampler that feeds the trainer.

Datasets are indexable: `len(ds)` rows, `ds[i]` -> `Row`.
- `SFTRows`: chat JSONL packed in memory (`sft_dataset`).
- `PretrainBlocks`: row i is tokens [i*seq_len, (i+1)*seq_len) of the concatenated shard stream, read from
  the memory-mapped shards on demand (`pretrain_dataset`); documents already end with <|endoftext|>.

`ResumableSampler` turns a seed into an endless stream of sample indices: epoch e is a permutation drawn from
seed + e, epochs follow each other, and the global batch of optimizer step s is stream positions
[s*G, (s+1)*G) with G = micro_batch * grad_accum * world_size. Its only state is the number of samples
consumed, so a resume (even with another world size) neither repeats nor skips a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from shared.chat import IGNORE_INDEX
from shared.chat_dataset import DataReport, build_sft_rows
from shared.config import ChatDataConfig
from shared.packing import Row, row_from_token_block
from shared.token_shards import TokenShards


class RowDataset(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Row: ...


class SFTRows:
    """Rows held in memory (SFT conversations are small next to pretraining corpora)."""

    def __init__(self, rows: Sequence[Row], report: DataReport | None = None):
        if not rows:
            raise ValueError("SFTRows needs at least one row")
        self.rows = list(rows)
        self.report = report

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Row:
        return self.rows[index]


def sft_dataset(files: Sequence[str | Path], tokenizer, data_cfg: ChatDataConfig, seq_len: int) -> SFTRows:
    """Chat JSONL -> packed (or padded) rows with the loss masked as configured; `.report` says what was kept."""
    rows, report = build_sft_rows(files, tokenizer, data_cfg, seq_len)
    return SFTRows(rows, report)


class PretrainBlocks:
    """Fixed-length blocks of the concatenated token stream of a shard folder (the trailing partial block is dropped)."""

    def __init__(self, shards: TokenShards, seq_len: int, eos_id: int):
        self.shards = shards
        self.seq_len = seq_len
        self.eos_id = eos_id
        sizes = np.array([s.tokens.size for s in shards.shards], dtype=np.int64)
        self.shard_starts = np.concatenate([[0], np.cumsum(sizes)])
        self.n_blocks = int(self.shard_starts[-1] // seq_len)
        if self.n_blocks == 0:
            raise ValueError(f"{shards.folder}: {int(self.shard_starts[-1])} tokens, fewer than one row of {seq_len}")
        self.report = {"tokens": int(self.shard_starts[-1]), "rows": self.n_blocks, "seq_len": seq_len,
                       "dropped_tail_tokens": int(self.shard_starts[-1] - self.n_blocks * seq_len)}

    def __len__(self) -> int:
        return self.n_blocks

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the stream, crossing shard boundaries when needed."""
        parts = []
        k = int(np.searchsorted(self.shard_starts, start, side="right") - 1)
        while start < stop:
            shard_begin = int(self.shard_starts[k])
            shard = self.shards.shards[k].tokens
            take = min(stop, shard_begin + shard.size) - start
            parts.append(np.asarray(shard[start - shard_begin : start - shard_begin + take]))
            start += take
            k += 1
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def __getitem__(self, index: int) -> Row:
        if not 0 <= index < self.n_blocks:
            raise IndexError(index)
        start = index * self.seq_len
        return row_from_token_block(self.tokens(start, start + self.seq_len), self.eos_id)


def pretrain_dataset(shard_dir: str | Path, seq_len: int, eos_id: int, verify: bool = False) -> PretrainBlocks:
    return PretrainBlocks(TokenShards(shard_dir, verify=verify), seq_len, eos_id)


def real_tokens(row: Row, pad_id: int) -> int:
    """Tokens of a row that are not padding (padding is the trailing run of pad ids that carry no label)."""
    is_pad = (row.input_ids == pad_id) & (row.labels == IGNORE_INDEX)
    n = len(is_pad)
    if n == 0 or not is_pad[-1]:
        return n
    not_pad = np.flatnonzero(~is_pad)
    return int(not_pad[-1] + 1) if not_pad.size else 0


@dataclass
class SamplerLayout:
    micro_batch: int
    grad_accum: int
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size


class ResumableSampler:
    """Deterministic, seeded, distributed-aware stream of indices with a one-number cursor."""

    def __init__(self, n_samples: int, seed: int, layout: SamplerLayout, rank: int):
        if n_samples < 1:
            raise ValueError("the dataset is empty")
        self.n = n_samples
        self.seed = seed
        self.layout = layout
        self.rank = rank
        self.consumed = 0  # global samples already handed out (all ranks)
        self._perm_epoch = -1
        self._perm = np.empty(0, dtype=np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng(self.seed + epoch).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def index_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        return int(self._permutation(epoch)[offset])

    @property
    def epoch(self) -> float:
        return self.consumed / self.n

    def next_step(self) -> list[list[int]]:
        """This rank's micro-batches (grad_accum lists of micro_batch indices) for the next optimizer step."""
        lay = self.layout
        base = self.consumed
        out = []
        for m in range(lay.grad_accum):
            first = base + (m * lay.world_size + self.rank) * lay.micro_batch
            out.append([self.index_at(p) for p in range(first, first + lay.micro_batch)])
        self.consumed += lay.global_batch
        return out

    def state_dict(self) -> dict:
        return {"consumed": self.consumed, "seed": self.seed, "n_samples": self.n}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed or state["n_samples"] != self.n:
            raise ValueError(
                f"data cursor was saved for seed={state['seed']} n_samples={state['n_samples']}, "
                f"this run has seed={self.seed} n_samples={self.n}: the data or seed changed since the checkpoint"
            )
        self.consumed = int(state["consumed"])
