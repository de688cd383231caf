"""The on-disk format of pretraining token shards: what data_recipes writes and the trainer memory-maps.

A shard folder holds `manifest.json` and, per shard, `shard-NNNNN.bin` (flat little-endian uint32 token ids,
every document followed by the end-of-text id) and `shard-NNNNN.idx` (little-endian uint64 offsets into
the .bin, one per document start plus the final length, so document i is tokens[idx[i]:idx[i+1]], its trailing end-of-text id included).
The manifest records the tokenizer identity, per-shard token and document counts and sha256 checksums;
the rest of it (sources, per-language counts, stage reports) is the writer's business.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKEN_DTYPE = np.dtype("<u4")
OFFSET_DTYPE = np.dtype("<u8")
MANIFEST = "manifest.json"


def shard_paths(folder: Path, index: int) -> tuple[Path, Path]:
    return folder / f"shard-{index:05d}.bin", folder / f"shard-{index:05d}.idx"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_shard(folder: Path, index: int, docs: list[list[int]] | list[np.ndarray]) -> dict:
    """Write one shard atomically (temp files renamed into place) and return its manifest entry."""
    folder.mkdir(parents=True, exist_ok=True)
    bin_path, idx_path = shard_paths(folder, index)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    offsets = np.zeros(len(docs) + 1, dtype=OFFSET_DTYPE)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.concatenate([np.asarray(d, dtype=TOKEN_DTYPE) for d in docs]) if docs else np.zeros(0, TOKEN_DTYPE)
    for path, array in ((bin_path, tokens), (idx_path, offsets)):
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    return {
        "index": index,
        "bin": bin_path.name,
        "idx": idx_path.name,
        "n_tokens": int(tokens.size),
        "n_documents": len(docs),
        "sha256_bin": file_sha256(bin_path),
        "sha256_idx": file_sha256(idx_path),
    }


def write_manifest(folder: Path, manifest: dict) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.replace(folder / MANIFEST)


@dataclass
class Shard:
    tokens: np.ndarray  # memory-mapped uint32
    offsets: np.ndarray  # memory-mapped uint64

    @property
    def n_documents(self) -> int:
        return len(self.offsets) - 1

    def document(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]


class TokenShards:
    """Read-only view of a shard folder; tokens stay on disk (np.memmap)."""

    def __init__(self, folder: str | Path, verify: bool = False):
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{self.folder}: no {MANIFEST}; build the shards first (just code-data)")
        self.manifest = json.loads(path.read_text())
        self.shards: list[Shard] = []
        for entry in self.manifest["shards"]:
            bin_path, idx_path = self.folder / entry["bin"], self.folder / entry["idx"]
            if verify:
                for p, key in ((bin_path, "sha256_bin"), (idx_path, "sha256_idx")):
                    if file_sha256(p) != entry[key]:
                        raise ValueError(f"{p}: checksum mismatch with {MANIFEST}")
            tokens = np.memmap(bin_path, dtype=TOKEN_DTYPE, mode="r") if entry["n_tokens"] else np.zeros(0, TOKEN_DTYPE)
            offsets = np.fromfile(idx_path, dtype=OFFSET_DTYPE)
            self.shards.append(Shard(tokens, offsets))

    @property
    def n_tokens(self) -> int:
        return sum(int(s.tokens.size) for s in self.shards)

    @property
    def n_documents(self) -> int:
        return sum(s.n_documents for s in self.shards)

    def documents(self) -> Iterator[np.ndarray]:
        for shard in self.shards:
            for i in range(shard.n_documents):
                yield shard.document(i)

    def token_stream(self) -> Iterator[np.ndarray]:
        """Each shard's tokens in order (documents already end with the end-of-text id)."""
        for shard in self.shards:
            yield shard.tokens
