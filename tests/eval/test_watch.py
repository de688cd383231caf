"""The checkpoint watcher, as real processes: two watchers started together evaluate each checkpoint exactly
once; a watcher killed (SIGKILL) mid-evaluation leaves no stale lock and the checkpoint is retried; a failing
eval command is retried up to --max-attempts.

The eval command is a small real script (written below) that logs each invocation to a counter file, waits,
then grades the checkpoint's "predictions" and writes results.jsonl + summary.json like the evaluators do.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.results import load_results
from eval.watch import Watcher, parse_args

ROOT = Path(__file__).resolve().parents[2]

EVAL_SCRIPT = r'''
import argparse, json, os, sys, time
parser = argparse.ArgumentParser()
parser.add_argument("--model"); parser.add_argument("--out"); parser.add_argument("--step", type=int)
args = parser.parse_args()
with open(os.environ["EVAL_COUNTER"], "a") as f:
    f.write(f"{args.step} {os.getpid()}\n")
slow = os.environ.get("EVAL_SLOW_STEP") == str(args.step)
time.sleep(float(os.environ["EVAL_SLOW_DELAY"] if slow else os.environ.get("EVAL_DELAY", "0")))
if os.environ.get("EVAL_FAIL"):
    sys.exit(3)
predictions = json.load(open(os.path.join(args.model, "predictions.json")))
rows = [{"task_id": str(i), "passed": p == g, "status": "graded"} for i, (p, g) in enumerate(predictions)]
with open(os.path.join(args.out, "results.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
summary = {"benchmark": "toy", "n_problems": len(rows), "n_samples": len(rows),
           "accuracy": sum(r["passed"] for r in rows) / len(rows)}
with open(os.path.join(args.out, "summary.json"), "w") as f:
    json.dump(summary, f)
'''


def make_run(tmp_path: Path, steps: list[int], incomplete: list[int] = ()) -> Path:
    """A run folder whose checkpoints carry (prediction, gold) pairs in hf/, COMPLETE written last."""
    rng = random.Random(len(steps))
    run = tmp_path / "runs" / "toy_recipe" / "run1"
    run.mkdir(parents=True)
    with open(run / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps({"step": s, "loss": 1.0 / s, "lr": 1e-3, "tokens": 100 * s,
                                 "tokens_per_s": 10.0}) + "\n" for s in range(1, max(steps + list(incomplete)) + 1))
    for step in steps + list(incomplete):
        hf = run / "checkpoints" / f"step-{step}" / "hf"
        hf.mkdir(parents=True)
        pairs = [(rng.randint(0, 3), rng.randint(0, 3)) for _ in range(8)]
        (hf / "predictions.json").write_text(json.dumps(pairs))
        if step not in incomplete:
            (hf.parent / "COMPLETE").write_text("")
    (tmp_path / "toy_eval.py").write_text(EVAL_SCRIPT)
    return run


def start_watcher(run: Path, tmp_path: Path, *extra: str, **env: str) -> subprocess.Popen:
    command = f"{sys.executable} {tmp_path / 'toy_eval.py'} --model {{model}} --out {{out}} --step {{step}}"
    environ = {**os.environ, "EVAL_COUNTER": str(tmp_path / "counter.txt"), **env}
    return subprocess.Popen([sys.executable, "-m", "eval.watch", str(run), "--benchmark", "toy",
                             "--eval-command", command, *extra], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def invocations(tmp_path: Path) -> list[tuple[int, int]]:
    counter = tmp_path / "counter.txt"
    lines = counter.read_text().split("\n") if counter.exists() else []
    return [(int(a), int(b)) for a, b in (line.split() for line in lines if line)]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


def expected_accuracy(run: Path, step: int) -> float:
    pairs = json.loads((run / "checkpoints" / f"step-{step}" / "hf" / "predictions.json").read_text())
    return sum(p == g for p, g in pairs) / len(pairs)


def assert_each_evaluated(run: Path, steps: list[int]) -> None:
    table = load_results(run.parents[1])
    assert sorted(table["step"]) == steps
    for row in table.itertuples():
        assert row.value == expected_accuracy(run, row.step)
        assert row.tokens == 100 * row.step
    assert not list((run / "eval" / "toy").glob("*.tmp-*")), "scratch folders left behind"


def test_two_watchers_started_together_evaluate_each_checkpoint_once(tmp_path):
    run = make_run(tmp_path, [1, 2, 3, 4], incomplete=[5])
    watchers = [start_watcher(run, tmp_path, "--once", EVAL_DELAY="0.4") for _ in range(2)]
    logs = [w.communicate(timeout=60)[0] for w in watchers]
    assert [w.returncode for w in watchers] == [0, 0], logs
    steps = sorted(step for step, _ in invocations(tmp_path))
    assert steps == [1, 2, 3, 4], logs  # each exactly once; step 5 has no COMPLETE marker
    assert_each_evaluated(run, [1, 2, 3, 4])
    events = [json.loads(line) for line in (run / "eval" / "watch.jsonl").read_text().splitlines()]
    assert sorted(e["step"] for e in events if e["event"] == "evaluated") == [1, 2, 3, 4]
    assert all("busy" in log or "done" in log or "evaluated" in log for log in logs)
    # A later pass finds nothing to do.
    again = start_watcher(run, tmp_path, "--once")
    again.communicate(timeout=60)
    assert len(invocations(tmp_path)) == 4


def test_watcher_killed_mid_evaluation_is_retried(tmp_path):
    run = make_run(tmp_path, [1, 2])
    victim = start_watcher(run, tmp_path, "--once", EVAL_SLOW_STEP="1", EVAL_SLOW_DELAY="60")
    deadline = time.monotonic() + 30
    while not invocations(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    [(step, eval_pid)] = invocations(tmp_path)
    assert step == 1
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while alive(eval_pid) and time.monotonic() < deadline:  # the evaluation dies with its watcher
        time.sleep(0.05)
    assert not alive(eval_pid)
    assert list((run / "eval" / "toy").glob("step-1.tmp-*")), "the killed attempt left its scratch folder"

    rescuer = start_watcher(run, tmp_path, "--once")
    out = rescuer.communicate(timeout=60)[0]
    assert rescuer.returncode == 0, out
    assert [s for s, _ in invocations(tmp_path)] == [1, 1, 2]  # step 1 retried, step 2 once
    assert_each_evaluated(run, [1, 2])


def test_failed_evaluation_is_retried_then_given_up(tmp_path):
    run = make_run(tmp_path, [1])
    for attempt in range(3):
        watcher = start_watcher(run, tmp_path, "--once", "--max-attempts", "2", EVAL_FAIL="1")
        out = watcher.communicate(timeout=60)[0]
        assert watcher.returncode == 1, out
        assert len(invocations(tmp_path)) == min(attempt + 1, 2)
    failures = run / "eval" / "toy" / "step-1.failures.jsonl"
    assert [json.loads(line)["rc"] for line in failures.read_text().splitlines()] == [3, 3]
    assert not (run / "eval" / "toy" / "step-1").exists()
    failures.unlink()  # an operator clears the record once the evaluator is fixed
    watcher = start_watcher(run, tmp_path, "--once", "--max-attempts", "2")
    watcher.communicate(timeout=60)
    assert_each_evaluated(run, [1])


def test_eval_command_placeholders_are_checked(tmp_path):
    run = make_run(tmp_path, [1])
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \['modle'\]"):
        Watcher(parse_args([str(run), "--benchmark", "toy", "--eval-command", "x --model {modle}"]))
    math_run = run.parents[1] / "math-sft" / "tiny"
    (math_run / "data").mkdir(parents=True)
    config = parse_args([str(math_run), "--problems", "gsm8k_test.jsonl"])
    argv = Watcher(config).command(7, math_run / "checkpoints" / "step-7", math_run / "out")
    assert config.benchmark == "gsm8k"
    assert argv[1:] == ["-m", "eval.math", "--benchmark", "gsm8k", "--chat", "--model",
                        str(math_run / "checkpoints" / "step-7" / "hf"), "--out", str(math_run / "out"),
                        "--problems", "gsm8k_test.jsonl"]
    (math_run / "data" / "heldout.jsonl").write_text("")  # the run's own held-out set is the default
    config = parse_args([str(math_run)])
    assert config.benchmark == "heldout" and config.problems == str(math_run / "data" / "heldout.jsonl")
    assert "{problems}" in config.eval_command
    config = parse_args([str(math_run), "--nproc-per-node", "4"])  # data-parallel generation over 4 ranks
    argv = Watcher(config).command(7, math_run / "checkpoints" / "step-7", math_run / "out")
    assert argv[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m", "eval.math"]
