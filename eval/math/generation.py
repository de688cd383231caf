"""Generate samples for math problems with the data-parallel generator (eval/sharded.py)."""

from __future__ import annotations

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
    top_p: float = 1.0,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    seed: int = 0,
    tokenizer: Any = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Samples (`task_id`, `completion`), n per problem in problem order; greedy unless temperature > 0.

    Under torchrun call it on every rank: each generates its share and every rank gets all samples back.
    """
    from eval.sharded import GenerationSpec, generate_tasks  # imported here: grading alone never needs torch

    prompts, stops = build_prompts(benchmark, [question_of(p) for p in problems], chat)
    ids = [str(p["task_id"]) for p in problems]
    spec = GenerationSpec(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                          stop=tuple(stops), seed=seed, batch_size=batch_size, chat=chat)
    completions = generate_tasks(model, list(zip(ids, prompts, strict=True)), spec, tokenizer=tokenizer,
                                 work_dir=work_dir, progress=progress)
    return [{"task_id": t, "completion": c} for t in ids for c in completions[t]]


def write_samples(path: str | Path, samples: list[dict[str, Any]]) -> None:
    from eval.sharded import write_jsonl_atomic

    write_jsonl_atomic(path, samples)
