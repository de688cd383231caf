"""A training run in its own process(es), for the kill/resume and multi-process tests.

    python -m tests.shared.trainer_child WORKDIR [key=value ...]
    torchrun --nproc_per_node 2 -m tests.shared.trainer_child WORKDIR [key=value ...] [-- key=value ... [-- ...]]

WORKDIR holds chat.jsonl (written by the test); runs go to WORKDIR/runs. The overrides before the first `--`
apply to every run; each `--` group is one more run, one after the other in the same processes (saves the
start-up of a process group per run). QS_TEST_KILL=train:N[:RUN] makes the process SIGKILL itself in the middle
of optimizer step N (of run_name RUN only, when given); QS_TEST_KILL=checkpoint:N while the engine state of
checkpoint N is being written (a real crash at that point; the re-run uses the same command without it).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import torch

from shared.config import ChatDataConfig
from shared.data import sft_dataset
from shared.modeling import load_tokenizer
from shared.trainer import Trainer
from tests.shared.trainer_helpers import tiny_config


def install_kill(spec: str) -> None:
    where, step, *run = spec.split(":")
    target = int(step)
    if where == "train":
        original = Trainer._train_step

        def train_step(self):
            if self.step + 1 == target and (not run or self.cfg.run_name == run[0]):
                self.sampler.next_step()  # the step's data is drawn, then the process dies
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self)

        Trainer._train_step = train_step
    elif where == "checkpoint":
        original_save = torch.save

        def save(obj, f, *args, **kwargs):
            if f".step-{target}.tmp" in str(f):
                os.kill(os.getpid(), signal.SIGKILL)
            return original_save(obj, f, *args, **kwargs)

        torch.save = save
    else:
        raise ValueError(spec)


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(1)
    workdir = Path(argv.pop(0))
    groups: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--":
            groups.append([])
        else:
            groups[-1].append(arg)
    common, runs = groups[0], groups[1:] or [[]]
    if os.environ.get("QS_TEST_KILL"):
        install_kill(os.environ["QS_TEST_KILL"])
    for extra in runs:
        cfg = tiny_config(workdir / "runs", *common, *extra)
        tok = load_tokenizer(cfg.model)
        data = sft_dataset([workdir / "chat.jsonl"], tok, ChatDataConfig(default_system_prompt=None), cfg.train.seq_len)
        Trainer(cfg, recipe="t", dataset=data, tokenizer=tok, log_sample_ids=True).train()


if __name__ == "__main__":
    main(sys.argv[1:])
