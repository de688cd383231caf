"""Real crashes (SIGKILL of a training process) and re-running the same command: the run continues exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from shared.config import ChatDataConfig
from shared.data import sft_dataset
from shared.metrics import read_metrics
from shared.modeling import load_tokenizer
from shared.trainer import Trainer
from tests.shared.trainer_helpers import ROOT, one_thread, tiny_config, write_chat_jsonl  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

ARGS = ["run_name=r", "train.max_steps=8", "train.save_every=2", "train.keep_last=2"]


def run_child(workdir, kill: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("QS_TEST_KILL", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    if kill:
        env["QS_TEST_KILL"] = kill
    cmd = [sys.executable, "-m", "tests.shared.trainer_child", str(workdir), *ARGS]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_mid_training_and_mid_checkpoint_then_same_command_continues_exactly(tmp_path):
    write_chat_jsonl(tmp_path / "chat.jsonl")
    run_dir = tmp_path / "runs" / "t" / "r"
    ckpts = run_dir / "checkpoints"

    # 1. Killed in the middle of step 6, after checkpoint 4 was written.
    first = run_child(tmp_path, kill="train:6")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert [r["step"] for r in read_metrics(run_dir)] == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-2", "step-4"]

    # 2. Same command: resumes at 4, then is killed while checkpoint 6 is being written.
    second = run_child(tmp_path, kill="checkpoint:6")
    assert second.returncode == -signal.SIGKILL, second.stderr[-2000:]
    assert f"resuming from {ckpts / 'step-4'}" in second.stderr
    assert (ckpts / ".step-6.tmp").is_dir() and not (ckpts / "step-6").exists()

    # 3. Same command: the half-written checkpoint 6 is ignored, the run resumes at 4 and finishes.
    third = run_child(tmp_path, kill=None)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"resuming from {ckpts / 'step-4'}" in third.stderr
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-6", "step-8"]  # keep_last=2, temp folder gone

    # The uninterrupted run, same config.
    cfg = tiny_config(tmp_path / "runs", *ARGS, "run_name=straight")
    tok = load_tokenizer(cfg.model)
    data = sft_dataset([tmp_path / "chat.jsonl"], tok, ChatDataConfig(default_system_prompt=None), cfg.train.seq_len)
    Trainer(cfg, recipe="t", dataset=data, tokenizer=tok, log_sample_ids=True).train()

    resumed, straight = read_metrics(run_dir), read_metrics(tmp_path / "runs" / "t" / "straight")
    assert [r["step"] for r in resumed] == list(range(1, 9))
    for key in ("loss", "lr", "tokens", "grad_norm", "target_tokens"):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key
    samples = [(tmp_path / "runs" / "t" / n / "samples-rank0.jsonl").read_text() for n in ("r", "straight")]
    assert samples[0] == samples[1] and len(samples[0].splitlines()) == 8
