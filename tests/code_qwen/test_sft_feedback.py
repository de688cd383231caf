"""The tiny code-sft loop of the Qwen2 recipe: stage 1 on the generated instruction data, an execution-feedback round
sampling from stage 1's export (here a sampler answering from the problems' own solutions, one right and one wrong
answer each, in place of the tiny model), stage 2 on exactly the verified answers, and the paired gain of stage 2
over stage 1 on the held-out problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import code_qwen.feedback as fb
from code_qwen import sft
from code_qwen.problem_data import solved_answer
from eval.code.feedback import sampling_prompt

TINY = ["model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
        "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.seq_len=256",
        "train.micro_batch_size=4", "train.log_every=1", "eval.limit=3", "eval.max_new_tokens=8",
        "eval.batch_size=3", "train.max_steps=2", "train.save_every=2"]


def test_stage2_trains_on_the_verified_answers_of_stage1s_export(tmp_path, monkeypatch):
    seen_models: list[str] = []

    def sampler_for(cfg):
        seen_models.append(cfg.model)
        answers = {}
        for p in fb.load_problems(cfg)[0]:
            answers[sampling_prompt(p)] = [solved_answer(p), "```python\ndef f(x):\n    return None\n```"]
        return lambda prompts, seed: [answers[p] for p in prompts]

    monkeypatch.setattr(fb, "load_sampler", sampler_for)
    monkeypatch.chdir(tmp_path)
    feedback_cfg = Path(sft.__file__).parent / "configs" / "feedback" / "tiny.yaml"
    args = ["runs_dir=runs", "run_name=t", "init_from=none", "problem_data.n_sft=16", "problem_data.n_pool=5",
            f"feedback.config={feedback_cfg}", "feedback.overrides=[sampling.k=2, decontamination.enabled=false]",
            *TINY]
    record = sft.main(args)
    assert list(record) == ["stage1", "stage2"]
    assert seen_models == [str(Path("runs/code-sft/t-stage1/export"))]
    report = json.loads(Path("data/code_feedback_tiny/report.json").read_text())
    assert report["languages"]["python"] | {"pass_rate": None} == {
        "problems": 5, "samples": 10, "passed": 5, "pass_rate": None, "problems_solved": 5, "kept": 5,
        "dropped": {"failed": 5}}
    stage2_cfg = yaml.safe_load(Path("runs/code-sft/t-stage2/config.yaml").read_text())
    assert stage2_cfg["data"]["train_files"] == ["data/code_feedback_tiny/sft.jsonl"]
    assert stage2_cfg["init_from"] == str(Path("runs/code-sft/t-stage1/export"))
    gain = json.loads(Path("runs/code-sft/t/feedback_gain.json").read_text())
    assert gain["before"]["stage"] == "stage1" and gain["after"]["stage"] == "stage2"
    assert gain["gain"]["n"] == 3 and gain["gain"]["difference"] == pytest.approx(
        gain["after"]["accuracy"] - gain["before"]["accuracy"])
    # re-running resumes: both stages are finished and the round's data exists, so nothing is sampled again
    sft.main(args)
    assert len(seen_models) == 1
