"""Code SFT data by execution feedback (Qwen2 report: "execution feedback for coding").

    python -m code_qwen.feedback [config.yaml] [key=value ...]          # just code-feedback
    python -m code_qwen.feedback model=runs/code-sft/tiny-stage1/export sampling.k=8

For every problem with tests (sources: the tiny generator's pool, MBPP train/validation/prompt, APPS, TACO,
CodeContests; data_recipes/feedback_sources.py), sample k answers from `model` (a previous stage's export), run
each against the problem's hidden tests in the sandbox (eval/code/feedback.py, six languages), keep the passing,
distinct, uncontaminated ones (data_recipes/feedback_data.py) and write `<out_dir>/sft.jsonl` (chat, with
provenance) and `<out_dir>/report.json` (per language: problems, samples, pass rate, kept, dropped by reason).

Resumable: problems are sampled in chunks; each finished chunk is appended to `<out_dir>/samples.jsonl`, and a
re-run skips the problems found there (a torn last line from a kill is dropped and re-done). Chunk c's sampling
seed is (sampling.seed, c), so a resumed run writes what an uninterrupted one would.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from code_qwen.problem_data import ProblemDataConfig, ensure_problem_data
from data_recipes.config import DecontaminationConfig
from data_recipes.feedback_sources import FeedbackSourceConfig, load_feedback_problems
from shared.config import ConfigError, parse_cli

RECIPE = "code-feedback"
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "feedback" / "tiny.yaml"
log = logging.getLogger("code_qwen.feedback")


@dataclass
class SamplingConfig:
    k: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 64
    batch_size: int = 32
    seed: int = 0
    chunk_problems: int = 50  # problems per resumable chunk


@dataclass
class Config:
    model: str = ""  # the previous stage's export (HF folder or hub name)
    out_dir: str = "data/code_feedback_tiny"
    sources: list[FeedbackSourceConfig] = field(default_factory=list)
    problem_data: ProblemDataConfig = field(default_factory=ProblemDataConfig)  # tiny: build the generator's pool
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)
    timeout_s: float = 5.0  # per sample run
    workers: int | None = None  # sandbox processes in parallel (None: one per core)
    cpu_threads: int = 0

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("model: the export to sample from (a previous SFT stage's export)")
        if not self.sources:
            raise ConfigError("sources: at least one problem source")
        if self.sampling.k < 1 or self.sampling.chunk_problems < 1:
            raise ConfigError("sampling.k and sampling.chunk_problems must be >= 1")


def sample_solutions(model: Any, tokenizer: Any, prompts: list[str], seed: int, cfg: SamplingConfig) -> list[list[str]]:
    """k raw answers per chat prompt, through the shared generation (eval.sharded): sample j of prompt i is
    seeded by (chunk seed, i, j) alone, so batch size never changes what is drawn. The round runs on rank 0
    while the other ranks wait (code_qwen.sft), hence collective=False; sharding it over ranks is future work."""
    from eval.sharded import GenerationSpec, generate_tasks

    spec = GenerationSpec(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                          seed=seed, batch_size=cfg.batch_size, chat=True)
    out = generate_tasks(model, [(str(i), p) for i, p in enumerate(prompts)], spec, tokenizer=tokenizer,
                         progress=False, collective=False)
    return [out[str(i)] for i in range(len(prompts))]


Sampler = Callable[[list[str], int], list[list[str]]]  # (chat prompts, seed) -> k raw answers per prompt


def load_sampler(cfg: Config) -> Sampler:
    """The model of `cfg.model`, loaded once, as a sampler."""
    from shared.config import ModelConfig
    from shared.modeling import load_model, load_tokenizer

    if not Path(cfg.model).is_dir() and (cfg.model.startswith((".", "/")) or cfg.model.count("/") != 1):
        raise SystemExit(f"model {cfg.model} is not an export folder (nor a hub name): run the stage it comes from "
                         "first (tiny: `just code-sft` writes runs/code-sft/tiny-stage1/export)")
    tokenizer = load_tokenizer(ModelConfig(name_or_path=cfg.model))
    model = load_model(ModelConfig(name_or_path=cfg.model), tokenizer, device="cpu").eval()
    return partial(sample_solutions, model, tokenizer, cfg=cfg.sampling)


def load_problems(cfg: Config) -> tuple[list[dict], dict[str, dict]]:
    """All sources' problems in config order (task ids unique) and each source's load counts."""
    from eval.code.feedback import check_problem

    problems: list[dict] = []
    counts: dict[str, dict] = {}
    for source in cfg.sources:
        loaded = load_feedback_problems(source)
        for p in loaded.problems:
            check_problem(p)
        problems += loaded.problems
        counts[source.name or source.kind] = {"problems": len(loaded.problems), "skipped": dict(loaded.skipped)}
    ids = [p["task_id"] for p in problems]
    if len(set(ids)) != len(ids):
        raise SystemExit("feedback sources give duplicate task ids: give each source its own name")
    return problems, counts


def read_done(path: Path) -> list[dict]:
    """Records of finished problems; a torn last line (a killed run) is dropped, anything else torn is an error."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    records = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if lines[-1] == "" or i < len(lines):  # only an unterminated last line may be torn
                raise SystemExit(f"{path}:{i}: malformed line (not a torn tail): fix or delete the file") from None
            log.warning("%s: dropping a torn last line (an interrupted run); its chunk is re-done", path)
            path.write_text("\n".join(lines[:i - 1]) + ("\n" if i > 1 else ""), encoding="utf-8")
    return records


