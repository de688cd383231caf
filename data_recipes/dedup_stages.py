"""Corpus-wide dedup in stages across tasks, so that no task holds more than its share of the corpus.

- exact (tasks = E): task p takes the exact keys whose hash falls in partition p, in input order, and lists
  every later copy with the first copy's global item position: a task holds 1/E of the keys.
- buckets (tasks = B): task r takes the (band, key) buckets whose key is r modulo B; it reads the signatures
  chunk by chunk, keeps only its buckets' entries (band, key, document), sorts them and links every member of
  a bucket to the bucket's first document when their signatures agree on >= threshold of the positions (rows
  are read back from the signature files for the candidates only): 1/B of the entries, temporaries included.
- clusters (1 task): connected components over the links alone (never over all documents); each linked
  document maps to its component's first document.
This makes exactly the decisions of dedup.near_duplicate_clusters over all survivors at once (same edges,
same components, the first document of each kept), tested in tests/data_recipes/test_engine.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from data_recipes.config import DedupConfig
from data_recipes.dedup import _EMPTY, band_keys
from data_recipes.plan import ChunkSpec
from data_recipes.workfiles import load_chunk_arrays, load_chunk_signatures, signature_blocks

log = logging.getLogger("data_recipes")
_BLOCK = 8192  # signature rows turned into band keys at a time


def stage_dir(work: Path, stage: str, tasks: int) -> Path:
    """Outputs of a stage run with `tasks` tasks (a relaunch with another task count never mixes them)."""
    folder = work / f"{stage}-of-{tasks}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def exact_partition(work: Path, plan: list[ChunkSpec], part: int, n_parts: int) -> None:
    """Stage `exact`, task `part`: (later copy, first copy) global item positions of its key partition."""
    first: dict[bytes, int] = {}
    pairs: list[tuple[int, int]] = []
    for spec in plan:
        arrays = load_chunk_arrays(work, spec.index)
        keys, positions = arrays["keys"], arrays["key_pos"]
        mine = np.flatnonzero(keys[:, :8].copy().view("<u8")[:, 0] % np.uint64(n_parts) == part)
        for row in mine.tolist():
            g = spec.first_item + int(positions[row])
            g0 = first.setdefault(keys[row].tobytes(), g)
            if g0 != g:
                pairs.append((g, g0))
    save_array(stage_dir(work, "exact", n_parts) / f"part-{part:05d}.npy", np.asarray(pairs, dtype=np.int64).reshape(-1, 2))


class DupMap:
    """Later copy -> first copy as two sorted int64 arrays: 16 bytes per duplicate, no Python object each."""

    def __init__(self, pairs: np.ndarray):
        pairs = pairs.reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable")
        self.keys, self.values = pairs[order, 0], pairs[order, 1]
        self.firsts = np.unique(self.values)

    @staticmethod
    def _find(array: np.ndarray, key: int) -> int | None:
        i = int(np.searchsorted(array, key))
        return i if i < len(array) and array[i] == key else None

    def get(self, key: int) -> int | None:
        i = self._find(self.keys, key)
        return None if i is None else int(self.values[i])

    def is_first(self, key: int) -> bool:
        """Whether some duplicate points at `key` (its doc_id must be remembered)."""
        return self._find(self.firsts, key) is not None

    def as_dict(self) -> dict[int, int]:
        return dict(zip(self.keys.tolist(), self.values.tolist(), strict=True))


def exact_duplicates(folder: Path) -> DupMap:
    """Global item position of each later copy -> that of its first copy (all partitions)."""
    parts = [np.load(path) for path in sorted(folder.glob("part-*.npy"))]
    return DupMap(np.concatenate(parts) if parts else np.zeros((0, 2), np.int64))


def alive_rows(work: Path, spec: ChunkSpec, duplicates: np.ndarray) -> np.ndarray:
    """Signature rows of a chunk's documents that passed the filters and are not exact duplicates."""
    passed = load_chunk_arrays(work, spec.index)["passed"]
    dup = np.isin(passed + spec.first_item, duplicates)
    return np.flatnonzero(~dup)


