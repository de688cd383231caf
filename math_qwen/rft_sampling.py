"""Draw k solutions per training problem and judge them: data-parallel over ranks, resumable after a crash.

Problems are cut into fixed chunks (the unit of writing). Generation goes through eval.sharded: under torchrun
every rank draws a share of the (problem, sample) pairs of a window of `world_size` chunks, sample j of a
problem draws from a seed made of (seed, task_id, j) only, and a block of pairs never spans two chunks. Rank 0
judges each chunk (math_qwen.rft_filter) and appends it to `samples.jsonl`, one line per problem, in a single
write followed by fsync. A restart drops a torn last line and draws only for problems without a line (blocks
whose problems all have one are not generated again), reusing the finished blocks every rank left in
`samples.parts/`. The file is therefore byte-identical for any world size and any cut, even inside a chunk.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.math.prompts import CHAT_STOPS
from eval.sharded import GenerationSpec, generate_tasks, rank_and_world, release_work_dir
from math_qwen.rft_filter import count_reasons, filter_samples
from math_qwen.rft_problems import Problem
from shared.distributed import broadcast_object

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
    seed: int = 0  # sample j of a problem draws from a seed made of (seed, task_id, j)
    backend: str = "auto"  # auto: vLLM (in a child process) when installed with a GPU, else HF; or hf | vllm
    tensor_parallel_size: int = 1  # GPUs per vLLM engine (each rank's engine takes LOCAL_RANK*tp .. +tp-1)


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
        "reasons": count_reasons(verdicts),
    }  # fmt: skip


def sample_problems(engine, tokenizer, problems: list[Problem], out_path: Path, cfg: SamplingConfig, *,
                    round_: int = 1, model_name: str = "", progress: bool = False) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Sample and judge every problem not yet in out_path; on every rank (a collective under torchrun).

    engine: an open eval.generate engine (reused for every chunk), or a loaded model with its tokenizer.
    Returns task_id -> record for all problems on rank 0, {} on the other ranks.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rank, world = rank_and_world()
    finished = read_finished(out_path) if rank == 0 else {}
    finished_ids = broadcast_object(set(finished))
    size = max(1, cfg.problems_per_chunk)
    chunks = [problems[i : i + size] for i in range(0, len(problems), size)]
    todo = [c for c, chunk in enumerate(chunks) if any(p.task_id not in finished_ids for p in chunk)]
    spec = GenerationSpec(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          stop=tuple(CHAT_STOPS), seed=cfg.seed, batch_size=cfg.batch_size)  # fmt: skip
    parts = out_path.with_name(out_path.stem + ".parts")
    start, n_todo, done = time.monotonic(), sum(len(chunks[c]) for c in todo), 0
    log.info("sampling %d problems x %d (%d already done) on %d rank(s) -> %s", n_todo, cfg.k, len(finished_ids),
             world, out_path)  # fmt: skip
    for w in range(0, len(todo), world):  # a window of one chunk per rank
        window = todo[w : w + world]
        tasks = [(p.task_id, render_prompt(tokenizer, p)) for c in window for p in chunks[c]]
        completions = generate_tasks(engine, tasks, spec, tokenizer=tokenizer, work_dir=parts, skip=finished_ids,
                                     group_size=size, progress=progress)  # fmt: skip
        for c in window:
            pending = [p for p in chunks[c] if p.task_id not in finished_ids]
            if rank == 0:
                records = [judge_problem(p, completions[p.task_id], round_, model_name, c) for p in pending]
                append_records(out_path, records)
                finished.update((r["task_id"], r) for r in records)
            done += len(pending)
        rate = done / max(time.monotonic() - start, 1e-9)
        log.info("sampled %d/%d problems (%.2f problems/s, ETA %.0fs)", done, n_todo, rate, (n_todo - done) / rate)
    release_work_dir(parts)
    return finished
