"""The last stage (one task, streaming chunk by chunk in input order): replay every item's trail into the stage
report, apply the exact and near duplicates decided by the dedup stages and the mixture budgets, write one
token shard per chunk with kept documents (shared/token_shards.py), the manifest and the lists of rejected and
removed documents.

It holds one chunk at a time plus the duplicate maps and a counter per source: the budgets are exact because
one task takes the documents in input order, whatever the number of tasks before it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from data_recipes.config import NON_OUTPUT_FIELDS, CorpusRecipe
from data_recipes.decontaminate import ContaminationIndex
from data_recipes.dedup_stages import DupMap
from data_recipes.plan import ChunkSpec
from data_recipes.report import StageReport
from data_recipes.workfiles import load_chunk_meta, load_chunk_tokens
from shared.config import to_dict
from shared.token_shards import file_sha256, write_manifest, write_shard


def source_budgets(recipe: CorpusRecipe) -> dict[str, int]:
    """Token budget per source: explicit max_tokens, else its weight's share of mixture.target_tokens, else 0 (no cap)."""
    total_weight = sum(s.weight for s in recipe.sources)
    budgets = {}
    for s in recipe.sources:
        if s.max_tokens:
            budgets[s.name] = s.max_tokens
        elif recipe.mixture.target_tokens:
            budgets[s.name] = int(recipe.mixture.target_tokens * s.weight / total_weight)
        else:
            budgets[s.name] = 0
    return budgets


class Budgets:
    """Each source's documents in order until its token budget would be exceeded."""

    def __init__(self, recipe: CorpusRecipe):
        self.recipe = recipe
        self.budgets = source_budgets(recipe)
        self.available = {s.name: 0 for s in recipe.sources}
        self.taken = dict(self.available)

    def over(self, source: str, n_tokens: int) -> bool:
        self.available[source] += n_tokens
        budget = self.budgets[source]
        if budget and self.taken[source] + n_tokens > budget:
            return True
        self.taken[source] += n_tokens
        return False

    def summary(self) -> dict:
        return {
            s.name: {"weight": s.weight, "budget_tokens": self.budgets[s.name],
                     "available_tokens": self.available[s.name], "taken_tokens": self.taken[s.name],
                     "short_of_budget": bool(self.budgets[s.name]) and self.available[s.name] < self.budgets[s.name]}
            for s in self.recipe.sources
        }  # fmt: skip


