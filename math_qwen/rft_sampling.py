"""Draw k solutions per training problem and judge them, resumable after a crash.

Problems are cut into fixed chunks; each chunk is generated in batches (eval.generate: transformers, or vLLM
when installed with a GPU), judged (math_qwen.rft_filter) and appended to `samples.jsonl` as one line per
problem in a single write followed by fsync. A restart reads the file, drops a torn last line, and draws only
for problems without a line: finished problems are never drawn again. Chunk c is sampled with seed
`seed + c`, so a resumed run writes what an uninterrupted one would have written.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.generate import generate_completions
from eval.math.prompts import CHAT_STOPS
from math_qwen.rft_filter import count_reasons, filter_samples
from math_qwen.rft_problems import Problem

log = logging.getLogger(__name__)


@dataclass
class SamplingConfig:
    k: int = 4  # samples per problem (RFT uses up to 100)
    temperature: float = 0.7  # Yuan et al. 2023
    top_p: float = 1.0
    max_new_tokens: int = 160
    batch_size: int = 128  # sequences per generate call
    problems_per_chunk: int = 32  # unit of incremental writing and resume
    max_problems: int | None = None  # None: every training problem
    seed: int = 0


def read_finished(path: Path) -> dict[str, dict[str, Any]]:
    """task_id -> record of the problems already in samples.jsonl; a torn last line is cut off the file."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    good_end = data.rfind(b"\n") + 1  # a crash mid-write leaves at most one partial line, at the end
    if good_end < len(data):
        log.warning("%s: dropping a partial last line (%d bytes) left by an interrupted run", path, len(data) - good_end)
        with open(path, "r+b") as f:
            f.truncate(good_end)
    finished = {}
    for line_no, line in enumerate(data[:good_end].decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{line_no}: malformed samples line ({e.msg}); fix or remove it") from e
        finished[str(record["task_id"])] = record
    return finished


def append_records(path: Path, records: list[dict[str, Any]]) -> None:
    """One write and an fsync: after a crash the file holds whole chunks (or a torn tail read_finished drops)."""
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    with open(path, "ab") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def render_prompt(tokenizer, problem: Problem) -> str:
    return tokenizer.apply_chat_template(problem.prompt, tokenize=False, add_generation_prompt=True)


def judge_problem(problem: Problem, completions: list[str], round_: int, model_name: str, chunk: int) -> dict:
    verdicts = filter_samples(completions, problem.gold_solution, problem.gold, problem.benchmark)
    return {
        "task_id": problem.task_id, "round": round_, "model": model_name, "chunk": chunk,
        "benchmark": problem.benchmark, "gold": problem.gold, "completions": completions,
        "verdicts": [{"sample_index": v.sample_index, "reason": v.reason, "prediction": v.prediction} for v in verdicts],
        "reasons": count_reasons(verdicts), "pid": os.getpid(),
    }  # fmt: skip


def sample_problems(model, tokenizer, problems: list[Problem], out_path: Path, cfg: SamplingConfig, *,
                    round_: int = 1, model_name: str = "", progress: bool = False) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Sample and judge every problem not yet in out_path; returns task_id -> record for all problems."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    finished = read_finished(out_path)
    size = max(1, cfg.problems_per_chunk)
    chunks = [problems[i : i + size] for i in range(0, len(problems), size)]
    todo = [(c, [p for p in chunk if p.task_id not in finished]) for c, chunk in enumerate(chunks)]
    todo = [(c, pending) for c, pending in todo if pending]
    start, n_todo = time.monotonic(), sum(len(p) for _, p in todo)
    log.info("sampling %d problems x %d (%d already done) -> %s", n_todo, cfg.k, len(finished), out_path)
    done = 0
    for c, pending in todo:
        prompts = [render_prompt(tokenizer, p) for p in pending]
        completions = generate_completions(model, prompts, tokenizer=tokenizer, n=cfg.k, temperature=cfg.temperature,
                                           top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, stop=list(CHAT_STOPS),
                                           batch_size=cfg.batch_size, seed=cfg.seed + c, progress=progress)  # fmt: skip
        records = [judge_problem(p, comp, round_, model_name, c) for p, comp in zip(pending, completions, strict=True)]
        append_records(out_path, records)
        finished.update((r["task_id"], r) for r in records)
        done += len(pending)
        rate = done / max(time.monotonic() - start, 1e-9)
        log.info("sampled %d/%d problems (%.2f problems/s, ETA %.0fs)", done, n_todo, rate, (n_todo - done) / rate)
    return finished