def sorted_duplicates(folder: Path) -> np.ndarray:
    parts = [np.load(p)[:, 0] for p in sorted(folder.glob("part-*.npy"))]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def bucket_edges(work: Path, plan: list[ChunkSpec], dedup: DedupConfig, exact_dir: Path, rank: int,
                 world_size: int) -> None:  # fmt: skip
    """Stage `buckets`, task `rank`: verified links (first, member) among the (band, key) buckets whose key
    falls in its hash partition, as global document indices."""
    duplicates = sorted_duplicates(exact_dir) if dedup.exact else np.zeros(0, np.int64)
    bands, keys, docs, starts, rows_of = [], [], [], [0], []
    for spec in plan:
        rows = alive_rows(work, spec, duplicates)
        # Block by block: neither the chunk's signatures nor band_keys' temporaries are ever whole in memory.
        for block, sigs in signature_blocks(work, spec.index, dedup.num_perm, rows, _BLOCK):
            block_keys = band_keys(sigs, dedup.bands)
            doc, band = np.nonzero(block_keys % np.uint64(world_size) == np.uint64(rank))
            bands.append(band.astype(np.uint8))
            keys.append(block_keys[doc, band])
            docs.append(doc + starts[-1] + block)
        rows_of.append(rows)
        starts.append(starts[-1] + len(rows))
    band_of = np.concatenate(bands) if bands else np.zeros(0, np.uint8)
    key_of = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    doc_of = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    del bands, keys, docs
    # Per band, documents sorted by key then index: each member is linked to its group's first document.
    order = np.lexsort((doc_of, key_of, band_of))
    band_of, key_of, doc_of = band_of[order], key_of[order], doc_of[order]
    del order
    new_group = np.ones(len(doc_of), dtype=bool)
    new_group[1:] = (key_of[1:] != key_of[:-1]) | (band_of[1:] != band_of[:-1])
    first = doc_of[np.maximum.accumulate(np.where(new_group, np.arange(len(doc_of)), 0))]
    a, b = first[~new_group], doc_of[~new_group]
    keep = verify(work, plan, dedup, a, b, np.asarray(starts), rows_of)
    folder = stage_dir(work, "buckets", world_size)
    save_array(folder / f"part-{rank:05d}.npy", np.stack([a[keep], b[keep]], axis=1).astype(np.int64))


def verify(work: Path, plan: list[ChunkSpec], dedup: DedupConfig, a: np.ndarray, b: np.ndarray,
           starts: np.ndarray, rows_of: list[np.ndarray]) -> np.ndarray:  # fmt: skip
    """Which candidate pairs agree on >= threshold of the signature (neither signature empty)."""
    needed = np.unique(np.concatenate([a, b]))
    sig = np.zeros((len(needed), dedup.num_perm), dtype=np.uint32)
    chunk_of = np.searchsorted(starts, needed, side="right") - 1
    for c in np.unique(chunk_of).tolist():
        at = np.flatnonzero(chunk_of == c)
        rows = rows_of[c][needed[at] - starts[c]]
        sig[at] = load_chunk_signatures(work, plan[c].index, dedup.num_perm)[rows]
    sa, sb = sig[np.searchsorted(needed, a)], sig[np.searchsorted(needed, b)]
    empty = lambda s: (s == _EMPTY).all(axis=1)  # noqa: E731
    return ((sa == sb).mean(axis=1) >= dedup.threshold) & ~empty(sa) & ~empty(sb)


def cluster_links(edges_dir: Path) -> DupMap:
    """Stage `clusters` (one task): each linked document -> its component's first document."""
    parts = [np.load(p) for p in sorted(edges_dir.glob("part-*.npy"))]
    edges = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
    nodes, inverse = np.unique(edges.reshape(-1), return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    m = len(nodes)
    graph = coo_matrix((np.ones(len(edges), np.int8), (inverse[:, 0], inverse[:, 1])), shape=(m, m))
    _, component = connected_components(graph, directed=False) if m else (0, np.zeros(0, np.int64))
    first = np.full(component.max() + 1 if m else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, component, nodes)
    rep = first[component] if m else nodes
    moved = nodes != rep
    log.info("near dedup: %d links, %d documents in clusters, %d removed", len(edges), m, int(moved.sum()))
    return DupMap(np.stack([nodes[moved], rep[moved]], axis=1))


def save_array(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
