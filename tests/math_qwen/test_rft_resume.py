"""A sampling run killed with SIGKILL (a real subprocess), or a samples file torn inside a chunk, resumes without
redrawing finished problems to the same bytes as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from math_qwen.data import SyntheticDataConfig, prepare_synthetic
from math_qwen.rft_problems import read_problems
from math_qwen.rft_sampling import SamplingConfig, read_finished, sample_problems
from shared.config import ModelConfig, TinyModelConfig
from shared.modeling import load_model, load_tokenizer
from tests.counting_engine import CountingEngine

ROOT = Path(__file__).resolve().parents[2]
N_PROBLEMS = 40
SAMPLING = SamplingConfig(k=2, max_new_tokens=8, batch_size=8, problems_per_chunk=1, seed=3)
SCRIPT = """
import sys
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
from math_qwen.rft_problems import read_problems
from math_qwen.rft_sampling import SamplingConfig, sample_problems
model_dir, chats, out = sys.argv[1:4]
cfg = SamplingConfig(k=2, max_new_tokens=8, batch_size=8, problems_per_chunk=1, seed=3)
sample_problems(AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir),
                read_problems([Path(chats)]).problems, Path(out), cfg, model_name="tiny")
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: a second thread only waits (badly so on a shared machine)
    root = tmp_path_factory.mktemp("rft_resume")
    tok = load_tokenizer(ModelConfig())
    tiny = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            num_key_value_heads=1, intermediate_size=64))  # fmt: skip
    model = load_model(tiny, tok, precision="fp32", seed=0)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    prepared = prepare_synthetic(root / "data", SyntheticDataConfig(n_train=N_PROBLEMS, n_heldout=2))
    yield root, model, tok, prepared.train_files[0]
    torch.set_num_threads(threads)


def lines_of(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_killed_sampling_resumes_without_redrawing(setup):
    root, model, tok, chats = setup
    problems = read_problems([chats]).problems
    assert len(problems) == N_PROBLEMS
    out = root / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(root / "model"), str(chats), str(out)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 90
    while lines_of(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_finished(out)
    assert 3 <= len(before) < N_PROBLEMS, "the run must be killed part-way"
    with open(out, "ab") as f:  # and a torn write, as a kill in the middle of append_records leaves
        f.write(b'{"task_id": "train_chat.jsonl:9')

    engine = CountingEngine(model, tok)
    resumed = sample_problems(engine, tok, problems, out, SAMPLING, model_name="tiny")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["task_id"] for r in records) == sorted(p.task_id for p in problems)  # each exactly once
    assert engine.generated == SAMPLING.k * (N_PROBLEMS - len(before))  # finished problems were not drawn again
    assert all(resumed[t] == r for t, r in before.items())

    reference = root / "uninterrupted.jsonl"
    sample_problems(model, tok, problems, reference, SAMPLING, model_name="tiny")
    assert out.read_bytes() == reference.read_bytes()
    again = CountingEngine(model, tok)
    assert sample_problems(again, tok, problems, out, SAMPLING) == resumed and again.generated == 0


def test_file_torn_inside_a_chunk_resumes_to_the_same_bytes(setup):
    """Issue 17: a cut after some complete lines of a chunk (not at a chunk boundary) changes nothing."""
    root, model, tok, chats = setup
    problems = read_problems([chats]).problems
    cfg = SamplingConfig(k=2, max_new_tokens=8, batch_size=3, problems_per_chunk=4, seed=3)
    whole = root / "whole.jsonl"
    sample_problems(model, tok, problems, whole, cfg, model_name="tiny")
    lines = whole.read_bytes().splitlines(keepends=True)
    torn = root / "torn.jsonl"
    torn.write_bytes(b"".join(lines[:6]) + lines[6][:25])  # chunk 1 = problems 4-7: two whole lines, one torn
    engine = CountingEngine(model, tok)
    sample_problems(engine, tok, problems, torn, cfg, model_name="tiny")
    assert torn.read_bytes() == whole.read_bytes()
    # chunk 1's pairs come in blocks of 3, 3, 2: the first holds only problems 4 and 5 (done), the other two
    # (5 pairs) are drawn again whole; chunks 2-9 are new: 32 problems x 2.
    assert engine.generated == 5 + 32 * 2


def test_problems_without_gold_answer_are_reported_and_not_sampled(tmp_path):
    chats = tmp_path / "chats.jsonl"
    good = {"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "<<1+1=2>>2\n#### 2"}]}
    no_gold = {"messages": [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because."}]}
    boxed = {"messages": [{"role": "user", "content": "x?"}, {"role": "assistant", "content": "So $\\boxed{4}$."}]}
    chats.write_text("\n".join(json.dumps(c) for c in (good, no_gold, boxed)) + "\n{broken\n")
    found = read_problems([chats])
    assert [(p.task_id, p.gold, p.benchmark) for p in found.problems] == [
        ("chats.jsonl:1", "2", "gsm8k"), ("chats.jsonl:3", "4", "math")]
    assert dict(found.skipped) == {"no_parsable_gold_answer": 1, "invalid_conversation": 1}
    assert found.skipped_where[0] == f"{chats}:2: no_parsable_gold_answer"
