"""A sampling run killed with SIGKILL (a real subprocess) resumes without redrawing finished problems, and the
resumed samples equal those of an uninterrupted run."""

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
    assert {r["pid"] for r in before.values()} == {proc.pid}
    with open(out, "ab") as f:  # and a torn write, as a kill in the middle of append_records leaves
        f.write(b'{"task_id": "train_chat.jsonl:9')

    resumed = sample_problems(model, tok, problems, out, SAMPLING, model_name="tiny")
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["task_id"] for r in records) == sorted(p.task_id for p in problems)  # each exactly once
    for task_id, record in before.items():  # finished problems were not drawn again
        assert resumed[task_id] == record and record["pid"] == proc.pid
    assert {r["pid"] for r in records if r["task_id"] not in before} == {os.getpid()}

    reference = sample_problems(model, tok, problems, root / "uninterrupted.jsonl", SAMPLING, model_name="tiny")
    assert {t: r["completions"] for t, r in resumed.items()} == {t: r["completions"] for t, r in reference.items()}
    assert sample_problems(model, tok, problems, out, SAMPLING) == resumed  # a finished file draws nothing


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
