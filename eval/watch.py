"""Checkpoint watcher: evaluate every finished checkpoint of a run exactly once, however many watchers run.

    just watch runs/math_qwen.sft/tiny                 # poll forever (Ctrl-C to stop)
    just watch runs/math_qwen.sft/tiny --once          # one pass, for cron or a recurring Slurm job
    just watch RUN --benchmark toy --eval-command "python my_eval.py --model {model} --out {out} --step {step}"

A checkpoint `checkpoints/step-<N>/` is ready when its `COMPLETE` marker exists (the trainer writes it last)
and pending until `eval/<benchmark>/step-<N>/summary.json` exists. For each pending checkpoint a watcher:

1. takes an exclusive POSIX record lock (fcntl) on `eval/<benchmark>/step-<N>.lock`, without waiting: a
   checkpoint locked by another watcher is that watcher's. The kernel (or the NFS lock manager) drops the
   lock when its holder dies, even by SIGKILL, so a crashed watcher never leaves a stale lock behind: the
   next watcher simply gets it and retries the checkpoint.
2. re-checks under the lock that no summary appeared meanwhile (the other watcher may just have finished).
3. runs the eval command into a private scratch folder `step-<N>.tmp-<host>-<pid>` and, when it exits 0
   with a summary.json, renames the folder to `step-<N>` (atomic): a summary is never seen half-written.
   A failed command is recorded in `step-<N>.failures.jsonl` and retried by a later pass, up to
   --max-attempts; scratch folders of killed attempts are removed by the next lock holder.
4. appends an `evaluated` (or `failed`) line to `eval/watch.jsonl`; `eval.results.load_results` picks the
   new summary up from its place.

Without --eval-command, math recipes are evaluated by `eval.math` (zero-shot ChatML) on the run's own
`data/heldout.jsonl` into eval/heldout/ (or GSM8K into eval/gsm8k/), code recipes by `eval.code` on HumanEval.
The eval command is a template with placeholders {model} (the checkpoint's `hf/` folder), {out}, {step},
{benchmark}, {problems}, {run} and {python}; it is split like a shell command line and run without a shell.
With --nproc-per-node N > 1 the default evaluation runs under `torch.distributed.run --standalone` (a free
port) on N ranks, which share the generation (eval.sharded): one watcher job uses every GPU it was given.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("eval.watch")

CHECKPOINT_DIR = re.compile(r"^step-(\d+)$")
PLACEHOLDERS = ("model", "out", "step", "benchmark", "problems", "run", "python")
# Default evaluation per recipe family (runs/<recipe>/<run> with "math" or "code" in <recipe>). Math recipes
# train chat models: zero-shot ChatML, on the run's own held-out set (data/heldout.jsonl, GSM8K-style) when it
# has one, landing in eval/heldout/; else GSM8K. Code: HumanEval. --problems picks another problems file.
MATH_COMMAND = "{python} -m eval.math --benchmark gsm8k --chat --model {model} --out {out}"
CODE_COMMAND = "{python} -m eval.code --benchmark humaneval --model {model} --out {out}"
HELDOUT = Path("data") / "heldout.jsonl"


@dataclass
class WatchConfig:
    run_dir: Path
    benchmark: str
    problems: str
    eval_command: str
    once: bool = False
    interval_s: float = 60.0
    max_attempts: int = 3
    python: str = sys.executable

    def validate(self) -> None:
        if not self.run_dir.is_dir():
            raise ValueError(f"run folder {self.run_dir} does not exist")
        unknown = {name for _, name, _, _ in string.Formatter().parse(self.eval_command) if name}
        unknown -= set(PLACEHOLDERS)
        if unknown:
            raise ValueError(f"--eval-command has unknown placeholder(s) {sorted(unknown)}; "
                             f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        if self.max_attempts < 1:
            raise ValueError("--max-attempts must be >= 1")


def data_parallel(command: str, nproc: int) -> str:
    """The default command started on nproc ranks (each generates a share; rank 0 grades and writes)."""
    if nproc <= 1:
        return command
    return command.replace("{python} -m ", f"{{python}} -m torch.distributed.run --standalone "
                                           f"--nproc_per_node={nproc} -m ", 1)


def recipe_defaults(run_dir: Path, problems: str | None) -> tuple[str, str, str]:
    """(benchmark, problems, command) for a run folder `runs/<recipe>/<run>`, chosen by its recipe name."""
    recipe = run_dir.resolve().parent.name
    if "math" in recipe:
        if problems is None and (run_dir / HELDOUT).exists():
            return "heldout", str(run_dir / HELDOUT), MATH_COMMAND + " --problems {problems}"
        benchmark, command = "gsm8k", MATH_COMMAND
    elif "code" in recipe:
        benchmark, command = "humaneval", CODE_COMMAND
    else:
        raise ValueError(f"no default evaluation for recipe {recipe!r}: pass --benchmark and --eval-command")
    # Without --problems the evaluator's own default set (a hub dataset) is used.
    return benchmark, problems or "", command + (" --problems {problems}" if problems else "")


def ready_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint whose COMPLETE marker exists, oldest first."""
    found = []
    root = run_dir / "checkpoints"
    for folder in root.iterdir() if root.is_dir() else []:
        match = CHECKPOINT_DIR.match(folder.name)
        if match and (folder / "COMPLETE").exists():
            found.append((int(match.group(1)), folder))
    return sorted(found)


