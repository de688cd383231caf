"""Per-document stages on one chunk of input, run by the tasks of the `documents` stage: language,
heuristics, syntax, decontamination, tokenisation, the exact-dedup key and the MinHash signature.

Whether a document is an exact duplicate is a corpus-wide question answered later (stage `exact`), so every
readable item runs the stages here and its trail of stage verdicts is recorded; the final stage replays the
trails in input order, skipping the stages of exact duplicates, which gives the same report and lists as
deciding exact duplicates first.

Work files `work/chunk-NNNNN.{bin,sig,npz,json}`: tokens and signatures of the documents that passed the
filters, exact keys of the readable items, and the per-item trails. The JSON is renamed into place last, so its
presence means the chunk is complete and a relaunched task skips it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_recipes.config import CorpusRecipe
from data_recipes.decontaminate import ContaminationIndex
from data_recipes.dedup import MinHasher, exact_key
from data_recipes.filters import heuristic_rejection
from data_recipes.languages import detect_language
from data_recipes.ngrams import token_hashes
from data_recipes.report import StageReport
from data_recipes.sources import Item
from data_recipes.syntax import has_grammar, is_valid_syntax
from data_recipes.workfiles import atomic_write, chunk_paths


@dataclass
class ChunkContext:
    """What every task needs; built once per task."""

    recipe: CorpusRecipe
    tokenizer: Any  # a `tokenizers.Tokenizer` (the fast backend)
    eos_id: int
    index: ContaminationIndex
    minhasher: MinHasher
    work: Path
    # Exact keys this task has seen: a later copy within the task is surely a duplicate (its first copy is
    # at or before the copy seen), so its expensive stages are skipped; copies across tasks run them.
    seen: set[bytes] = field(default_factory=set)


def document_rejection(ctx: ChunkContext, item: Item, lang: str, tokens: np.ndarray,
                       report: StageReport) -> tuple[str, str] | None:  # fmt: skip
    """Run the per-document filters in order; (stage, reason) of the first that removes it, else None.
    `report` here is a Trail: it records the calls for the final stage to replay."""
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


class Trail(StageReport):
    """Records report.add calls (stage, reason, note) instead of counting them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[list] = []

    def add(self, stage: str, source: str, language: str, n_bytes: int, removed: str | None,
            note: str | None = None) -> None:  # fmt: skip
        self.events.append([stage, removed, note])


def process_chunk(ctx: ChunkContext, chunk_index: int, items: list[Item]) -> int:
    """All per-document stages for one chunk; writes its work files and returns the chunk index."""
    records: list[dict] = []
    texts: list[str] = []
    passed: list[int] = []
    keys: list[bytes] = []
    key_pos: list[int] = []
    signatures: list[np.ndarray] = []
    for pos, item in enumerate(items):
        lang = detect_language(item.path, item.text or "", item.declared_language)
        record: dict = {"doc_id": item.doc_id, "source": item.source, "language": lang, "n_bytes": item.n_bytes,
                        "reason": item.reason}  # fmt: skip
        records.append(record)
        if item.reason is not None:
            continue
        key = exact_key(item.text or "")
        keys.append(key)
        key_pos.append(pos)
        if ctx.recipe.dedup.exact and key in ctx.seen:
            record["events"], record["verdict"] = None, None  # replayed as an exact duplicate
            continue
        ctx.seen.add(key)
        tokens = token_hashes(item.text or "")  # shared by decontamination and MinHash
        trail = Trail()
        try:
            verdict = document_rejection(ctx, item, lang, tokens, trail)
        except Exception as e:  # a document that crashes a filter is removed and reported, never fatal
            verdict = ("error", f"{type(e).__name__}")
            trail.add("error", item.source, lang, item.n_bytes, verdict[1])
        record["events"], record["verdict"] = trail.events, verdict and list(verdict)
        if verdict is None:
            passed.append(pos)
            texts.append(item.text or "")
            signatures.append(ctx.minhasher.signature(item.text or "", tokens))
    # encode_batch_fast skips character offsets, which shards do not need: ~2x faster.
    encode = getattr(ctx.tokenizer, "encode_batch_fast", ctx.tokenizer.encode_batch)
    encodings = encode(texts, add_special_tokens=False) if texts else []
    token_arrays = [np.append(np.asarray(e.ids, dtype=np.uint32), np.uint32(ctx.eos_id)) for e in encodings]
    for pos, tokens in zip(passed, token_arrays, strict=True):
        records[pos]["n_tokens"] = int(tokens.size)
    bin_path, sig_path, npz_path, meta_path = chunk_paths(ctx.work, chunk_index)
    tokens = np.concatenate(token_arrays) if token_arrays else np.zeros(0, dtype=np.uint32)
    sigs = np.stack(signatures) if signatures else np.zeros((0, ctx.minhasher.num_perm), dtype=np.uint32)
    atomic_write(bin_path, tokens.astype("<u4").tobytes())
    atomic_write(sig_path, sigs.astype("<u4").tobytes())
    arrays = io.BytesIO()
    np.savez(arrays, keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, 16),
             key_pos=np.asarray(key_pos, dtype=np.int64), passed=np.asarray(passed, dtype=np.int64))  # fmt: skip
    atomic_write(npz_path, arrays.getvalue())
    atomic_write(meta_path, json.dumps({"items": records}, sort_keys=True).encode())
    return chunk_index
