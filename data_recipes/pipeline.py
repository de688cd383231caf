"""Build a pretraining corpus from a recipe: `python -m data_recipes.pipeline [recipe.yaml] [key=value ...]`.

Stages: read sources and mark exact duplicates (normalised hash, first copy kept) -> per-document stages in
worker processes (language, heuristics, tree-sitter syntax, decontamination, tokenisation, MinHash), one
chunk at a time -> corpus-wide near dedup (MinHash + LSH) and mixture budgets -> one token shard per chunk (shared/token_shards.py) -> manifest, stage report (JSON + table),
lists of rejected and removed documents.

Resume: chunk results live in `<out>/.work/` and are skipped when present; shards already written are kept.
Every decision depends only on the input order, so a killed and restarted run writes the same bytes as an
uninterrupted one. Memory: at most 2 x workers chunks in flight, plus a hash per distinct document while
reading and a signature per document for near dedup.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_recipes.chunks import (
    ChunkContext,
    chunk_items,
    load_chunk_meta,
    load_chunk_signatures,
    load_chunk_tokens,
    process_chunk,
)
from data_recipes.config import NON_OUTPUT_FIELDS, CorpusRecipe
from data_recipes.decontaminate import build_index
from data_recipes.dedup import MinHasher, exact_key
from data_recipes.progress import Progress
from data_recipes.report import StageReport
from data_recipes.select import select
from data_recipes.sources import Item, estimated_bytes, read_source
from data_recipes.tokenization import end_of_text_id, fast_backend, load_corpus_tokenizer, tokenizer_identity
from shared.config import parse_cli, to_dict
from shared.token_shards import MANIFEST, file_sha256, write_manifest, write_shard

log = logging.getLogger("data_recipes")

DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "code_tiny.yaml"
FORMAT_VERSION = 3  # bump when chunk work files or selection rules change (invalidates resumable work)

_CTX: ChunkContext | None = None  # set in the parent before forking workers, inherited by them


def _run_chunk(args: tuple[int, list[Item]]) -> int:
    assert _CTX is not None
    return process_chunk(_CTX, *args)


def all_items(recipe: CorpusRecipe) -> Iterator[Item]:
    """Every input item in order; with exact dedup on, later copies of a normalised text are marked."""
    first_of: dict[bytes, str] = {}
    for source in recipe.sources:
        for item in read_source(source, recipe.max_file_bytes):
            if recipe.dedup.exact and item.text is not None:
                item.duplicate_of = first_of.setdefault(exact_key(item.text), item.doc_id)
                if item.duplicate_of == item.doc_id:
                    item.duplicate_of = None
            yield item


def fingerprint(recipe: CorpusRecipe, tokenizer_sha: str, index_sha: str) -> str:
    resolved = {k: v for k, v in to_dict(recipe).items() if k not in NON_OUTPUT_FIELDS}
    blob = json.dumps([FORMAT_VERSION, resolved, tokenizer_sha, index_sha], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def claim_work_dir(out: Path, fp: str) -> Path:
    """`<out>/.work`, created or checked to belong to the same recipe (else resuming would mix two builds)."""
    work = out / ".work"
    marker = work / "fingerprint"
    if marker.exists() and marker.read_text() != fp:
        raise SystemExit(f"{out} holds a build of a different recipe or input set: delete it or pick another out_dir")
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(fp)
    return work


def run_chunks(ctx: ChunkContext, workers: int) -> int:
    """Per-document stages over all input, skipping chunks a previous run finished; returns the chunk count."""
    global _CTX
    _CTX = ctx
    recipe = ctx.recipe
    totals = [estimated_bytes(s) for s in recipe.sources]
    progress = Progress("read+filter+tokenise", None if None in totals else sum(t or 0 for t in totals),
                        recipe.log_every_s)  # fmt: skip
    pool = mp.get_context("fork").Pool(workers) if workers > 1 else None
    pending: deque = deque()
    n_chunks = reused = 0
    try:
        for index, items in enumerate(chunk_items(all_items(recipe), recipe.chunk_bytes, recipe.chunk_docs)):
            n_chunks = index + 1
            size = sum(i.n_bytes for i in items)
            if load_chunk_meta(ctx.work, index) is not None:
                progress.update(size, len(items))  # finished by an earlier run
                reused += 1
                continue
            if pool is None:
                process_chunk(ctx, index, items)
            else:
                while len(pending) >= 2 * workers:  # bounded: never more than 2 chunks per worker in memory
                    pending.popleft().get()
                pending.append(pool.apply_async(_run_chunk, ((index, items),)))
            progress.update(size, len(items))
        while pending:
            pending.popleft().get()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    progress.update(0, 0, force=True)
    log.info("chunks: %d, of which %d reused from an earlier run", n_chunks, reused)
    return n_chunks


def write_outputs(out: Path, ctx: ChunkContext, n_chunks: int, identity: dict, fp: str) -> dict:
    recipe, work = ctx.recipe, ctx.work
    metas: list[dict] = []
    for i in range(n_chunks):
        meta = load_chunk_meta(work, i)
        if meta is None:
            raise RuntimeError(f"chunk {i} is missing after the per-document stage")
        metas.append(meta)
    report = StageReport()
    for m in metas:
        report.merge(m["report"])
    docs = [d for m in metas for d in m["docs"]]
    sigs = [load_chunk_signatures(work, i, recipe.dedup.num_perm) for i in range(n_chunks)]
    signatures = np.concatenate(sigs) if sigs else np.zeros((0, recipe.dedup.num_perm), np.uint32)
    selection = select(recipe, docs, [len(m["docs"]) for m in metas], signatures, report)
    shards: list[dict] = []
    tokens_by_lang: dict[str, int] = {}
    tokens_by_source: dict[str, int] = {}
    for i, (meta, keep) in enumerate(zip(metas, selection.keep, strict=True)):
        if not keep.any():
            continue
        entry = write_chunk_shard(out, work, len(shards), i, meta["docs"], keep)
        shards.append(entry)
        for d, k in zip(meta["docs"], keep, strict=True):
            if k:
                tokens_by_lang[d["language"]] = tokens_by_lang.get(d["language"], 0) + d["n_tokens"]
                tokens_by_source[d["source"]] = tokens_by_source.get(d["source"], 0) + d["n_tokens"]
    rejects = [r for m in metas for r in m["rejects"]]
    removed = [r for m in metas for r in m["removed"]] + selection.removed
    write_jsonl(out / "rejected_inputs.jsonl", rejects)
    write_jsonl(out / "removed_documents.jsonl", removed)
    write_jsonl(out / "decontaminated.jsonl", [r for r in removed if r["stage"] == "decontamination"])
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=1, sort_keys=False))
    (out / "report.txt").write_text(report.table() + "\n")
    manifest = {
        "format": "token_shards/1",
        "fingerprint": fp,
        "recipe": recipe.name,
        "recipe_config": {k: v for k, v in to_dict(recipe).items() if k not in NON_OUTPUT_FIELDS},
        "tokenizer": identity,
        "shards": shards,
        "n_tokens": sum(s["n_tokens"] for s in shards),
        "n_documents": sum(s["n_documents"] for s in shards),
        "tokens_by_language": dict(sorted(tokens_by_lang.items())),
        "tokens_by_source": dict(sorted(tokens_by_source.items())),
        "sources": [{"name": s.name, "kind": s.kind, "path": s.path, "hub_name": s.hub_name} for s in recipe.sources],
        "mixture": {"target_tokens": recipe.mixture.target_tokens, "sources": selection.mixture},
        "decontamination": {"benchmarks": ctx.index.loaded, "missing": ctx.index.missing, "ngram": ctx.index.ngram,
                            "n_removed": sum(r["stage"] == "decontamination" for r in removed)},  # fmt: skip
        "n_rejected_inputs": len(rejects),
        "stage_report": report.to_dict(),
    }
    write_manifest(out, manifest)
    return manifest


def write_chunk_shard(out: Path, work: Path, shard_index: int, chunk_index: int, docs: list[dict],
                      keep: np.ndarray) -> dict:  # fmt: skip
    """Shard `shard_index` = the kept documents of one chunk; reused when a previous run already wrote it."""
    bin_name, idx_name = f"shard-{shard_index:05d}.bin", f"shard-{shard_index:05d}.idx"
    docs_path = out / f"shard-{shard_index:05d}.docs.jsonl"
    kept = [d for d, k in zip(docs, keep, strict=True) if k]
    if (out / bin_name).exists() and (out / idx_name).exists() and docs_path.exists():
        offsets = np.fromfile(out / idx_name, dtype="<u8")
        entry = {"index": shard_index, "bin": bin_name, "idx": idx_name, "n_tokens": int(offsets[-1]),
                 "n_documents": len(offsets) - 1, "sha256_bin": file_sha256(out / bin_name),
                 "sha256_idx": file_sha256(out / idx_name)}  # fmt: skip
    else:
        tokens = load_chunk_tokens(work, chunk_index)
        bounds = np.cumsum([0] + [d["n_tokens"] for d in docs])
        arrays = [tokens[bounds[j] : bounds[j + 1]] for j, k in enumerate(keep) if k]
        entry = write_shard(out, shard_index, arrays)
        write_jsonl(docs_path, [{"doc_id": d["doc_id"], "language": d["language"], "n_tokens": d["n_tokens"]}
                                for d in kept])  # fmt: skip
    entry["docs"] = docs_path.name
    entry["sha256_docs"] = file_sha256(docs_path)
    return entry


def write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(path)


def build_corpus(recipe: CorpusRecipe, out_dir: str | Path | None = None, keep_work: bool = False) -> Path:
    """Run the whole recipe into `out_dir` (default: recipe.out_dir); resumes a killed run in the same folder."""
    out = Path(out_dir or recipe.out_dir)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = load_corpus_tokenizer(recipe.tokenizer)
    identity = tokenizer_identity(tokenizer, recipe.tokenizer)
    index = build_index(recipe.decontamination) if recipe.decontamination.enabled else build_index_empty(recipe)
    index_sha = hashlib.sha256(index.hashes.tobytes() + json.dumps(index.names).encode()).hexdigest()
    fp = fingerprint(recipe, identity["sha256"], index_sha)
    if (out / MANIFEST).exists() and not (out / ".work").exists():
        if json.loads((out / MANIFEST).read_text()).get("fingerprint") != fp:
            raise SystemExit(f"{out} holds a finished build of a different recipe or input: delete it to rebuild")
        log.info("%s is complete (manifest present, same recipe); delete it to rebuild", out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    work = claim_work_dir(out, fp)
    d = recipe.dedup
    ctx = ChunkContext(recipe, fast_backend(tokenizer), end_of_text_id(tokenizer), index,
                       MinHasher(d.num_perm, d.shingle_size, d.seed), work)  # fmt: skip
    n_chunks = run_chunks(ctx, recipe.workers)
    manifest = write_outputs(out, ctx, n_chunks, identity, fp)
    log.info("%s: %d shards, %d documents, %d tokens", out, len(manifest["shards"]), manifest["n_documents"],
             manifest["n_tokens"])  # fmt: skip
    if not keep_work:
        shutil.rmtree(work)
    return out


def build_index_empty(recipe: CorpusRecipe):
    from dataclasses import replace

    return build_index(replace(recipe.decontamination, benchmarks=[]))


def build_code_corpus(recipe_path: str | Path | None = None, out_dir: str | Path | None = None,
                      overrides: list[str] | None = None) -> Path:  # fmt: skip
    """For other recipes: build the corpus of `recipe_path` (default: the tiny code recipe) unless present."""
    from shared.config import load_config

    recipe = load_config(CorpusRecipe, recipe_path or DEFAULT_RECIPE, overrides)
    return build_corpus(recipe, out_dir)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    recipe = parse_cli(CorpusRecipe, argv, DEFAULT_RECIPE)
    out = build_corpus(recipe)
    print((out / "report.txt").read_text())
    print(f"shards and manifest in {out}")


if __name__ == "__main__":
    main()