class StepLock:
    """Non-blocking exclusive fcntl lock on one checkpoint's lock file; released on close or process death."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        os.ftruncate(fd, 0)  # who holds it, for people looking at a busy checkpoint
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}).encode())
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def die_with_parent() -> None:
    """In the eval child: get SIGKILL when the watcher dies, so a killed watcher leaves no orphan evaluation."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def count_lines(path: Path) -> int:
    return sum(1 for line in open(path, encoding="utf-8") if line.strip()) if path.exists() else 0


class Watcher:
    def __init__(self, config: WatchConfig):
        config.validate()
        self.config = config
        self.bench_dir = config.run_dir / "eval" / config.benchmark
        self.tag = f"{socket.gethostname()}-{os.getpid()}"

    def done(self, step: int) -> bool:
        return (self.bench_dir / f"step-{step}" / "summary.json").exists()

    def command(self, step: int, checkpoint: Path, out: Path) -> list[str]:
        values = {"model": str(checkpoint / "hf"), "out": str(out), "step": str(step),
                  "benchmark": self.config.benchmark, "problems": self.config.problems,
                  "run": str(self.config.run_dir), "python": self.config.python}
        return [token.format_map(values) for token in shlex.split(self.config.eval_command)]

    def clear_scratch(self, step: int) -> None:
        """Scratch folders of attempts whose watcher died (we hold the lock, so none is in use)."""
        for scratch in self.bench_dir.glob(f"step-{step}.tmp-*"):
            shutil.rmtree(scratch, ignore_errors=True)

    def run_eval(self, step: int, checkpoint: Path) -> tuple[int, Path]:
        scratch = self.bench_dir / f"step-{step}.tmp-{self.tag}"
        scratch.mkdir(parents=True)
        argv = self.command(step, checkpoint, scratch)
        log.info("step %d: %s", step, shlex.join(argv))
        with open(scratch / "watch.log", "w", encoding="utf-8") as out:
            rc = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        if rc == 0 and not (scratch / "summary.json").exists():
            rc = -1000  # exited 0 but wrote no summary: a failure all the same
        return rc, scratch

    def publish_or_record(self, step: int, rc: int, scratch: Path, seconds: float) -> str:
        record = {"step": step, "benchmark": self.config.benchmark, "host": socket.gethostname(),
                  "pid": os.getpid(), "seconds": round(seconds, 3), "time": time.time()}
        if rc == 0:
            final = self.bench_dir / f"step-{step}"
            try:
                os.rename(scratch, final)
            except OSError:
                if not final.exists():
                    raise
                # Someone evaluated it without the lock (e.g. by hand): theirs stands, ours is dropped.
                shutil.rmtree(scratch, ignore_errors=True)
                log.warning("step %d: %s appeared meanwhile; kept it, dropped this evaluation", step, final)
                return "done"
            append_jsonl(self.config.run_dir / "eval" / "watch.jsonl", {"event": "evaluated", **record})
            return "evaluated"
        log_copy = self.bench_dir / f"step-{step}.failed-{self.tag}-{int(time.time())}.log"
        shutil.move(str(scratch / "watch.log"), log_copy)
        shutil.rmtree(scratch, ignore_errors=True)
        failure = {**record, "rc": rc, "log": log_copy.name}
        append_jsonl(self.bench_dir / f"step-{step}.failures.jsonl", failure)
        append_jsonl(self.config.run_dir / "eval" / "watch.jsonl", {"event": "failed", **failure})
        log.warning("step %d: eval command failed (rc=%d), see %s", step, rc, log_copy)
        return "failed"

    def evaluate(self, step: int, checkpoint: Path) -> str:
        """One attempt at one checkpoint: done, busy, gave-up, evaluated or failed."""
        if self.done(step):
            return "done"
        failures = self.bench_dir / f"step-{step}.failures.jsonl"
        if count_lines(failures) >= self.config.max_attempts:
            log.warning("step %d: gave up after %d failed attempts (delete %s to retry)", step,
                        self.config.max_attempts, failures)
            return "gave-up"
        self.bench_dir.mkdir(parents=True, exist_ok=True)
        lock = StepLock(self.bench_dir / f"step-{step}.lock")
        if not lock.acquire():
            return "busy"
        try:
            if self.done(step):  # another watcher finished it between our check and our lock
                return "done"
            self.clear_scratch(step)
            start = time.monotonic()
            rc, scratch = self.run_eval(step, checkpoint)
            return self.publish_or_record(step, rc, scratch, time.monotonic() - start)
        finally:
            lock.release()

    def one_pass(self) -> dict[str, int]:
        outcomes: dict[str, int] = {}
        ready = [(s, c) for s, c in ready_checkpoints(self.config.run_dir) if not self.done(s)]
        started = time.monotonic()
        for i, (step, checkpoint) in enumerate(ready, start=1):
            outcome = self.evaluate(step, checkpoint)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            elapsed = time.monotonic() - started
            log.info("step %d: %s (%d/%d pending checkpoints, %.1f s, ETA %.0f s)", step, outcome, i,
                     len(ready), elapsed, elapsed / i * (len(ready) - i))
        return outcomes

    def watch(self) -> dict[str, int]:
        while True:
            outcomes = self.one_pass()
            if outcomes:
                log.info("pass over %s: %s", self.config.run_dir, outcomes)
            if self.config.once:
                return outcomes
            time.sleep(self.config.interval_s)


