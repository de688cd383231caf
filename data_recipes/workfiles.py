"""The work files of one chunk (`<out>/.work/chunk-NNNNN.*`), written by the documents stage and read by the
later ones. Kept free of the filters' imports (tree-sitter, tokenizers): a dedup task stays small."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def chunk_paths(work: Path, index: int) -> tuple[Path, Path, Path, Path]:
    stem = work / f"chunk-{index:05d}"
    return stem.with_suffix(".bin"), stem.with_suffix(".sig"), stem.with_suffix(".npz"), stem.with_suffix(".json")


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")  # unique: a stray process never shares a temp file
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_chunk_meta(work: Path, index: int) -> dict | None:
    meta_path = chunk_paths(work, index)[3]
    return json.loads(meta_path.read_text()) if meta_path.exists() else None


def signature_blocks(work: Path, index: int, num_perm: int, rows: np.ndarray, block: int):
    """(first position in `rows`, signatures of rows[i : i + block]) read block by block from the file (rows
    sorted): never the whole chunk in memory."""
    path = chunk_paths(work, index)[1]
    for i in range(0, len(rows), block):
        wanted = rows[i : i + block]
        first, last = int(wanted[0]), int(wanted[-1]) + 1
        data = np.fromfile(path, dtype="<u4", count=(last - first) * num_perm, offset=first * num_perm * 4)
        yield i, data.reshape(-1, num_perm)[wanted - first]


def load_chunk_signatures(work: Path, index: int, num_perm: int) -> np.ndarray:
    return np.fromfile(chunk_paths(work, index)[1], dtype="<u4").reshape(-1, num_perm)


def load_chunk_arrays(work: Path, index: int) -> dict[str, np.ndarray]:
    """keys (readable items' exact keys), key_pos (their positions), passed (positions of filter survivors)."""
    with np.load(chunk_paths(work, index)[2]) as data:
        return {name: data[name] for name in data.files}


def load_chunk_tokens(work: Path, index: int) -> np.ndarray:
    return np.fromfile(chunk_paths(work, index)[0], dtype="<u4")