def run_chunk(problems: list[dict], sampler: Sampler, cfg: Config, chunk: int) -> list[dict]:
    """Sample, extract and verify one chunk: one record per problem."""
    from eval.code.feedback import completion_of, count_tests, sampling_prompt, verify

    prompts = [sampling_prompt(p) for p in problems]
    raw = sampler(prompts, cfg.sampling.seed * 1_000_003 + chunk)
    samples = [{"task_id": p["task_id"], "index": j, "raw": r, "completion": completion_of(p, r)}
               for p, outs in zip(problems, raw, strict=True) for j, r in enumerate(outs)]
    # Identical answers to the same problem (frequent once the model is good) are run once.
    unique = list({(s["task_id"], s["completion"]): s for s in samples})
    verdicts = verify({p["task_id"]: p for p in problems}, [{"task_id": t, "completion": c} for t, c in unique],
                      timeout_s=cfg.timeout_s, workers=cfg.workers, progress=False)
    by_answer = dict(zip(unique, verdicts, strict=True))
    for s in samples:
        v = by_answer[(s["task_id"], s["completion"])]
        s.update(status=v["status"], passed=v["passed"])
    by_task: dict[str, list[dict]] = {}
    for s in samples:
        by_task.setdefault(s.pop("task_id"), []).append(s)
    return [{"problem": p, "prompt": prompt, "n_tests": count_tests(p), "samples": by_task[p["task_id"]]}
            for p, prompt in zip(problems, prompts, strict=True)]


def sample_all(cfg: Config, problems: list[dict], state: Path) -> dict:
    """Sample every problem not finished in `state`, chunk by chunk; returns what this run did."""
    done = {r["problem"]["task_id"] for r in read_done(state)}
    size = cfg.sampling.chunk_problems
    chunks = [(c, problems[s:s + size]) for c, s in enumerate(range(0, len(problems), size))]
    todo = [(c, ch) for c, ch in chunks if not all(p["task_id"] in done for p in ch)]
    log.info("%d problems in %d chunks; %d chunks finished before, %d to do", len(problems), len(chunks),
             len(chunks) - len(todo), len(todo))
    if not todo:
        return {"resumed_problems": len(done), "sampled_problems": 0}
    sampler = load_sampler(cfg)
    started, sampled = time.monotonic(), 0
    for n, (c, chunk) in enumerate(todo, 1):
        # A chunk partly written by a killed run is sampled whole again (the same seed and batches give the same
        # samples) and only its missing problems are appended.
        records = [r for r in run_chunk(chunk, sampler, cfg, c) if r["problem"]["task_id"] not in done]
        pending = records
        with open(state, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        sampled += len(pending)
        rate = sampled / (time.monotonic() - started)
        left = sum(len(ch) for _, ch in todo[n:])
        log.info("chunk %d/%d: %d problems, %.2f problems/s, ETA %.0f s", n, len(todo), len(pending), rate,
                 left / rate)
    return {"resumed_problems": len(done), "sampled_problems": sampled}


def decontamination_index(cfg: Config):
    from data_recipes.decontaminate import build_index

    if not cfg.decontamination.enabled:
        return None
    return build_index(cfg.decontamination)


def main(argv: list[str] | None = None) -> dict:
    from code_qwen.cpu_threads import limit_cpu_threads
    from data_recipes.feedback_data import select_verified, write_outputs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = parse_cli(Config, argv, DEFAULT_CONFIG)
    limit_cpu_threads(cfg.cpu_threads)
    if cfg.problem_data.out_dir:
        ensure_problem_data(cfg.problem_data)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problems, counts = load_problems(cfg)
    run = sample_all(cfg, problems, out / "samples.jsonl")
    wanted = {p["task_id"] for p in problems}
    records = [r for r in read_done(out / "samples.jsonl") if r["problem"]["task_id"] in wanted]
    index = decontamination_index(cfg)
    kept, report = select_verified(records, index, cfg.model)
    report.update(sources=counts, run=run, k=cfg.sampling.k, temperature=cfg.sampling.temperature)
    if index is not None:
        report["decontamination"] = {"loaded": index.loaded, "missing": sorted(index.missing)}
    write_outputs(out, kept, report)
    log.info("kept %d verified solutions of %d samples (%s)", report["total"]["kept"], report["total"]["samples"],
             out / "report.json")
    print(json.dumps({"out_dir": str(out), "total": report["total"], "run": run}))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
