"""The tiny code default's local data, all from the problem generator of data_recipes/code_problems.py:

- `train.jsonl`: training problems with tests (the pool an execution-feedback round samples from);
- `sft.jsonl`: chat conversations for other training problems, the user turn exactly the prompt eval.code sends
  a chat model (eval/code/prompts.py), the assistant turn the solved function in a fenced block.

The held-out problems (unseen family/constant combinations) are written by the in-training evaluation
(`eval.problems: local`, code_qwen/in_training_eval.py). Written atomically and only when different, so every rank and every re-run may call `ensure_problem_data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_recipes.code_problems import build_problems, write_jsonl_atomic
from eval.code.languages import get_language
from eval.code.prompts import generation_prompt


@dataclass
class ProblemDataConfig:
    out_dir: str = ""  # empty: off
    seed: int = 0  # the data seed: names, arguments, examples and tests of the training problems
    n_sft: int = 400  # problems with a solved conversation (stage 1)
    n_pool: int = 1200  # further problems with tests only (the feedback pool)


def solved_answer(problem: dict[str, Any]) -> str:
    """The assistant turn: the function (signature and body, no docstring) in a Python block."""
    signature = problem["prompt"].split("\n", 1)[0]
    return f"```python\n{signature}\n{problem['canonical_solution'].rstrip()}\n```"


def sft_conversation(problem: dict[str, Any]) -> dict[str, Any]:
    user = generation_prompt(problem, get_language("python"), chat=True)
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": solved_answer(problem)}],
            "source": {"problem": problem["task_id"], "kind": "generated canonical solution"}}


def ensure_problem_data(cfg: ProblemDataConfig) -> dict[str, Path]:
    """train.jsonl (the pool) and sft.jsonl under cfg.out_dir."""
    out = Path(cfg.out_dir)
    train = build_problems("train", cfg.n_sft + cfg.n_pool, cfg.seed)
    solved, pool = train[:cfg.n_sft], train[cfg.n_sft:]
    return {"pool": write_jsonl_atomic(out / "train.jsonl", pool),
            "sft": write_jsonl_atomic(out / "sft.jsonl", [sft_conversation(p) for p in solved])}
