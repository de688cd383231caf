"""What a rejection-sampling round keeps, pooled over its samplers, and the round's statistics.

One or several sampling models (RFT-U, Yuan et al. 2023: samples of several models pooled before
deduplication) each leave one record per problem (math_qwen.rft_sampling). Per problem, the samples of every
sampler are pooled in a fixed order (sampler 0's samples by index, then sampler 1's, ...) and judged once by
math_qwen.rft_filter: correct final answer, calculator annotations that compute, an equation list not kept
before (the gold solution's is kept first). With one sampler the pooled verdicts are that sampler's own.

Each kept sample becomes a conversation (the problem's prompt + the sampled solution) with its provenance:
round, sampling model, task id and sample index. The gold solutions stay in the original training files,
which every round trains on beside the augmented ones, so the gold path is always kept.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from math_qwen.calculator import check_annotations
from math_qwen.rft_filter import REASONS, Verdict, filter_samples, normalize_text
from math_qwen.rft_problems import Problem

CORRECT = {"kept", "bad_calculator", "duplicate_equations", "duplicate_text"}  # the final answer was right
ACCEPTED = {"kept", "duplicate_equations", "duplicate_text"}  # right answer and the calculator checks


@dataclass
class PooledProblem:
    """One problem's samples of every sampler, in pooled order, with the pooled verdicts."""

    problem: Problem
    origins: list[tuple[int, int]]  # pooled position -> (sampler index, sample index in that sampler's record)
    completions: list[str]
    verdicts: list[Verdict]
    round: int = 1
    models: list[str] = field(default_factory=list)  # sampler index -> model name

    def kept(self) -> list[int]:
        return [v.sample_index for v in self.verdicts if v.kept]


def pool(problems: list[Problem], records: list[dict[str, dict[str, Any]]]) -> list[PooledProblem]:
    """Pool the samples of every sampler (records[s]: task_id -> sampler s's record) and judge them once."""
    pooled = []
    for p in problems:
        origins, completions, models, round_ = [], [], [], 1
        for s, by_task in enumerate(records):
            record = by_task[p.task_id]
            origins += [(s, i) for i in range(len(record["completions"]))]
            completions += record["completions"]
            models.append(str(record.get("model", "")))
            round_ = int(record.get("round", round_))
        verdicts = filter_samples(completions, p.gold_solution, p.gold, p.benchmark)
        pooled.append(PooledProblem(p, origins, completions, verdicts, round_, models))
    return pooled


def augmented_conversations(pooled: list[PooledProblem]) -> list[dict]:
    """Kept samples as chat records with provenance, in problem order then pooled order (deterministic)."""
    out = []
    for pp in pooled:
        for j in pp.kept():
            s, i = pp.origins[j]
            out.append({"messages": [*pp.problem.prompt, {"role": "assistant", "content": pp.completions[j]}],
                        "provenance": {"source": "rejection_sampling", "round": pp.round, "model": pp.models[s],
                                       "sampler": s, "task_id": pp.problem.task_id, "sample_index": i}})  # fmt: skip
    return out


def write_augmented(path: Path, conversations: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations), encoding="utf-8")
    tmp.replace(path)
    return path


def _sampler_stats(pooled: list[PooledProblem], n_samplers: int, names: list[str]) -> list[dict[str, Any]]:
    """Per sampler: samples, correct ones, distinct paths credited to it (first in pooled order) and paths no
    other sampler found (its accepted paths, the gold's aside, that no other sampler's accepted samples have)."""
    counts = [Counter[str]() for _ in range(n_samplers)]
    for pp in pooled:
        gold = check_annotations(pp.problem.gold_solution).equations or normalize_text(pp.problem.gold_solution)
        paths_of: list[set] = [set() for _ in range(n_samplers)]
        for v, (s, _) in zip(pp.verdicts, pp.origins, strict=True):
            counts[s]["samples"] += 1
            counts[s]["correct_samples"] += v.reason in CORRECT
            counts[s]["distinct_paths_kept"] += v.kept
            if v.reason in ACCEPTED:
                paths_of[s].add(v.equations or normalize_text(pp.completions[v.sample_index]))
        for s in range(n_samplers):
            others = set().union(*(paths_of[o] for o in range(n_samplers) if o != s))
            counts[s]["unique_paths"] += len(paths_of[s] - others - {gold})
    keys = ("samples", "correct_samples", "distinct_paths_kept", "unique_paths")
    return [{"sampler": names[s] if s < len(names) else str(s), **{k: counts[s][k] for k in keys}}
            for s in range(n_samplers)]  # fmt: skip


def round_stats(pooled: list[PooledProblem], sampler_names: list[str] | None = None) -> dict[str, Any]:
    """problems, samples drawn, coverage (share with at least one correct answer), distinct paths kept (beyond
    the gold), the share of problems that gained at least one new path, and the same per sampler."""
    names = sampler_names or []
    n_samplers = max([len(pp.models) for pp in pooled] + [len(names), 1])
    reasons: Counter = Counter()
    covered = with_new = 0
    for pp in pooled:
        counts = Counter(v.reason for v in pp.verdicts)
        reasons.update(counts)
        covered += any(counts.get(r, 0) for r in CORRECT)
        with_new += counts.get("kept", 0) > 0
    n = len(pooled)
    kept = reasons.get("kept", 0)
    return {"problems": n, "samples_drawn": sum(reasons.values()), "coverage": covered / n if n else 0.0,
            "correct_samples": sum(reasons.get(r, 0) for r in CORRECT), "distinct_paths_kept": kept,
            "problems_with_new_paths": with_new, "new_path_share": with_new / n if n else 0.0,
            "paths_per_problem_with_gold": (n + kept) / n if n else 0.0,
            "reasons": {r: reasons.get(r, 0) for r in REASONS},
            "per_sampler": _sampler_stats(pooled, n_samplers, names)}  # fmt: skip
