"""Jobs submitted to the real single-node Slurm (`.ci/slurm-up.sh`) with `just slurm`: a tiny math-sft runs to
its export; the same job requeued by `scontrol requeue` after its first checkpoint resumes from it and logs the
same losses as the uninterrupted job; a tiny code-pretrain job; the watcher as a recurring job evaluates every
checkpoint exactly once across its submissions. Skipped when no Slurm answers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.slurm_helpers import (
    ROOT,
    cancel,
    job_field,
    job_log,
    just_slurm,
    require_slurm,
    wait_for,
    wait_job,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SMALL = ["model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
         "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.seq_len=512",
         "train.log_every=1", "data.synthetic.n_train=200", "data.synthetic.n_heldout=6", "eval.max_new_tokens=12",
         "eval.batch_size=8"]  # fmt: skip


@pytest.fixture(autouse=True)
def _slurm():
    require_slurm()


# DeepSpeed JIT-builds its CPU shared-memory op under torchrun into one cache keyed by name; checkouts at other
# paths (worktrees) rebuild it there in turn, so each checkout gets a cache of its own.
EXTENSIONS = Path.home() / ".cache" / "torch_extensions" / hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]


def cpu_job(tmp_path: Path) -> list[str]:
    """Options of a one-CPU-rank job logging under tmp_path (one thread: the same losses whatever the load)."""
    return ["--gpus-per-node", "0", "--time", "00:30:00", "--signal-lead", "60", "--logs-dir", str(tmp_path / "logs"),
            "--python", sys.executable, "--env", "OMP_NUM_THREADS=1", "--env", f"TORCH_EXTENSIONS_DIR={EXTENSIONS}"]


def losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows]


def test_math_sft_job_runs_to_export_and_a_requeued_one_resumes_with_the_same_losses(tmp_path):
    runs = tmp_path / "runs"
    common = [*SMALL, f"runs_dir={runs}", "train.max_steps=60", "train.save_every=10"]
    plain = just_slurm("math-sft", *common, "run_name=plain", *cpu_job(tmp_path))
    requeued = just_slurm("math-sft", *common, "run_name=requeued", *cpu_job(tmp_path))
    try:
        first = runs / "math-sft" / "requeued" / "checkpoints" / "step-10" / "COMPLETE"
        wait_for(first.exists, 240, "the first checkpoint of the job to requeue", poll=0.05)
        assert not (runs / "math-sft" / "requeued" / "export").exists(), "finished before it could be requeued"
        subprocess.run(["scontrol", "requeue", requeued], check=True)
        # A requeued job is held back about two minutes before it is eligible again; start it now.
        wait_for(lambda: job_field(requeued, "JobState") == "PENDING", 60, "the requeued job to pend")
        subprocess.run(["scontrol", "update", f"JobId={requeued}", "StartTime=now"], check=True)
        assert wait_job(plain) == "COMPLETED" and wait_job(requeued) == "COMPLETED"
    finally:
        cancel(plain, requeued)
    assert job_field(requeued, "Restarts") == "1"
    log = job_log(tmp_path / "logs", requeued)
    assert "restart 1" in log and "resumed at step" in log
    assert (runs / "math-sft" / "plain" / "export" / "config.json").exists()
    assert json.loads((runs / "math-sft" / "plain" / "eval" / "summary.json").read_text())["step"] == 60
    steps = [s for s, _ in losses(runs / "math-sft" / "requeued")]
    assert steps == list(range(1, 61))
    assert losses(runs / "math-sft" / "requeued") == losses(runs / "math-sft" / "plain")


def test_code_pretrain_job_runs_to_export(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ["bisect.py", "heapq.py", "textwrap.py", "string.py", "fnmatch.py", "colorsys.py"]:
        (src / name).write_bytes((stdlib / name).read_bytes())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"base": str(ROOT / "data_recipes" / "recipes" / "code_tiny.yaml"),
                                  "sources": [{"name": "local", "kind": "tree", "path": str(src)}],
                                  "decontamination": {"enabled": False}, "workers": 1}))  # fmt: skip
    args = [f"runs_dir={tmp_path / 'runs'}", "run_name=t", f"data.shard_dir={tmp_path / 'shards'}",
            f"data.build_recipe={recipe}", "train.max_steps=4", "train.save_every=2", "eval.limit=3", "eval.max_new_tokens=8",
            "eval.batch_size=3",
            "model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
            "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.seq_len=64", "train.log_every=1"]
    # Run in tmp_path: the recipe writes its local problems file under ./data.
    job = just_slurm("code-pretrain", *args, *cpu_job(tmp_path), "--workdir", str(tmp_path))
    try:
        state = wait_job(job)
    finally:
        cancel(job)
    assert state == "COMPLETED", job_log(tmp_path / "logs", job)[-3000:]
    run_dir = tmp_path / "runs" / "code-pretrain" / "t"
    assert [s for s, _ in losses(run_dir)] == [1, 2, 3, 4]
    assert (run_dir / "export" / "config.json").exists() and (tmp_path / "shards" / "manifest.json").exists()


def queued(name: str) -> bool:
    done = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True)
    return bool(done.stdout.strip())


def test_recurring_watcher_evaluates_each_checkpoint_once_across_submissions(tmp_path):
    runs = tmp_path / "runs"
    run_dir = runs / "math-sft" / "w"
    common = [*SMALL, f"runs_dir={runs}", "run_name=w", "train.save_every=2", "eval.enabled=false"]
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home()),
           "TORCH_EXTENSIONS_DIR": str(EXTENSIONS)}
    subprocess.run([sys.executable, "-m", "math_qwen.sft", *common, "train.max_steps=2"], check=True, cwd=ROOT,
                   env=env, capture_output=True)  # fmt: skip
    # The training job the watcher follows, held until the watcher's first pass is over: it then adds step 4.
    training = just_slurm("math-sft", *common, "train.max_steps=4", *cpu_job(tmp_path), "--hold")
    command = ("{python} -m eval.math --benchmark gsm8k --chat --model {model} --out {out} --problems {problems} "
               "--max-new-tokens 16")
    watch_args = f"--benchmark heldout --problems {run_dir / 'data' / 'heldout.jsonl'} --eval-command '{command}'"
    first = just_slurm("watch", str(run_dir), "--every", "2", "--follow-job", training, "--watch-args", watch_args,
                       *cpu_job(tmp_path))  # fmt: skip
    try:
        assert wait_job(first) == "COMPLETED", job_log(tmp_path / "logs", first)
        subprocess.run(["scontrol", "release", training], check=True)
        assert wait_job(training) == "COMPLETED"
        wait_for(lambda: not queued("watch-w"), 180, "the recurring watcher to stop", poll=1)
    finally:
        cancel(training)
        subprocess.run(["scancel", "-n", "watch-w"], capture_output=True)
    events = [json.loads(line) for line in (run_dir / "eval" / "watch.jsonl").read_text().splitlines()]
    assert sorted(e["step"] for e in events if e["event"] == "evaluated") == [2, 4]
    assert not [e for e in events if e["event"] != "evaluated"]
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").glob("watch-w-*.out")}
    assert len(logs) >= 2, "the watcher never resubmitted itself"
    by_step = {s: [n for n, text in logs.items() if f"step {s}: evaluated" in text] for s in (2, 4)}
    assert by_step[2] == [f"watch-w-{first}.out"] and len(by_step[4]) == 1 and by_step[4] != by_step[2]
    assert (run_dir / "eval" / "heldout" / "step-4" / "summary.json").exists()
    assert sum("the run is over: not resubmitting" in text for text in logs.values()) == 1
