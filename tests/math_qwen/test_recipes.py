"""math-sft then math-rft end to end on a very small model: the run folders, summaries and rounds.jsonl that
the rest of the suite reads, and a re-run that resumes instead of retraining."""

from __future__ import annotations

import json

import pytest
import torch

from math_qwen import rft, sft
from shared.config import load_config

SMALL = ["model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
         "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.max_steps=3",
         "train.save_every=2", "train.log_every=1", "train.seq_len=512", "data.synthetic.n_train=40",
         "data.synthetic.n_heldout=6", "eval.max_new_tokens=12", "eval.batch_size=8"]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sft_then_rft_round(tmp_path):
    runs = tmp_path / "runs"
    common = [*SMALL, f"runs_dir={runs}", "run_name=t"]
    result = sft.run(load_config(sft.Config, sft.DEFAULT_CONFIG, common))
    run_dir = runs / "math-sft" / "t"
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert summary["n_problems"] == 6 and summary["step"] == 3 and 0.0 <= summary["accuracy"] <= 1.0
    assert summary["untrained_accuracy"] == json.loads((run_dir / "eval/heldout/step-0/summary.json").read_text())["accuracy"]
    assert (run_dir / "eval/heldout/step-3/results.jsonl").read_text().count("\n") == 6
    assert (run_dir / "data/heldout.jsonl").exists() and (run_dir / "export/config.json").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    again = sft.run(load_config(sft.Config, sft.DEFAULT_CONFIG, common))  # resumes: nothing left to train
    assert again["step"] == 3 and again["eval_after"] == result["eval_after"]

    rft_cfg = load_config(rft.Config, rft.DEFAULT_CONFIG,
                          [*common, "rft.sampling.k=2", "rft.sampling.max_problems=8", "rft.sampling.max_new_tokens=12", "rft.max_steps=3",
                           "rft.sampling.problems_per_chunk=3", "rft.sampling.batch_size=16"])  # fmt: skip
    (line,) = rft.run(rft_cfg)
    rft_dir = runs / "math-rft" / "t"
    assert json.loads((rft_dir / "rounds.jsonl").read_text()) == line
    assert line["round"] == 1 and line["problems"] == 8 and line["samples_drawn"] == 16
    assert 0.0 <= line["coverage"] <= 1.0 and line["accuracy_before"] == summary["accuracy"]
    lo, hi = summary["ci95"]  # eval.stats' Wilson bound at 0 correct is 3e-17, not 0: compare with a tolerance
    assert lo - 1e-12 <= summary["accuracy"] <= hi + 1e-12 and summary["untrained_ci95"] is not None
    paired = line["paired_difference"]  # the same 6 held-out problems before and after the round
    assert paired["n"] == 6 and paired["difference"] == pytest.approx(line["accuracy_after"] - line["accuracy_before"])
    assert [s["samples"] for s in line["per_sampler"]] == [16]
    assert line["accuracy_after"] == json.loads((rft_dir / "eval" / "summary.json").read_text())["accuracy"]
    augmented = (rft_dir / "round-1" / "augmented.jsonl").read_text().splitlines()
    assert len(augmented) == line["distinct_paths_kept"]
    assert all(json.loads(a)["provenance"]["round"] == 1 for a in augmented)
    samples = [json.loads(s) for s in (rft_dir / "round-1" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and all(len(s["completions"]) == 2 for s in samples)
    assert (rft_dir / "export" / "config.json").exists() and (rft_dir / "round-1" / "metrics.jsonl").exists()
    assert rft.run(rft_cfg) == [line]  # a finished round is not redone
