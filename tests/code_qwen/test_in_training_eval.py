"""The local HumanEval-format problems of the tiny in-training evaluation are sound: through the real evaluator
(sandboxed execution) every canonical solution passes and wrong solutions fail; the set is deterministic."""

from __future__ import annotations

import json
import re

import pytest

from code_qwen.in_training_eval import InTrainingEvalConfig, check_schedule
from code_qwen.local_problems import TEMPLATES, build_problems, write_problems
from eval.code.run import EvalOptions, run_evaluation
from shared.config import ConfigError

N = len(TEMPLATES) * 2


def _evaluate(tmp_path, problems_file, completions: dict[str, str], name: str) -> list[dict]:
    """eval.code's verdict for one completion per problem."""
    samples = tmp_path / f"{name}.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in completions.items()))
    out = tmp_path / name
    summary = run_evaluation(EvalOptions(benchmark="humaneval", problems=str(problems_file), out=out,
                                         samples=str(samples), progress=False))
    assert summary["n_problems"] == N
    return [json.loads(line) for line in (out / "results.jsonl").open()]


def _off_by_one(body: str) -> str:
    """The body with each constant one larger; bodies without constants return None instead."""
    changed = re.sub(r"(?<![=\w])\d+", lambda m: str(int(m.group()) + 1), body.replace("default=0", "default=Z"))
    changed = changed.replace("default=Z", "default=0")
    return changed if changed != body else "    return None\n"


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory):
    return write_problems(tmp_path_factory.mktemp("local") / "problems.jsonl", n=N, seed=3)


def test_canonical_solutions_pass(problems_file, tmp_path):
    problems = [json.loads(line) for line in problems_file.open()]
    results = _evaluate(tmp_path, problems_file, {p["task_id"]: p["canonical_solution"] for p in problems}, "good")
    assert all(r["passed"] for r in results), [r for r in results if not r["passed"]][:2]


def test_wrong_solutions_fail(problems_file, tmp_path):
    problems = [json.loads(line) for line in problems_file.open()]
    # The canonical body with each of its constants changed by one (bodies without one return None).
    wrong = {p["task_id"]: _off_by_one(p["canonical_solution"]) for p in problems}
    results = _evaluate(tmp_path, problems_file, wrong, "bad")
    assert not any(r["passed"] for r in results)


def test_problem_set_is_deterministic_and_rewritten_only_when_different(tmp_path):
    assert build_problems(12, seed=1) == build_problems(12, seed=1)
    assert build_problems(12, seed=1) != build_problems(12, seed=2)
    path = write_problems(tmp_path / "p.jsonl", n=12, seed=1)
    stamp = path.stat().st_mtime_ns
    write_problems(path, n=12, seed=1)
    assert path.stat().st_mtime_ns == stamp
    ids = [p["task_id"] for p in build_problems(12)]
    assert len(set(ids)) == 12 and all(t.startswith("LocalFn/") for t in ids)


def test_eval_schedule_must_fall_on_checkpoints():
    check_schedule(InTrainingEvalConfig(problems="local", every=4), save_every=2)
    check_schedule(InTrainingEvalConfig(problems="", every=3), save_every=2)  # evaluation off: nothing to check
    with pytest.raises(ConfigError):
        check_schedule(InTrainingEvalConfig(problems="local", every=3), save_every=2)


def test_evaluation_of_a_live_model_on_humaneval_lands_in_its_step_folder(shared_data, tmp_path):
    from code_qwen.in_training_eval import evaluate_into
    from shared.config import ModelConfig, TinyModelConfig
    from shared.modeling import load_model, load_tokenizer

    problems = shared_data("humaneval", "HumanEval.jsonl.gz")
    mcfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            num_key_value_heads=1, intermediate_size=64))
    tokenizer = load_tokenizer(mcfg)
    model = load_model(mcfg, tokenizer, seed=0)
    model.train()
    model.config.use_cache = False  # as under gradient checkpointing
    cfg = InTrainingEvalConfig(problems=str(problems), benchmark="humaneval", limit=2, max_new_tokens=8)
    out = tmp_path / "eval" / cfg.folder_name() / "step-7"
    summary = evaluate_into(out, 7, cfg, str(problems), model, tokenizer, chat=False)
    assert cfg.folder_name() == "humaneval"
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["step"] == 7 and summary["n_problems"] == 2 and 0.0 <= summary["pass@1"] <= 1.0
    assert {json.loads(line)["task_id"] for line in (out / "results.jsonl").open()} == {"HumanEval/0", "HumanEval/1"}
    assert model.training and model.config.use_cache is False  # left as training had it
    assert not list(out.parent.glob("*.tmp*"))
