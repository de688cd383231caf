"""One evaluation end to end: load problems, generate samples if asked, execute, write results and summary.

`evaluate_model_on_subset` is the importable entry for in-training evaluation (the code_qwen recipes call
it every N steps with the live model and write the results beside the checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.code import evalplus_runner, humanevalpack, prompts, report
from eval.code.languages import LANGUAGES, get_language
from eval.code.problems import InputError, load_problem_records, read_samples
from eval.code.sandbox import Sandbox
from shared.distributed import is_main

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    benchmark: str
    problems: str
    out: Path
    language: str | None = None
    samples: str | None = None
    model: Any = None  # path, hub name or a loaded PreTrainedModel (with tokenizer)
    tokenizer: Any = None
    limit: int | None = None
    n: int = 1
    temperature: float = 0.0
    top_p: float = 0.95
    max_new_tokens: int = 512
    batch_size: int = 8
    chat: bool = False
    seed: int = 0
    workers: int | None = None
    sandbox: str = "auto"
    progress: bool = True


def load_problems(benchmark: str, source: str, language: str | None, limit: int | None) -> dict[str, dict]:
    """Problems keyed by task id; for humanevalpack a folder of <language>.jsonl files is accepted."""
    if benchmark == "humanevalpack":
        langs = [get_language(language)] if language else list(LANGUAGES.values())
        if Path(source).is_dir():
            files = [Path(source) / f"{lang.dataset}.jsonl" for lang in langs]
            records = [r for f in files if f.exists() for r in load_problem_records(str(f))[:limit]]
            if not records:
                raise InputError(f"{source}: no {' / '.join(f.name for f in files)} in this folder")
        elif Path(source).exists() or ":" in source:
            records = load_problem_records(source)[:limit]
        else:  # hub: bigcode/humanevalpack has one config per language, named like our short names
            records = [r for lang in langs for r in load_problem_records(f"{source}:{lang.name}")[:limit]]
        return {str(r["task_id"]): r for r in records}
    records = load_problem_records(source)[:limit]
    return evalplus_runner.prepare_problems(records, benchmark)


def generate_samples(opts: EvalOptions, problems: dict[str, dict], work_dir: Path | None = None) -> list[dict]:
    """Samples in problem order, n per problem; under torchrun call on every rank (each gets all samples)."""
    from eval.sharded import GenerationSpec, generate_tasks

    tids = list(problems)
    langs = [prompts.language_for(opts.benchmark, opts.language) if opts.benchmark != "humanevalpack"
             else (get_language(opts.language) if opts.language else _lang_of(t)) for t in tids]
    texts = [prompts.generation_prompt(problems[t], lang, opts.chat) for t, lang in zip(tids, langs, strict=True)]
    # Stop sequences only for base-model continuations; a chat answer ends with its own end-of-turn token.
    stops = sorted({s for lang in langs for s in lang.stop}) if not opts.chat and opts.benchmark != "mbpp" else []
    spec = GenerationSpec(n=opts.n, temperature=opts.temperature, top_p=opts.top_p,
                          max_new_tokens=opts.max_new_tokens, stop=tuple(stops), seed=opts.seed,
                          batch_size=opts.batch_size, chat=opts.chat)
    raw = generate_tasks(opts.model, list(zip(tids, texts, strict=True)), spec, tokenizer=opts.tokenizer,
                         work_dir=work_dir, progress=opts.progress)
    return [{"task_id": t, "completion": prompts.postprocess(r, problems[t], lang, opts.chat, opts.benchmark),
             "raw": r} for t, lang in zip(tids, langs, strict=True) for r in raw[t]]


def _lang_of(task_id: str):
    from eval.code.languages import language_of_task
    return language_of_task(task_id)


def run_evaluation(opts: EvalOptions) -> dict[str, Any] | None:
    """Under torchrun (with --model) every rank generates its share; rank 0 executes and writes and returns the
    summary, the other ranks None."""
    problems = load_problems(opts.benchmark, opts.problems, opts.language, opts.limit)
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.samples:
        samples = read_samples(opts.samples)
        if opts.limit:
            samples = [s for s in samples if s["task_id"] in problems]
    else:
        from eval.sharded import release_work_dir, write_jsonl_atomic  # torch only when generating

        parts = opts.out / "samples.parts"  # finished blocks of every rank: a rerun continues from them
        samples = generate_samples(opts, problems, parts)
        if is_main():
            write_jsonl_atomic(opts.out / "samples.jsonl", samples)
        release_work_dir(parts)
    if not is_main():
        return None
    unknown = sorted({s["task_id"] for s in samples} - set(problems))
    if unknown:
        raise InputError(f"{len(unknown)} sample task ids are not in {opts.problems}, e.g. {unknown[:3]}")
    extra: dict[str, Any] = {"problems_source": str(opts.problems), "sandbox": None}
    if opts.benchmark == "humanevalpack":
        sandbox = Sandbox(opts.sandbox)
        results, env_errors = humanevalpack.evaluate_humanevalpack(
            problems, samples, language=opts.language, sandbox=sandbox, workers=opts.workers, progress=opts.progress)
        dataset = "HumanEvalPack synthesize" + (f" ({get_language(opts.language).name})" if opts.language else "")
        if env_errors:
            extra["environment_errors"] = env_errors
    else:
        sandbox = Sandbox(opts.sandbox)
        results = evalplus_runner.evaluate_evalplus(problems, samples, opts.benchmark, sandbox=sandbox,
                                                    workers=opts.workers, progress=opts.progress)
        dataset = evalplus_runner.dataset_label(problems, opts.benchmark, str(opts.problems))
    extra["sandbox"] = sandbox.name
    summary = report.summarize(opts.benchmark, results, dataset=dataset, extra=extra)
    report.write_outputs(opts.out, results, summary)
    return summary


def evaluate_model_on_subset(model: Any, tokenizer: Any, benchmark: str, problems: str, out_dir: str | Path, *,
                             language: str | None = None, limit: int | None = 20, n: int = 1,
                             temperature: float = 0.0, max_new_tokens: int = 384, batch_size: int = 8,
                             chat: bool = False, workers: int | None = None, progress: bool = False) -> dict:
    """Generate with a live (or saved) model on the first `limit` problems and evaluate: the summary dict.

    Under torchrun call it on every rank: they share the generation, rank 0 executes, all get the summary."""
    from shared.distributed import broadcast_object

    summary = run_evaluation(EvalOptions(
        benchmark=benchmark, problems=str(problems), out=Path(out_dir), language=language, model=model,
        tokenizer=tokenizer, limit=limit, n=n, temperature=temperature, max_new_tokens=max_new_tokens,
        batch_size=batch_size, chat=chat, workers=workers, progress=progress))
    return broadcast_object(summary)
