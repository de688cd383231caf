"""The eval CLIs with --model under torchrun (2 gloo ranks): the same samples bytes and summary as one process,
also after a rank is killed mid-sampling and the job is run again."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests import launch

pytestmark = pytest.mark.timeout(600)
CODE_PROBLEMS = [
    {"task_id": f"HumanEval/{i}", "entry_point": name, "prompt": f"def {name}(a, b):\n    \"\"\"{doc}\"\"\"\n",
     "canonical_solution": f"    return {expr}\n", "test": f"def check(candidate):\n    assert candidate(3, 2) == {value}\n"}
    for i, (name, doc, expr, value) in enumerate([("add", "Sum of a and b.", "a + b", 5),
                                                   ("sub", "a minus b.", "a - b", 1),
                                                   ("mul", "Product of a and b.", "a * b", 6)])]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from shared.config import ModelConfig, TinyModelConfig
    from shared.modeling import load_model, load_tokenizer

    root = tmp_path_factory.mktemp("sharded")
    tok = load_tokenizer(ModelConfig())
    tiny = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                            num_key_value_heads=1, intermediate_size=64))
    load_model(tiny, tok, precision="fp32", seed=0).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rows = [{"question": f"Ann has {i + 2} pens and buys {i} more. How many pens?", "answer": f"#### {2 * i + 2}"}
            for i in range(24)]
    (root / "gsm8k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "code.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CODE_PROBLEMS))
    return root


def math_args(root: Path, out: Path, limit: int, batch_size: int, max_new_tokens: int = 6) -> list[str]:
    return ["--benchmark", "gsm8k", "--problems", str(root / "gsm8k.jsonl"), "--model", str(root / "model"),
            "--out", str(out), "--chat", "--num-samples", "3", "--temperature", "0.9", "--top-p", "0.95",
            "--seed", "5", "--max-new-tokens", str(max_new_tokens), "--batch-size", str(batch_size),
            "--limit", str(limit)]


def samples_of(out: Path) -> bytes:
    assert not (out / "samples.parts").exists()  # the parts are removed once the samples file is written
    return (out / "samples.jsonl").read_bytes()


def test_eval_math_two_ranks_equal_one(assets, tmp_path):
    launch.run_here("eval.math", math_args(assets, tmp_path / "r1", limit=5, batch_size=4))
    launch.run("eval.math", math_args(assets, tmp_path / "r2", limit=5, batch_size=4), 2)
    one, two = samples_of(tmp_path / "r1"), samples_of(tmp_path / "r2")
    assert one == two
    ids = [json.loads(line)["task_id"] for line in one.splitlines()]
    assert ids == [str(i) for i in range(5) for _ in range(3)]  # problem order, 3 samples each
    assert len({json.loads(line)["completion"] for line in one.splitlines()}) > 5  # really sampled
    summaries = [json.loads((tmp_path / f"r{r}" / "summary.json").read_text()) for r in (1, 2)]
    assert summaries[0] == summaries[1] and summaries[0]["n_samples"] == 15


def test_eval_code_two_ranks_equal_one(assets, tmp_path):
    def args(out: str) -> list[str]:
        return ["--benchmark", "humaneval", "--problems", str(assets / "code.jsonl"), "--model", str(assets / "model"),
                "--out", str(tmp_path / out), "--num-samples", "2", "--temperature", "0.8", "--max-new-tokens", "6",
                "--batch-size", "3", "--seed", "1", "--quiet", "--sandbox", "none"]

    launch.run_here("eval.code", args("r1"))
    launch.run("eval.code", args("r2"), 2)
    one, two = samples_of(tmp_path / "r1"), samples_of(tmp_path / "r2")
    assert one == two and len(one.splitlines()) == 6
    summaries = [json.loads((tmp_path / f"r{r}" / "summary.json").read_text()) for r in (1, 2)]
    assert summaries[0] == summaries[1] and summaries[0]["n_samples"] == 6 and "pass@2" in summaries[0]


def test_rank_killed_mid_sampling_then_rerun_gives_the_same_bytes(assets, tmp_path):
    out = tmp_path / "killed"
    args = math_args(assets, out, limit=24, batch_size=1, max_new_tokens=12)  # 72 one-pair blocks
    proc = launch.start("eval.math", args, 2, tmp_path / "killed.log")
    parts = out / "samples.parts"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(p.read_bytes().count(b"\n") for p in parts.glob("rank-*.jsonl")) >= 6:
            break
        time.sleep(0.01)
    ranks = launch.children(proc.pid)
    assert proc.poll() is None and len(ranks) == 2, "the job must be killed part-way"
    os.kill(ranks[1], signal.SIGKILL)
    assert proc.wait(timeout=120) != 0  # torchrun tears the job down
    written = sum(p.read_bytes().count(b"\n") for p in parts.glob("rank-*.jsonl"))
    assert not (out / "samples.jsonl").exists() and 6 <= written < 72

    rerun = launch.run("eval.math", args, 2)  # the same job again: continues from the parts of both ranks
    todo = [tuple(map(int, m)) for m in re.findall(r"rank \d/2: (\d+) of my (\d+) blocks", rerun.stderr)]
    assert len(todo) == 2 and sum(mine - left for left, mine in todo) == written  # nothing redrawn
    launch.run_here("eval.math", math_args(assets, tmp_path / "whole", limit=24, batch_size=1, max_new_tokens=12))
    assert samples_of(out) == samples_of(tmp_path / "whole")
