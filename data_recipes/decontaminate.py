"""Decontamination: drop training text that shares an n-gram (13 tokens by default) with an evaluation set.

Benchmark texts come from local files (JSONL, JSONL.gz, JSON array) or hub datasets; their n-gram hashes
(ngrams.py, the same tokens as near-dedup) form a sorted array, and a document is contaminated when any of
its n-grams is found in it (binary search, vectorised).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_recipes.config import BenchmarkConfig, DecontaminationConfig
from data_recipes.ngrams import ngram_hashes, token_hashes

log = logging.getLogger(__name__)


class BenchmarkUnavailable(RuntimeError):
    pass


def read_records(path: Path) -> list[dict]:
    """Rows of a JSONL, JSONL.gz or JSON-array file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return list(json.loads(text))
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise BenchmarkUnavailable(f"{path}:{lineno}: malformed JSON line: {e}") from e
    return rows


def load_benchmark_texts(spec: BenchmarkConfig, data_dir: str, allow_hub: bool) -> list[str]:
    """One text per benchmark row: its `fields` joined by newlines."""
    rows: list[dict] | None = None
    if spec.path:
        path = Path(spec.path)
        if not path.is_absolute() and data_dir:
            path = Path(data_dir) / path
        if path.exists():
            rows = read_records(path)
    if rows is None and spec.hub_name and allow_hub:
        try:
            import datasets

            rows = list(datasets.load_dataset(spec.hub_name, spec.hub_config, split=spec.split))
        except Exception as e:  # offline, unknown name, gated: reported by the caller
            raise BenchmarkUnavailable(f"{spec.name}: hub {spec.hub_name}: {type(e).__name__}: {e}") from e
    if rows is None:
        raise BenchmarkUnavailable(f"{spec.name}: no file at {spec.path!r} (data_dir={data_dir!r}) and no hub access")
    if spec.task_id_range:
        lo, hi = spec.task_id_range
        rows = [r for r in rows if lo <= int(r["task_id"]) <= hi]
    texts = []
    for row in rows:
        parts = [str(row[f]) for f in spec.fields if row.get(f)]
        if parts:
            texts.append("\n".join(parts))
    return texts


_FILTER_BITS = 27  # 16 MB bitmap in front of the sorted array: most clean n-grams never reach the search


def membership_filter(hashes: np.ndarray) -> np.ndarray:
    bits = np.zeros(1 << (_FILTER_BITS - 3), dtype=np.uint8)
    slots = (hashes >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
    np.bitwise_or.at(bits, slots >> 3, (1 << (slots & 7)).astype(np.uint8))
    return bits


@dataclass
class ContaminationIndex:
    ngram: int
    hashes: np.ndarray  # sorted unique uint64
    owner: np.ndarray  # index into `names` of the benchmark that first contributed each hash
    names: list[str]
    loaded: dict[str, int] = field(default_factory=dict)  # benchmark -> number of texts
    missing: dict[str, str] = field(default_factory=dict)  # benchmark -> why it is absent
    bitmap: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.bitmap is None and len(self.hashes):
            self.bitmap = membership_filter(self.hashes)

    def matches(self, text: str, tokens: np.ndarray | None = None) -> tuple[str, int] | None:
        """(benchmark name, number of shared n-grams) of the first benchmark hit, or None when clean.

        `tokens`: token_hashes(text) when the caller has them already."""
        if len(self.hashes) == 0:
            return None
        grams = ngram_hashes(token_hashes(text) if tokens is None else tokens, self.ngram)
        if len(grams) == 0 or self.bitmap is None:
            return None
        slots = (grams >> np.uint64(64 - _FILTER_BITS)).astype(np.int64)
        grams = grams[(self.bitmap[slots >> 3] >> (slots & 7).astype(np.uint8)) & 1 == 1]
        if len(grams) == 0:
            return None
        pos = np.minimum(np.searchsorted(self.hashes, grams), len(self.hashes) - 1)
        hit = self.hashes[pos] == grams
        if not hit.any():
            return None
        return self.names[int(self.owner[pos[hit]].min())], int(hit.sum())


def build_index(cfg: DecontaminationConfig) -> ContaminationIndex:
    data_dir = cfg.data_dir or os.environ.get("QS_EVAL_DATA", "")
    names: list[str] = []
    all_hashes: list[np.ndarray] = []
    all_owner: list[np.ndarray] = []
    loaded: dict[str, int] = {}
    missing: dict[str, str] = {}
    for spec in cfg.benchmarks:
        try:
            texts = load_benchmark_texts(spec, data_dir, cfg.allow_hub)
        except BenchmarkUnavailable as e:
            if cfg.require_all:
                raise
            log.warning("decontamination: benchmark %s unavailable (%s)", spec.name, e)
            missing[spec.name] = str(e)
            continue
        owner = len(names)
        names.append(spec.name)
        loaded[spec.name] = len(texts)
        for text in texts:
            grams = ngram_hashes(token_hashes(text), cfg.ngram)
            all_hashes.append(grams)
            all_owner.append(np.full(len(grams), owner, dtype=np.int32))
    if all_hashes:
        hashes = np.concatenate(all_hashes)
        owners = np.concatenate(all_owner)
        order = np.lexsort((owners, hashes))
        hashes, owners = hashes[order], owners[order]
        first = np.concatenate([[True], hashes[1:] != hashes[:-1]])
        hashes, owners = hashes[first], owners[first]
    else:
        hashes, owners = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32)
    return ContaminationIndex(cfg.ngram, hashes, owners, names, loaded, missing)