class Assembler:
    def __init__(self, recipe: CorpusRecipe, work: Path, out: Path, exact: DupMap, near: DupMap):
        self.recipe, self.work, self.out = recipe, work, out
        self.report = StageReport()
        # Duplicates by global item position (exact) and by document index among the survivors (near); the
        # doc_ids of first copies are remembered when met, for the later copies' `duplicate_of`.
        self.exact, self.near = exact, near
        self.item_ids: dict[int, str] = {}
        self.doc_ids: dict[int, str] = {}
        self.budgets = Budgets(recipe)
        self.rejects: list[dict] = []
        self.removed: list[dict] = []
        self.near_removed: list[dict] = []
        self.mixture_removed: list[dict] = []
        self.shards: list[dict] = []
        self.tokens_by_lang: dict[str, int] = {}
        self.tokens_by_source: dict[str, int] = {}
        self.n_docs = 0  # survivors so far: the global document index of near dedup

    def chunk(self, spec: ChunkSpec) -> None:
        meta = load_chunk_meta(self.work, spec.index)
        if meta is None:
            raise RuntimeError(f"chunk {spec.index} is missing after the documents stage")
        passed: list[dict] = []
        keep: list[bool] = []
        for pos, item in enumerate(meta["items"]):
            survivor = self.replay(spec.first_item + pos, item)
            if "n_tokens" in item:  # passed the filters: its tokens are in the chunk's .bin
                passed.append(item)
                keep.append(survivor and self.select(item))
        if any(keep):
            self.write_shard(spec.index, passed, np.asarray(keep))

    def replay(self, g: int, item: dict) -> bool:
        """The item's stages as the report and lists see them; True when it reaches near dedup."""
        report, src, lang, size = self.report, item["source"], item["language"], item["n_bytes"]
        if self.exact.is_first(g):
            self.item_ids[g] = item["doc_id"]
        report.add("read", src, lang, size, item["reason"])
        if item["reason"] is not None:
            self.rejects.append({"doc_id": item["doc_id"], "language": lang, "reason": item["reason"]})
            return False
        if self.recipe.dedup.exact:
            first = self.exact.get(g)
            report.add("exact_dedup", src, lang, size, None if first is None else "exact_duplicate")
            if first is not None:
                self.removed.append({"doc_id": item["doc_id"], "language": lang, "stage": "exact_dedup",
                                     "reason": "exact_duplicate", "duplicate_of": self.item_ids[first]})  # fmt: skip
                return False
        if item["events"] is None:
            raise RuntimeError(f"{item['doc_id']}: skipped as a duplicate by its task, unknown to stage exact")
        for stage, reason, note in item["events"]:
            report.add(stage, src, lang, size, reason, note)
        if item["verdict"] is not None:
            stage, reason = item["verdict"]
            self.removed.append({"doc_id": item["doc_id"], "language": lang, "stage": stage, "reason": reason})
            return False
        return True

    def select(self, item: dict) -> bool:
        d = self.n_docs
        self.n_docs += 1
        if self.near.is_first(d):
            self.doc_ids[d] = item["doc_id"]
        src, lang, size = item["source"], item["language"], item["n_bytes"]
        if self.recipe.dedup.near:
            rep = self.near.get(d)
            self.report.add("near_dedup", src, lang, size, None if rep is None else "near_duplicate")
            if rep is not None:
                self.near_removed.append({"doc_id": item["doc_id"], "language": lang, "stage": "near_dedup",
                                          "reason": "near_duplicate", "duplicate_of": self.doc_ids[rep]})  # fmt: skip
                return False
        over = self.budgets.over(src, item["n_tokens"])
        self.report.add("mixture", src, lang, size, "over_budget" if over else None)
        if over:
            self.mixture_removed.append({"doc_id": item["doc_id"], "language": lang, "stage": "mixture",
                                         "reason": "over_budget"})  # fmt: skip
            return False
        self.tokens_by_lang[lang] = self.tokens_by_lang.get(lang, 0) + item["n_tokens"]
        self.tokens_by_source[src] = self.tokens_by_source.get(src, 0) + item["n_tokens"]
        return True

    def write_shard(self, chunk_index: int, docs: list[dict], keep: np.ndarray) -> None:
        """Shard i = the kept documents of one chunk; reused when a previous run already wrote it."""
        i, out = len(self.shards), self.out
        bin_name, idx_name, docs_path = f"shard-{i:05d}.bin", f"shard-{i:05d}.idx", out / f"shard-{i:05d}.docs.jsonl"
        if (out / bin_name).exists() and (out / idx_name).exists() and docs_path.exists():
            offsets = np.fromfile(out / idx_name, dtype="<u8")
            entry = {"index": i, "bin": bin_name, "idx": idx_name, "n_tokens": int(offsets[-1]),
                     "n_documents": len(offsets) - 1, "sha256_bin": file_sha256(out / bin_name),
                     "sha256_idx": file_sha256(out / idx_name)}  # fmt: skip
        else:
            tokens = load_chunk_tokens(self.work, chunk_index)
            bounds = np.cumsum([0] + [d["n_tokens"] for d in docs])
            entry = write_shard(out, i, [tokens[bounds[j] : bounds[j + 1]] for j in np.flatnonzero(keep)])
            write_jsonl(docs_path, [{"doc_id": d["doc_id"], "language": d["language"], "n_tokens": d["n_tokens"]}
                                    for d, k in zip(docs, keep, strict=True) if k])  # fmt: skip
        entry["docs"] = docs_path.name
        entry["sha256_docs"] = file_sha256(docs_path)
        self.shards.append(entry)

    def finish(self, index: ContaminationIndex, identity: dict, fp: str) -> dict:
        recipe, out = self.recipe, self.out
        removed = self.removed + self.near_removed + self.mixture_removed
        write_jsonl(out / "rejected_inputs.jsonl", self.rejects)
        write_jsonl(out / "removed_documents.jsonl", removed)
        write_jsonl(out / "decontaminated.jsonl", [r for r in removed if r["stage"] == "decontamination"])
        (out / "report.json").write_text(json.dumps(self.report.to_dict(), indent=1, sort_keys=False))
        (out / "report.txt").write_text(self.report.table() + "\n")
        manifest = {
            "format": "token_shards/1",
            "fingerprint": fp,
            "recipe": recipe.name,
            "recipe_config": {k: v for k, v in to_dict(recipe).items() if k not in NON_OUTPUT_FIELDS},
            "tokenizer": identity,
            "shards": self.shards,
            "n_tokens": sum(s["n_tokens"] for s in self.shards),
            "n_documents": sum(s["n_documents"] for s in self.shards),
            "tokens_by_language": dict(sorted(self.tokens_by_lang.items())),
            "tokens_by_source": dict(sorted(self.tokens_by_source.items())),
            "sources": [{"name": s.name, "kind": s.kind, "path": s.path, "hub_name": s.hub_name}
                        for s in recipe.sources],  # fmt: skip
            "mixture": {"target_tokens": recipe.mixture.target_tokens, "sources": self.budgets.summary()},
            "decontamination": {"benchmarks": index.loaded, "missing": index.missing, "ngram": index.ngram,
                                "n_removed": sum(r["stage"] == "decontamination" for r in removed)},  # fmt: skip
            "n_rejected_inputs": len(self.rejects),
            "stage_report": self.report.to_dict(),
        }
        write_manifest(out, manifest)
        return manifest


def assemble(recipe: CorpusRecipe, work: Path, out: Path, plan: list[ChunkSpec], exact: DupMap, near: DupMap,
             index: ContaminationIndex, identity: dict, fp: str,
             progress: Callable[[int], None] | None = None) -> dict:  # fmt: skip
    """Everything after dedup: exact and near map duplicates (item / document index) to their first copy."""
    assembler = Assembler(recipe, work, out, exact, near)
    for spec in plan:
        assembler.chunk(spec)
        if progress:
            progress(spec.n_bytes)
    return assembler.finish(index, identity, fp)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    tmp.replace(path)
