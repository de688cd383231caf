"""Per-document stages on one chunk of input, run in worker processes: language, heuristics, syntax,
decontamination, tokenisation and the MinHash signature. (Exact duplicates were marked by the parent while
reading, in input order, so their expensive stages are skipped.)

A chunk is a run of consecutive input items. Its results go to `work/chunk-NNNNN.{bin,sig,json}`; the JSON
(document metadata, rejects, the chunk's stage report) is renamed into place last, so its presence means the
chunk is complete and a resumed run skips it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_recipes.config import CorpusRecipe
from data_recipes.decontaminate import ContaminationIndex
from data_recipes.dedup import MinHasher
from data_recipes.filters import heuristic_rejection
from data_recipes.languages import detect_language
from data_recipes.ngrams import token_hashes
from data_recipes.report import StageReport
from data_recipes.sources import Item
from data_recipes.syntax import has_grammar, is_valid_syntax


def chunk_items(items: Iterable[Item], max_bytes: int, max_docs: int) -> Iterator[list[Item]]:
    """Consecutive items grouped until a chunk holds max_docs items or max_bytes raw bytes."""
    chunk: list[Item] = []
    size = 0
    for item in items:
        chunk.append(item)
        size += item.n_bytes
        if len(chunk) >= max_docs or size >= max_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def chunk_paths(work: Path, index: int) -> tuple[Path, Path, Path]:
    stem = work / f"chunk-{index:05d}"
    return stem.with_suffix(".bin"), stem.with_suffix(".sig"), stem.with_suffix(".json")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")  # unique: a stray process never shares a temp file
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


@dataclass
class ChunkContext:
    """What every worker needs; built once in the parent and inherited by the forked workers."""

    recipe: CorpusRecipe
    tokenizer: Any  # a `tokenizers.Tokenizer` (the fast backend)
    eos_id: int
    index: ContaminationIndex
    minhasher: MinHasher
    work: Path


def document_rejection(ctx: ChunkContext, item: Item, lang: str, tokens: np.ndarray,
                       report: StageReport) -> tuple[str, str] | None:  # fmt: skip
    """Run the per-document filters in order; (stage, reason) of the first that removes it, else None."""
    recipe, text = ctx.recipe, item.text or ""
    checks = [("language", lambda: None if not recipe.languages or lang in recipe.languages else "not_selected")]
    if recipe.heuristics.enabled:
        checks.append(("heuristics", lambda: heuristic_rejection(text, lang, recipe.heuristics)))
    syntax_checked = recipe.syntax.enabled and lang in recipe.syntax.languages and has_grammar(lang)
    if recipe.syntax.enabled:
        checks.append(("syntax", lambda: _syntax_reason(recipe.syntax.languages, lang, text)))
    if recipe.decontamination.enabled:
        checks.append(("decontamination", lambda: _contamination_reason(ctx.index, text, tokens)))
    for stage, check in checks:
        reason = check()
        note = "not_checked" if stage == "syntax" and not syntax_checked else None
        report.add(stage, item.source, lang, item.n_bytes, reason, note)
        if reason is not None:
            return stage, reason
    return None


def _syntax_reason(languages: list[str], lang: str, text: str) -> str | None:
    if lang not in languages:
        return None
    return "syntax_error" if is_valid_syntax(lang, text) is False else None


def _contamination_reason(index: ContaminationIndex, text: str, tokens: np.ndarray) -> str | None:
    hit = index.matches(text, tokens)
    return None if hit is None else f"overlap:{hit[0]}"


def process_chunk(ctx: ChunkContext, chunk_index: int, items: list[Item]) -> int:
    """All per-document stages for one chunk; writes its work files and returns the chunk index."""
    report = StageReport()
    docs: list[dict] = []
    texts: list[str] = []
    rejects: list[dict] = []
    removed: list[dict] = []
    signatures: list[np.ndarray] = []
    for item in items:
        lang = detect_language(item.path, item.text or "", item.declared_language)
        report.add("read", item.source, lang, item.n_bytes, item.reason)
        if item.reason is not None:
            rejects.append({"doc_id": item.doc_id, "language": lang, "reason": item.reason})
            continue
        if ctx.recipe.dedup.exact:
            report.add("exact_dedup", item.source, lang, item.n_bytes, item.duplicate_of and "exact_duplicate")
            if item.duplicate_of is not None:
                removed.append({"doc_id": item.doc_id, "language": lang, "stage": "exact_dedup",
                                "reason": "exact_duplicate", "duplicate_of": item.duplicate_of})  # fmt: skip
                continue
        tokens = token_hashes(item.text or "")  # shared by decontamination and MinHash
        try:
            verdict = document_rejection(ctx, item, lang, tokens, report)
        except Exception as e:  # a document that crashes a filter is removed and reported, never fatal
            verdict = ("error", f"{type(e).__name__}")
            report.add("error", item.source, lang, item.n_bytes, verdict[1])
        if verdict is not None:
            removed.append({"doc_id": item.doc_id, "language": lang, "stage": verdict[0], "reason": verdict[1]})
            continue
        docs.append({"doc_id": item.doc_id, "source": item.source, "language": lang, "n_bytes": item.n_bytes})
        texts.append(item.text or "")
        signatures.append(ctx.minhasher.signature(item.text or "", tokens))
    # encode_batch_fast skips character offsets, which shards do not need: ~2x faster.
    encode = getattr(ctx.tokenizer, "encode_batch_fast", ctx.tokenizer.encode_batch)
    encodings = encode(texts, add_special_tokens=False) if texts else []
    token_arrays = [np.append(np.asarray(e.ids, dtype=np.uint32), np.uint32(ctx.eos_id)) for e in encodings]
    for doc, tokens in zip(docs, token_arrays, strict=True):
        doc["n_tokens"] = int(tokens.size)
    bin_path, sig_path, meta_path = chunk_paths(ctx.work, chunk_index)
    tokens = np.concatenate(token_arrays) if token_arrays else np.zeros(0, dtype=np.uint32)
    sigs = np.stack(signatures) if signatures else np.zeros((0, ctx.minhasher.num_perm), dtype=np.uint32)
    _atomic_write(bin_path, tokens.astype("<u4").tobytes())
    _atomic_write(sig_path, sigs.astype("<u4").tobytes())
    meta = {"docs": docs, "rejects": rejects, "removed": removed, "report": report.to_dict()}
    _atomic_write(meta_path, json.dumps(meta, sort_keys=True).encode())
    return chunk_index


def load_chunk_meta(work: Path, index: int) -> dict | None:
    meta_path = chunk_paths(work, index)[2]
    return json.loads(meta_path.read_text()) if meta_path.exists() else None


def load_chunk_signatures(work: Path, index: int, num_perm: int) -> np.ndarray:
    return np.fromfile(chunk_paths(work, index)[1], dtype="<u4").reshape(-1, num_perm)


def load_chunk_tokens(work: Path, index: int) -> np.ndarray:
    return np.fromfile(chunk_paths(work, index)[0], dtype="<u4")
