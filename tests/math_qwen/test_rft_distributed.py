"""`torchrun --nproc_per_node 2 -m math_qwen.rft` (gloo on CPU) against one process: the same samples and
augmented bytes, one rounds.jsonl line per round, every problem sampled exactly k times, written once."""

from __future__ import annotations

import json

import pytest

from tests import launch

pytestmark = pytest.mark.timeout(900)
K = 3
SMALL = ["model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
         "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.max_steps=2",
         "train.save_every=2", "train.log_every=1", "train.seq_len=256", "train.micro_batch_size=2",
         "data.synthetic.n_train=40", "data.synthetic.n_heldout=4", "eval.max_new_tokens=8", "eval.batch_size=4",
         "eval.baseline=false", f"rft.sampling.k={K}", "rft.sampling.max_problems=7", "rft.sampling.max_new_tokens=8",
         "rft.sampling.problems_per_chunk=2", "rft.sampling.batch_size=4", "rft.sampling.seed=2"]  # fmt: skip


def test_rft_two_ranks_sample_and_write_like_one(tmp_path):
    from shared.config import ModelConfig, TinyModelConfig
    from shared.modeling import load_model, load_tokenizer

    tok = load_tokenizer(ModelConfig())
    tiny = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            num_key_value_heads=1, intermediate_size=64))
    load_model(tiny, tok, precision="fp32", seed=0).save_pretrained(tmp_path / "sampler")
    tok.save_pretrained(tmp_path / "sampler")
    for ranks in (1, 2):
        args = [*SMALL, f"runs_dir={tmp_path / f'runs{ranks}'}", "run_name=t", f"rft.sampler={tmp_path / 'sampler'}"]
        if ranks == 1:
            launch.run_here("math_qwen.rft", args)
        else:
            launch.run("math_qwen.rft", args, ranks, timeout=600)
    one, two = (tmp_path / f"runs{r}" / "math-rft" / "t" for r in (1, 2))
    for name in ("round-1/samples.jsonl", "round-1/augmented.jsonl"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    records = [json.loads(line) for line in (two / "round-1" / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 7 and len({r["task_id"] for r in records}) == 7
    assert all(len(r["completions"]) == K for r in records)
    assert not (two / "round-1" / "samples.parts").exists()
    lines = [[json.loads(line) for line in (run / "rounds.jsonl").read_text().splitlines()] for run in (one, two)]
    assert [len(x) for x in lines] == [1, 1]  # written once, by rank 0
    for key in ("round", "problems", "samples_drawn", "coverage", "distinct_paths_kept"):
        assert lines[0][0][key] == lines[1][0][key], key
    assert lines[1][0]["samples_drawn"] == 7 * K
    assert (two / "export" / "config.json").exists() and json.loads((two / "eval" / "summary.json").read_text())
