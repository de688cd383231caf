"""In-training code evaluation: the schedule falls on checkpoints, and a live model's evaluation lands in its step
folder (the generated problem set itself is tested in tests/data_recipes/test_code_problems.py)."""

from __future__ import annotations

import json

import pytest

from code_qwen.in_training_eval import InTrainingEvalConfig, check_schedule
from shared.config import ConfigError


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
