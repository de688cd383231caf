"""One evaluation end to end: load problems, generate samples if asked, execute, write results and summary.

`evaluate_model_on_subset` is the importable entry for in-training evaluation (the code_qwen recipes call
it every N steps with the live model and write the results beside the checkpoint).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.code import evalplus_runner, humanevalpack, prompts, report
from eval.code.languages import LANGUAGES, get_language
from eval.code.problems import InputError, load_problem_records, read_samples
from eval.code.sandbox import Sandbox

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


def generate_samples(opts: EvalOptions, problems: dict[str, dict]) -> list[dict]:
    from eval.generate import generate_completions

    tids = list(problems)
    langs = [prompts.language_for(opts.benchmark, opts.language) if opts.benchmark != "humanevalpack"
             else (get_language(opts.language) if opts.language else _lang_of(t)) for t in tids]
    texts = [prompts.generation_prompt(problems[t], lang, opts.chat) for t, lang in zip(tids, langs, strict=True)]
    # Stop sequences only for base-model continuations; a chat answer ends with its own end-of-turn token.
    stops = sorted({s for lang in langs for s in lang.stop}) if not opts.chat and opts.benchmark != "mbpp" else None
    raw = generate_completions(opts.model, texts, tokenizer=opts.tokenizer, n=opts.n,
                               temperature=opts.temperature, top_p=opts.top_p, max_new_tokens=opts.max_new_tokens,
                               stop=stops, batch_size=opts.batch_size, seed=opts.seed, chat=opts.chat,
                               progress=opts.progress)
    samples = []
    for t, lang, outs in zip(tids, langs, raw, strict=True):
        for r in outs:
            samples.append({"task_id": t, "completion": prompts.postprocess(r, problems[t], lang, opts.chat,
                                                                               opts.benchmark), "raw": r})
    return samples


def _lang_of(task_id: str):
    from eval.code.languages import language_of_task
    return language_of_task(task_id)


def run_evaluation(opts: EvalOptions) -> dict[str, Any]:
    problems = load_problems(opts.benchmark, opts.problems, opts.language, opts.limit)
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.samples:
        samples = read_samples(opts.samples)
        if opts.limit:
            samples = [s for s in samples if s["task_id"] in problems]
    else:
        samples = generate_samples(opts, problems)
        with open(opts.out / "samples.jsonl", "w", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps(s) + "\n")
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
    """Generate with a live (or saved) model on the first `limit` problems and evaluate: the summary dict."""
    was_training = getattr(model, "training", False)
    try:
        return run_evaluation(EvalOptions(
            benchmark=benchmark, problems=str(problems), out=Path(out_dir), language=language, model=model,
            tokenizer=tokenizer, limit=limit, n=n, temperature=temperature, max_new_tokens=max_new_tokens,
            batch_size=batch_size, chat=chat, workers=workers, progress=progress))
    finally:
        if was_training:
            model.train()
