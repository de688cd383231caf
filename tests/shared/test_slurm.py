"""Rendered sbatch scripts: valid bash, the right node counts and launch commands for 1 and 4 nodes, and
(run under bash with stand-ins for the Slurm client commands, which this machine lacks) the master
address and hostfile from the allocation, and requeue at the time-limit signal.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.slurm import RECIPES, SlurmError, SlurmJob, parse_args, render

ROOT = Path(__file__).resolve().parents[2]
TRAINING = {"code-pretrain": "code_qwen.pretrain", "code-sft": "code_qwen.sft", "math-sft": "math_qwen.sft",
            "math-rft": "math_qwen.rft"}


def bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def launch_words(script: str) -> list[str]:
    """The LAUNCH=( ... ) array of a script, split the way bash splits it."""
    [line] = [x for x in script.splitlines() if x.startswith("LAUNCH=(")]
    return shlex.split(line[len("LAUNCH=("):-1])


@pytest.mark.parametrize("nodes", [1, 4])
@pytest.mark.parametrize("recipe", sorted(TRAINING))
def test_torchrun_script_for_nodes(recipe, nodes, tmp_path):
    job, dry_run = parse_args([recipe, "configs/big.yaml", "train.max_steps=10", "run_name=r1", "--nodes", str(nodes),
                               "--gpus-per-node", "8", "--partition", "gpu", "--time", "01:00:00", "--dry-run"])
    script = render(job)
    bash_syntax_ok(script, tmp_path)
    assert dry_run
    sbatch = dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", script, re.MULTILINE))
    assert sbatch["nodes"] == str(nodes) and sbatch["gpus-per-node"] == "8" and sbatch["ntasks-per-node"] == "1"
    assert sbatch["partition"] == "gpu" and sbatch["time"] == "01:00:00" and sbatch["job-name"] == f"{recipe}-r1"
    assert "--requeue" in script and "#SBATCH --signal=B:USR1@" in script
    words = launch_words(script)
    assert words[:3] == ["srun", "--kill-on-bad-exit=1", f"--nodes={nodes}"]
    assert f"--nnodes={nodes}" in words and "--nproc_per_node=8" in words
    assert words[-5:] == ["-m", TRAINING[recipe], "configs/big.yaml", "train.max_steps=10", "run_name=r1"]
    assert f'-ne {nodes} ]' in script  # the script checks the allocation has that many nodes


@pytest.mark.parametrize("nodes", [1, 4])
def test_deepspeed_launcher_script(nodes, tmp_path):
    job, _ = parse_args(["math-rft", "math_qwen/configs/7b.yaml", "--nodes", str(nodes), "--gpus-per-node", "4",
                         "--launcher", "deepspeed"])
    script = render(job)
    bash_syntax_ok(script, tmp_path)
    words = launch_words(script)
    assert words[1:3] == ["-m", "deepspeed.launcher.runner"]
    assert f"--num_nodes={nodes}" in words and "--num_gpus=4" in words and "--no_local_rank" in words
    assert words[-3:] == ["--module", "math_qwen.rft", "math_qwen/configs/7b.yaml"]


def test_watcher_script_and_bad_arguments(tmp_path):
    job, _ = parse_args(["watch", "runs/math_qwen.sft/tiny", "--watch-args", "--interval 600 --max-attempts 2"])
    script = render(job)
    bash_syntax_ok(script, tmp_path)
    assert "#SBATCH --nodes=1" in script and "#SBATCH --gpus-per-node=1" in script
    assert launch_words(script)[1:] == ["-m", "eval.watch", "runs/math_qwen.sft/tiny", "--interval", "600",
                                        "--max-attempts", "2"]
    assert set(RECIPES) == set(TRAINING) | {"watch"}
    with pytest.raises(SlurmError, match="not key=value"):
        render(SlurmJob(recipe="code-sft", config="c.yaml", overrides=["train.max_steps"]))
    with pytest.raises(SlurmError, match="unknown recipe"):
        render(SlurmJob(recipe="code-pretrian"))


def shim(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def start_script(tmp_path: Path, nodes: int, step_seconds: float) -> tuple[subprocess.Popen, Path]:
    """Run a rendered 4-node script under bash; scontrol/srun stand-ins record what the script asks of Slurm."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    names = " ".join(f"gpu{i:02d}" for i in range(1, nodes + 1))
    shim(bin_dir, "scontrol", f'if [ "$1 $2" = "show hostnames" ]; then printf "%s\\n" {names}; '
                              f'else echo "$@" >> {record}/scontrol; fi\n')
    shim(bin_dir, "srun", f'echo "MASTER=$MASTER_ADDR:$MASTER_PORT ARGS=$*" > {record}/srun\n'
                          f"exec sleep {step_seconds}\n")
    job = SlurmJob(recipe="code-pretrain", overrides=["run_name=r1"], nodes=nodes, gpus_per_node=2,
                   workdir=str(tmp_path), python=sys.executable)
    (tmp_path / "job.sbatch").write_text(render(job))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NODELIST": f"gpu[01-{nodes:02d}]"}
    proc = subprocess.Popen(["bash", str(tmp_path / "job.sbatch")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, record


def test_script_runs_master_address_and_hostfile_from_allocation(tmp_path):
    proc, record = start_script(tmp_path, nodes=4, step_seconds=0)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    srun = (record / "srun").read_text()
    assert srun.startswith(f"MASTER=gpu01:{20000 + 4242 % 20000} ")
    assert "--nnodes=4 --nproc_per_node=2" in srun and srun.rstrip().endswith("-m code_qwen.pretrain run_name=r1")
    hostfile = (tmp_path / "logs" / "slurm" / "hostfile-4242").read_text().splitlines()
    assert hostfile == [f"gpu{i:02d} slots=2" for i in range(1, 5)]
    assert not (record / "scontrol").exists()  # finished normally: no requeue


def test_time_limit_signal_stops_the_step_and_requeues(tmp_path):
    proc, record = start_script(tmp_path, nodes=1, step_seconds=60)
    deadline = time.monotonic() + 20
    while not (record / "srun").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (record / "srun").exists(), "the step never started"
    time.sleep(0.2)  # let bash reach `wait`
    proc.send_signal(signal.SIGUSR1)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert (record / "scontrol").read_text().split() == ["requeue", "4242"]
    assert "time limit near" in out


def test_recurring_watcher_script_and_its_arguments(tmp_path):
    job, _ = parse_args(["watch", "runs/math-sft/big", "--every", "600", "--follow-job", "1234", "--gpus-per-node", "0"])
    script = render(job)
    bash_syntax_ok(script, tmp_path)
    assert launch_words(script)[1:] == ["-m", "eval.watch", "runs/math-sft/big", "--once"]
    assert 'EVERY="600"' in script and 'FOLLOW_JOB="1234"' in script and 'sbatch --begin="now+${EVERY}" "$0"' in script
    assert "--gpus-per-node" not in script  # G = 0: no GPU asked for
    with pytest.raises(SlurmError, match="--every and --follow-job are for `watch`"):
        render(SlurmJob(recipe="math-sft", every_s=60))
    with pytest.raises(SlurmError, match="needs --every"):
        render(SlurmJob(recipe="watch", config="runs/x", follow_job="12"))
