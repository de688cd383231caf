"""Faults around checkpoints: incomplete or corrupt folders are reported; resuming from one stops the run with
its name and the reason (or, with train.on_bad_checkpoint=previous, uses the previous one), never restarts from
step 0, truncates nothing; a failing write (full disk) raises a clear error and keeps the previous checkpoint."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging

import pytest
import torch

from shared import checkpoint as ckpt
from shared.metrics import read_metrics
from shared.trainer import Trainer
from tests.shared.trainer_helpers import one_thread, tiny_config, tiny_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def trained(tmp_path):
    """A finished 3-step run with checkpoints at steps 1, 2 and 3."""
    tok, ds = tiny_data(tmp_path)
    cfg = tiny_config(tmp_path / "runs", "train.max_steps=3", "train.save_every=1", "train.keep_last=3")
    Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    return cfg, tok, ds, tmp_path / "runs" / "t" / "t"


def test_incomplete_and_truncated_checkpoints_are_reported(trained, caplog):
    _, _, _, run_dir = trained
    root = run_dir / "checkpoints"
    assert [s for s, _ in ckpt.complete_checkpoints(root)] == [3, 2, 1]
    (root / "step-3" / ckpt.COMPLETE).unlink()
    engine_file = next((root / "step-2" / "engine").glob("*model_states.pt"))
    engine_file.write_bytes(engine_file.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        assert [s for s, _ in ckpt.complete_checkpoints(root)] == [1]
    assert "step-3: no COMPLETE marker" in caplog.text
    assert "step-2: file engine/" in caplog.text and "100 bytes" in caplog.text


def test_corrupt_newest_checkpoint_stops_the_run_naming_it_or_resumes_from_the_previous(trained, caplog):
    cfg, tok, ds, run_dir = trained
    root = run_dir / "checkpoints"
    original = (run_dir / "metrics.jsonl").read_text()
    # Same size, garbage content: passes the size check, fails to load.
    # Its export is garbage too (the model is then built from the config; the engine state has the weights).
    for f in (next((root / "step-3" / "engine").glob("*model_states.pt")), root / "step-3" / "hf" / "model.safetensors"):
        f.write_bytes(b"\0" * f.stat().st_size)
    with pytest.raises(ckpt.CheckpointLoadError, match=r"step-3 cannot be resumed from: it does not load \(.*"
                       r"train.on_bad_checkpoint=previous"):
        Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    assert (run_dir / "metrics.jsonl").read_text() == original  # nothing truncated
    assert sorted(p.name for p in root.iterdir()) == ["step-1", "step-2", "step-3"]

    fallback = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, on_bad_checkpoint="previous"))
    with caplog.at_level(logging.INFO):
        Trainer(fallback, recipe="t", dataset=ds, tokenizer=tok).train()
    assert "step-3 cannot be resumed from: it does not load" in caplog.text
    assert f"resuming from {root / 'step-2'}" in caplog.text
    redone = read_metrics(run_dir)
    assert [r["loss"] for r in redone] == [json.loads(line)["loss"] for line in original.splitlines()]


def test_no_checkpoint_that_loads_is_an_error_never_a_restart_from_step_0(trained):
    cfg, tok, ds, run_dir = trained
    root = run_dir / "checkpoints"
    (root / "step-3" / ckpt.COMPLETE).unlink()  # unsound: the size check fails
    for step in (1, 2):
        state = root / f"step-{step}" / "state-rank0.pt"
        state.write_bytes(b"\0" * state.stat().st_size)
    original = (run_dir / "metrics.jsonl").read_text()
    fallback = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, on_bad_checkpoint="previous"))
    with pytest.raises(ckpt.CheckpointLoadError, match=r"no checkpoint in .* can be resumed from \(.*step-3: no "
                       r"COMPLETE marker.*step-2: it does not load.*step-1: it does not load.*refusing to start again"):
        Trainer(fallback, recipe="t", dataset=ds, tokenizer=tok).train()
    assert (run_dir / "metrics.jsonl").read_text() == original


def test_full_disk_raises_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    tok, ds = tiny_data(tmp_path)
    cfg = tiny_config(tmp_path / "runs", "train.max_steps=4", "train.save_every=2")
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if ".step-4.tmp" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(ckpt.CheckpointError, match=r"step-4.*No space left.*intact \(step-2\)"):
        Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    root = tmp_path / "runs" / "t" / "t" / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["step-2"]
    assert ckpt.check_checkpoint(root / "step-2") is None

    monkeypatch.setattr(torch, "save", real_save)  # space freed: the same command finishes the run
    result = Trainer(cfg, recipe="t", dataset=ds, tokenizer=tok).train()
    assert result["step"] == 4 and (root / "step-4" / ckpt.COMPLETE).exists()