def parse_args(argv: list[str] | None) -> WatchConfig:
    parser = argparse.ArgumentParser(prog="python -m eval.watch", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="runs/<recipe>/<run>")
    parser.add_argument("--once", action="store_true", help="one pass over the pending checkpoints, then exit")
    parser.add_argument("--benchmark", help="results land in eval/<benchmark>/step-<N>/ (default: per recipe)")
    parser.add_argument("--problems", help="problems file or hub name for {problems} (default: per recipe)")
    parser.add_argument("--eval-command", help="command template with {model} {out} {step} ... (default: per recipe)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between passes (default 60)")
    parser.add_argument("--max-attempts", type=int, default=3, help="failed evaluations before giving up")
    parser.add_argument("--python", default=sys.executable, help="interpreter for {python}")
    parser.add_argument("--nproc-per-node", type=int, default=1,
                        help="ranks (GPUs) the default evaluation generates on, data-parallel (default 1)")
    args = parser.parse_args(argv)
    if args.eval_command and not args.benchmark:
        parser.error("--eval-command needs --benchmark (the folder its results land in)")
    benchmark, problems, command = args.benchmark, args.problems, args.eval_command
    if not command:  # the recipe's own evaluation
        default_benchmark, problems, command = recipe_defaults(args.run_dir, problems)
        benchmark = benchmark or default_benchmark
        command = data_parallel(command, args.nproc_per_node)
    return WatchConfig(run_dir=args.run_dir, benchmark=benchmark, problems=problems or "", eval_command=command,
                       once=args.once, interval_s=args.interval, max_attempts=args.max_attempts, python=args.python)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    try:
        watcher = Watcher(parse_args(argv))
    except ValueError as exc:
        raise SystemExit(f"eval.watch: {exc}") from exc
    outcomes = watcher.watch()
    if outcomes.get("failed") or outcomes.get("gave-up"):
        sys.exit(1)  # cron and Slurm see a failing evaluation


if __name__ == "__main__":
    main()
