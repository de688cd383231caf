"""Corpus-wide decisions after the per-document stages: near dedup and mixture token budgets.

They run over all chunks in input order in one process (per document only a hash, a signature and a token
count are held, never the text), so the first document of every duplicate group is the one kept, whatever
the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data_recipes.config import CorpusRecipe
from data_recipes.dedup import near_duplicate_clusters
from data_recipes.report import StageReport


@dataclass
class Selection:
    keep: list[np.ndarray]  # per chunk: bool per document of its metadata
    removed: list[dict] = field(default_factory=list)
    mixture: dict = field(default_factory=dict)


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


def select(recipe: CorpusRecipe, docs: list[dict], chunk_sizes: list[int], signatures: np.ndarray,
           report: StageReport) -> Selection:  # fmt: skip
    keep = np.ones(len(docs), dtype=bool)
    removed: list[dict] = []

    def drop(i: int, stage: str, reason: str, **extra) -> None:
        keep[i] = False
        removed.append({"doc_id": docs[i]["doc_id"], "language": docs[i]["language"], "stage": stage,
                        "reason": reason, **extra})  # fmt: skip

    if recipe.dedup.near:
        alive = np.flatnonzero(keep)
        labels = near_duplicate_clusters(signatures[alive], recipe.dedup.bands, recipe.dedup.threshold)
        for pos, i in enumerate(alive.tolist()):
            d, rep = docs[i], labels[pos]
            report.add("near_dedup", d["source"], d["language"], d["n_bytes"], None if rep == pos else "near_duplicate")
            if rep != pos:
                drop(i, "near_dedup", "near_duplicate", duplicate_of=docs[alive[rep]]["doc_id"])
    mixture = apply_budgets(recipe, docs, keep, report, drop)
    bounds = np.cumsum([0, *chunk_sizes])
    return Selection([keep[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], removed, mixture)


def apply_budgets(recipe: CorpusRecipe, docs: list[dict], keep: np.ndarray, report: StageReport, drop) -> dict:
    """Take each source's documents in order until its token budget would be exceeded."""
    budgets = source_budgets(recipe)
    available = {s.name: 0 for s in recipe.sources}
    taken = dict(available)
    for i in np.flatnonzero(keep).tolist():
        d = docs[i]
        available[d["source"]] += d["n_tokens"]
        budget = budgets[d["source"]]
        over = bool(budget) and taken[d["source"]] + d["n_tokens"] > budget
        report.add("mixture", d["source"], d["language"], d["n_bytes"], "over_budget" if over else None)
        if over:
            drop(i, "mixture", "over_budget")
        else:
            taken[d["source"]] += d["n_tokens"]
    return {
        name: {"weight": next(s.weight for s in recipe.sources if s.name == name), "budget_tokens": budgets[name],
               "available_tokens": available[name], "taken_tokens": taken[name],
               "short_of_budget": bool(budgets[name]) and available[name] < budgets[name]}
        for name in budgets
    }  # fmt: skip
