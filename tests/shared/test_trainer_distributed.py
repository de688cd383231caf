"""Two DeepSpeed processes over gloo, all in two torchrun launches (a process group costs seconds to start):

- ZeRO-1, 2 and 3 == one process with the same global batch (metrics) == a plain torch.optim.AdamW loop with
  the same parameter groups, weight decay 0.5 and clipping at 0.1 (weights within 1e-6 after 4 steps; ZeRO-3
  resumed from its step-3 checkpoint for the last step);
- ZeRO-3 with attention dropout 0.1 and log_every 3, SIGKILLed in step 5 of 8; one rank's state of the newest
  checkpoint (step 4) is then corrupted, so the re-run (train.on_bad_checkpoint=previous) must make both ranks
  agree to resume from step 2: losses, metric lines and final weights equal the uninterrupted run's;
- bf16 under ZeRO-1 and ZeRO-3 on two ranks trains (losses within bf16 noise of fp32);
- one process continues a 2-rank run without ZeRO (same result), and refuses to resume a checkpoint written by
  two ZeRO ranks, with a message saying why.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from shared.checkpoint import CheckpointLoadError
from shared.config import RunConfig
from shared.data import ResumableSampler, SamplerLayout
from shared.distributed import free_port
from shared.metrics import read_metrics
from shared.modeling import load_model
from shared.packed_attention import use_packed_attention
from shared.packed_loss import packed_loss_sum
from shared.packing import collate_rows
from shared.schedules import build_scheduler
from shared.trainer import Trainer
from tests.shared.trainer_helpers import ROOT, one_thread, tiny_config, tiny_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

# Constant lr (after warm-up) so that extending max_steps for the resume does not change the schedule.
COMMON = ["train.max_steps=4", "train.save_every=10", "train.schedule.name=constant", "train.optimizer.lr=3e-4",
          "train.optimizer.weight_decay=0.5", "train.optimizer.grad_clip=0.1"]
DROPOUT = ["train.zero_stage=3", "model.tiny.attention_dropout=0.1", "train.log_every=3", "train.max_steps=8",
           "train.save_every=2", "train.keep_last=4"]


def torchrun(workdir: Path, runs: list[list[str]], kill: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "tests.shared.trainer_child", str(workdir), "train.micro_batch_size=2", "train.grad_accum=1"]
    for extra in runs:
        cmd += ["--", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "QS_TEST_KILL"):
        env.pop(key, None)  # torchrun sets its own
    if kill:
        env["QS_TEST_KILL"] = kill
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def plain_adamw(cfg: RunConfig, ds, tok) -> torch.nn.Module:
    """The same optimisation in plain torch: one process, loss = token mean over the global batch, clip, AdamW."""
    t, o = cfg.train, cfg.train.optimizer
    torch.manual_seed(t.seed)
    model = load_model(cfg.model, tok, "fp32", seed=t.seed)
    use_packed_attention(model)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=o.lr, betas=o.betas, eps=o.eps)
    sched = build_scheduler(opt, t.schedule, t.max_steps)
    sampler = ResumableSampler(len(ds), t.seed, SamplerLayout(2, 2, 1), 0)
    model.train()
    for _ in range(t.max_steps):
        batches = [collate_rows([ds[i] for i in micro], tok.pad_token_id) for micro in sampler.next_step()]
        n_targets = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
        for batch in batches:
            loss, _ = packed_loss_sum(model, batch)
            (loss / n_targets).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad()
    return model


def assert_same_weights(export: Path, model: torch.nn.Module, atol: float) -> None:
    exported = dict(AutoModelForCausalLM.from_pretrained(export).named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(exported[name], p.detach(), rtol=0, atol=atol, msg=f"{export}: {name}")


def test_zero_stages_equal_plain_adamw_and_dropout_resume_equals_straight_run(tmp_path, caplog):
    tok, ds = tiny_data(tmp_path)
    runs = tmp_path / "runs" / "t"
    first = torchrun(tmp_path, [
        [*COMMON, "train.zero_stage=1", "run_name=zero1"],
        [*COMMON, "train.zero_stage=2", "run_name=zero2"],
        [*COMMON, "train.zero_stage=3", "run_name=zero3", "train.max_steps=3"],
        [*COMMON, "train.zero_stage=3", "run_name=zero3"],  # resumes zero3 from step 3 for its 4th step
        [*COMMON, "train.zero_stage=0", "run_name=zero0", "train.max_steps=2"],  # resumed below by one process
        [*COMMON, "train.zero_stage=1", "run_name=bf16-zero1", "train.precision=bf16"],
        [*COMMON, "train.zero_stage=3", "run_name=bf16-zero3", "train.precision=bf16"],
        [*DROPOUT, "run_name=straight"],
        [*DROPOUT, "run_name=killed"],
    ], kill="train:5:killed")
    assert first.returncode != 0 and (runs / "straight" / "export").is_dir(), first.stderr[-3000:]
    assert f"resuming from {runs / 'zero3' / 'checkpoints' / 'step-3'}" in first.stderr

    # One process, 2 rows x 2 accumulation steps, DeepSpeed without ZeRO: the metrics every stage must show.
    reference_cfg = tiny_config(tmp_path / "runs", "run_name=single", "train.micro_batch_size=2", "train.grad_accum=2",
                                *COMMON)
    Trainer(reference_cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    single = read_metrics(runs / "single")
    plain = plain_adamw(reference_cfg, ds, tok)
    for run in ("single", "zero1", "zero2", "zero3"):
        assert_same_weights(runs / run / "export", plain, atol=1e-6)
        records = read_metrics(runs / run)
        assert [r["step"] for r in records] == [1, 2, 3, 4]
        for r, s in zip(records, single, strict=True):
            assert r["loss"] == pytest.approx(s["loss"], rel=1e-6), (run, r["step"])
            # Both fp64 sums of squares of the same fp32 gradients (reduced in another order over 2 ranks).
            assert r["grad_norm"] == pytest.approx(s["grad_norm"], rel=1e-6), (run, r["step"])
            assert r["tokens"] == s["tokens"] and r["lr"] == s["lr"]

    # bf16 over 2 ranks (fp32 accumulation and gloo reduction): the fp32 losses within bf16 noise.
    for run in ("bf16-zero1", "bf16-zero3"):
        losses = [r["loss"] for r in read_metrics(runs / run)]
        assert losses == pytest.approx([r["loss"] for r in single], rel=1e-2), run

    # The killed run died in step 5 with checkpoints 2 and 4; corrupt rank 1's state of step 4 (same size).
    killed = runs / "killed"
    assert [r["step"] for r in read_metrics(killed)] == [3]
    state = killed / "checkpoints" / "step-4" / "state-rank1.pt"
    state.write_bytes(b"\0" * state.stat().st_size)
    second = torchrun(tmp_path, [[*DROPOUT, "run_name=killed", "train.on_bad_checkpoint=previous"]])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "step-4 cannot be resumed from: it does not load (rank 1: " in second.stderr
    # Each rank says where it resumed: both from step 2.
    assert second.stderr.count("resuming from") == 2
    assert second.stderr.count(f"resuming from {killed / 'checkpoints' / 'step-2'}") == 2
    resumed, straight = read_metrics(killed), read_metrics(runs / "straight")
    assert [r["step"] for r in resumed] == [3, 6, 8]
    timing = {"tokens_per_s", "mfu"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in timing} for r in straight]
    assert_same_weights(killed / "export", AutoModelForCausalLM.from_pretrained(runs / "straight" / "export"), 1e-6)
    for rank in (0, 1):  # the same samples, in the same steps, on each rank
        assert (killed / f"samples-rank{rank}.jsonl").read_text() == (runs / "straight" / f"samples-rank{rank}.jsonl").read_text()

    # Another world size without ZeRO partitioning works: one process (2 rows x 2 accumulation steps) continues
    # the 2-rank run's step-2 checkpoint and ends where the 4-step runs ended.
    cfg = tiny_config(tmp_path / "runs", *COMMON, "run_name=zero0", "train.micro_batch_size=2", "train.grad_accum=2")
    with caplog.at_level(logging.INFO):
        Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    assert f"resuming from {runs / 'zero0' / 'checkpoints' / 'step-2'}" in caplog.text
    assert [r["loss"] for r in read_metrics(runs / "zero0")] == pytest.approx([r["loss"] for r in single], rel=1e-6)
    assert_same_weights(runs / "zero0" / "export", plain, atol=1e-6)

    # Another world size under ZeRO: refused before anything is loaded or truncated.
    before = (runs / "zero2" / "metrics.jsonl").read_text()
    cfg = tiny_config(tmp_path / "runs", *COMMON, "train.zero_stage=2", "run_name=zero2", "train.max_steps=6")
    with pytest.raises(CheckpointLoadError, match=r"step-4 was written by 2 ranks and this run has 1: under ZeRO-2"):
        Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    assert (runs / "zero2" / "metrics.jsonl").read_text() == before
