"""The augmented chat JSONL of a rejection-sampling round and the round's statistics.

Each kept sample becomes a conversation (the problem's prompt + the sampled solution) with its provenance:
round, sampling model, task id and sample index. The gold solutions stay in the original training files,
which every round trains on beside the augmented ones, so the gold path is always kept.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from math_qwen.rft_problems import Problem

CORRECT = {"kept", "bad_calculator", "duplicate_equations", "duplicate_text"}  # the final answer was right


def augmented_conversations(problems: list[Problem], records: dict[str, dict[str, Any]]) -> list[dict]:
    """Kept samples as chat records with provenance, in problem order then sample order (deterministic)."""
    out = []
    for p in problems:
        record = records[p.task_id]
        for verdict in record["verdicts"]:
            if verdict["reason"] != "kept":
                continue
            i = verdict["sample_index"]
            out.append({"messages": [*p.prompt, {"role": "assistant", "content": record["completions"][i]}],
                        "provenance": {"source": "rejection_sampling", "round": record["round"],
                                       "model": record["model"], "task_id": p.task_id, "sample_index": i}})  # fmt: skip
    return out


def write_augmented(path: Path, conversations: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations), encoding="utf-8")
    tmp.replace(path)
    return path


def round_stats(problems: list[Problem], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """problems, samples drawn, coverage (share with at least one correct answer), distinct paths kept."""
    reasons: Counter = Counter()
    covered = 0
    for p in problems:
        counts = records[p.task_id]["reasons"]
        reasons.update(counts)
        covered += any(counts.get(r, 0) for r in CORRECT)
    n = len(problems)
    kept = reasons.get("kept", 0)
    return {"problems": n, "samples_drawn": sum(reasons.values()), "coverage": covered / n if n else 0.0,
            "correct_samples": sum(reasons.get(r, 0) for r in CORRECT), "distinct_paths_kept": kept,
            "paths_per_problem_with_gold": (n + kept) / n if n else 0.0, "reasons": dict(sorted(reasons.items()))}  # fmt: skip
