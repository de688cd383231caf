"""Generate samples for math problems with the shared generator (eval/generate.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.math.problems import question_of
from eval.math.prompts import build_prompts


def generate_samples(
    model: Any,
    benchmark: str,
    problems: list[dict[str, Any]],
    *,
    chat: bool = False,
    n: int = 1,
    temperature: float = 0.0,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
    tokenizer: Any = None,
) -> list[dict[str, Any]]:
    """Samples (`task_id`, `completion`), n per problem in problem order; greedy unless temperature > 0."""
    from eval.generate import generate_completions  # imported here: grading alone never needs torch

    prompts, stops = build_prompts(benchmark, [question_of(p) for p in problems], chat)
    completions = generate_completions(
        model, prompts, tokenizer=tokenizer, n=n, temperature=temperature, max_new_tokens=max_new_tokens,
        stop=stops, batch_size=batch_size, seed=seed, chat=chat,
    )
    return [
        {"task_id": str(problem["task_id"]), "completion": completion}
        for problem, per_prompt in zip(problems, completions, strict=True)
        for completion in per_prompt
    ]


def write_samples(path: str | Path, samples: list[dict[str, Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")
