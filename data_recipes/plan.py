"""The work plan of a corpus build: the input cut into chunks before any task starts.

A chunk is a run of consecutive input items (parts: [source, first item, count], a chunk may span the end of
one source and the start of the next), cut by the same rule as always (chunk_bytes / chunk_docs), so the
chunks, and with them the shards, do not depend on the number of tasks. Planning a folder source costs one `stat` per file (no file is read); other sources
are read once, without keeping their text. Task `rank` of `world_size` processes chunks rank, rank +
world_size, ... and re-reads only its own chunks: a folder source skips the files before them unopened, a JSONL
source without a read budget counts the lines before them unparsed; parquet and hub sources are read through.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from data_recipes.config import CorpusRecipe
from data_recipes.sources import Item, read_jsonl, read_source, read_tree

PLAN = "plan.json"


@dataclass(frozen=True)
class ChunkSpec:
    index: int
    parts: list[list[int]]  # [source index, first item in that source's stream, item count]
    count: int
    n_bytes: int
    first_item: int  # global position of its first item over all sources (for exact dedup order)


def source_items(recipe: CorpusRecipe, source: int, skip: int = 0) -> Iterator[Item]:
    """The items of one source from position `skip` on; skipped folder files are stat-ed, never opened."""
    cfg = recipe.sources[source]
    if cfg.kind == "tree":  # the first `skip` come as unread placeholders
        return itertools.islice(read_tree(cfg, recipe.max_file_bytes, skip=skip), skip, None)
    if cfg.kind == "jsonl" and not cfg.max_bytes:  # lines counted, not parsed (a read budget needs the sizes)
        return itertools.islice(read_jsonl(cfg, recipe.max_file_bytes, skip=skip), skip, None)
    return itertools.islice(read_source(cfg, recipe.max_file_bytes), skip, None)


def plan_chunks(recipe: CorpusRecipe) -> list[ChunkSpec]:
    """Chunks in input order: a chunk closes once it holds chunk_docs items or chunk_bytes bytes."""
    chunks: list[ChunkSpec] = []
    parts: list[list[int]] = []
    count = size = first_item = 0
    for s, cfg in enumerate(recipe.sources):
        # A folder source is planned from file sizes alone (skip=-1: no file is opened).
        items = read_tree(cfg, recipe.max_file_bytes, skip=-1) if cfg.kind == "tree" else source_items(recipe, s)
        position = 0
        for item in items:
            if not parts or parts[-1][0] != s:
                parts.append([s, position, 0])
            parts[-1][2] += 1
            position += 1
            count += 1
            size += item.n_bytes
            if count >= recipe.chunk_docs or size >= recipe.chunk_bytes:
                chunks.append(ChunkSpec(len(chunks), parts, count, size, first_item))
                first_item += count
                parts, count, size = [], 0, 0
    if count:
        chunks.append(ChunkSpec(len(chunks), parts, count, size, first_item))
    return chunks


def chunk_items(recipe: CorpusRecipe, spec: ChunkSpec) -> list[Item]:
    items = [i for s, start, n in spec.parts for i in itertools.islice(source_items(recipe, s, start), n)]
    if len(items) != spec.count:
        raise RuntimeError(f"chunk {spec.index}: the input changed since planning ({len(items)} items read, "
                           f"{spec.count} planned): delete the build folder and start again")
    return items


def save_plan(work: Path, chunks: list[ChunkSpec]) -> None:
    tmp = work / (PLAN + ".tmp")
    tmp.write_text(json.dumps([asdict(c) for c in chunks]))
    tmp.replace(work / PLAN)


def load_plan(work: Path) -> list[ChunkSpec]:
    return [ChunkSpec(**c) for c in json.loads((work / PLAN).read_text())]
