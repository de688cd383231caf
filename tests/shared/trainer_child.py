"""A training run in its own process(es), for the kill/resume and multi-process tests.

    python -m tests.shared.trainer_child WORKDIR [--stages 2 3 3@5] [key=value ...]
    torchrun --nproc_per_node 2 -m tests.shared.trainer_child WORKDIR --stages 2 3 [key=value ...]

WORKDIR holds chat.jsonl (written by the test); runs go to WORKDIR/runs. QS_TEST_KILL=train:N makes the
process SIGKILL itself in the middle of optimizer step N; QS_TEST_KILL=checkpoint:N while the engine state of
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
    where, step = spec.split(":")
    target = int(step)
    if where == "train":
        original = Trainer._train_step

        def train_step(self):
            if self.step + 1 == target:
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
    stages: list[str] = []
    if argv and argv[0] == "--stages":
        argv.pop(0)
        while argv and "=" not in argv[0]:
            stages.append(argv.pop(0))
    if os.environ.get("QS_TEST_KILL"):
        install_kill(os.environ["QS_TEST_KILL"])
    for spec in stages or [None]:
        # "3" runs ZeRO-3 as run zero3; "3@5" re-runs zero3 with train.max_steps=5 (a resume of it).
        extra = []
        if spec:
            stage, _, steps = spec.partition("@")
            extra = [f"train.zero_stage={stage}", f"run_name=zero{stage}"] + ([f"train.max_steps={steps}"] if steps else [])
        cfg = tiny_config(workdir / "runs", *argv, *extra)
        tok = load_tokenizer(cfg.model)
        data = sft_dataset([workdir / "chat.jsonl"], tok, ChatDataConfig(default_system_prompt=None), cfg.train.seq_len)
        Trainer(cfg, recipe="t", dataset=data, tokenizer=tok, log_sample_ids=True).train()


if __name__ == "__main__":
    main(sys.argv[1:])
