"""`just slurm <recipe> [config.yaml] [key=value ...] [--nodes N --gpus-per-node G ...] [--dry-run]`.

Renders an sbatch script for a recipe from shared/slurm_templates/ and submits it with sbatch (`--dry-run`
prints it instead). The script:
- asks for N nodes with one launcher task each and G GPUs per node, logs to <logs-dir>/%x-%j.out;
- reads the master address from the allocation (`scontrol show hostnames`), picks a port from the job id and
  writes a DeepSpeed hostfile (`<node> slots=G`);
- launches `python -m <module> [config] [overrides]` on every GPU with torchrun (one per node, c10d
  rendezvous) or the DeepSpeed launcher (pdsh from the first node over the hostfile); both export RANK,
  LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, which the recipes read;
- is `--requeue`d: on preemption Slurm requeues it, and near the time limit (USR1) it requeues itself; the
  requeued job runs the same recipe command, which resumes the run from its last checkpoint.
`--gpus-per-node 0` requests no GPU: one CPU rank per node. On submission it prints sbatch's own
"Submitted batch job <id>" line on stdout (the script's path goes to stderr).

Recipes: code-pretrain, code-sft, math-sft, math-rft (or their module names) and `watch <run-dir>` (the
checkpoint watcher, one GPU on one node). `watch <run-dir> --every S [--follow-job ID]` is a recurring job:
each submission makes one pass over the pending checkpoints and submits itself again to begin S seconds later,
until job ID has left the queue (or, without --follow-job, until the run has its export/).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATES = Path(__file__).with_name("slurm_templates")
ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class SlurmRecipe:
    module: str
    template: str
    default_time: str


RECIPES = {
    "code-pretrain": SlurmRecipe("code_qwen.pretrain", "pretrain", "48:00:00"),
    "code-sft": SlurmRecipe("code_qwen.sft", "sft", "24:00:00"),
    "math-sft": SlurmRecipe("math_qwen.sft", "sft", "24:00:00"),
    "math-rft": SlurmRecipe("math_qwen.rft", "rft", "24:00:00"),
    "watch": SlurmRecipe("eval.watch", "watch", "24:00:00"),
}
MODULES = {r.module: name for name, r in RECIPES.items()}
# Sensible defaults for every job; --env KEY=VALUE adds or overrides.
DEFAULT_ENV = {"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}


class SlurmError(ValueError):
    """Arguments that cannot make a valid job script."""


@dataclass
class SlurmJob:
    recipe: str
    config: str | None = None
    overrides: list[str] = field(default_factory=list)
    nodes: int = 1
    gpus_per_node: int | None = None  # None: 8 for training, 1 for the watcher
    cpus_per_task: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    mem: str | None = None
    job_name: str | None = None
    launcher: str = "torchrun"
    logs_dir: str = "logs/slurm"
    python: str = ".venv/bin/python"
    workdir: str = str(ROOT)
    env: dict[str, str] = field(default_factory=dict)
    signal_lead_s: int = 300
    watch_args: str = ""
    every_s: int | None = None  # watch: recur every S seconds (one pass per submission)
    follow_job: str | None = None  # watch with every_s: stop recurring once this job has left the queue
    hold: bool = False  # submit held (released with `scontrol release <id>`)

    @property
    def spec(self) -> SlurmRecipe:
        return RECIPES[self.recipe]

    @property
    def gpus(self) -> int:
        if self.gpus_per_node is not None:
            return self.gpus_per_node
        return 1 if self.recipe == "watch" else 8

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            raise SlurmError(f"unknown recipe {self.recipe!r}; one of {', '.join(RECIPES)} (or their modules)")
        if self.nodes < 1 or self.gpus < 0:
            raise SlurmError("--nodes must be >= 1 and --gpus-per-node >= 0")
        if self.launcher not in {"torchrun", "deepspeed"}:
            raise SlurmError("--launcher must be torchrun or deepspeed")
        if self.recipe == "watch" and (self.config is None or self.nodes != 1):
            raise SlurmError("watch takes a run folder (`just slurm watch runs/<recipe>/<run>`) and one node")
        if (self.every_s is not None or self.follow_job) and self.recipe != "watch":
            raise SlurmError("--every and --follow-job are for `watch`")
        if self.every_s is not None and self.every_s < 1:
            raise SlurmError("--every must be >= 1 second")
        if self.follow_job and (self.every_s is None or not self.follow_job.isdigit()):
            raise SlurmError("--follow-job takes a job id and needs --every")
        for item in self.overrides:
            if "=" not in item:
                raise SlurmError(f"override {item!r} is not key=value")
        for key in self.env:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise SlurmError(f"--env {key!r} is not a valid variable name")

    def name(self) -> str:
        run_name = next((o.split("=", 1)[1] for o in self.overrides if o.startswith("run_name=")), None)
        if self.recipe == "watch" and self.config:
            run_name = Path(self.config).name
        return self.job_name or "-".join(x for x in (self.recipe, run_name) if x)


def sbatch_options(job: SlurmJob) -> str:
    lines = [
        f"--job-name={job.name()}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",  # one launcher per node; it starts one process per GPU
        f"--time={job.time or job.spec.default_time}",
        f"--output={job.logs_dir}/%x-%j.out",
        "--open-mode=append",  # a requeued job appends to the same log
        "--requeue",
        f"--signal=B:USR1@{job.signal_lead_s}",
    ]
    if job.gpus:
        lines.append(f"--gpus-per-node={job.gpus}")
    if job.hold:
        lines.append("--hold")
    optional = {"cpus-per-task": job.cpus_per_task, "partition": job.partition, "account": job.account,
                "qos": job.qos, "mem": job.mem}
    lines += [f"--{key}={value}" for key, value in optional.items() if value]
    return "\n".join(f"#SBATCH {line}" for line in lines)


def recipe_arguments(job: SlurmJob) -> list[str]:
    if job.recipe == "watch":
        once = ["--once"] if job.every_s is not None else []
        return [job.config or "", *once, *shlex.split(job.watch_args)]
    return ([job.config] if job.config else []) + job.overrides


def launch_command(job: SlurmJob) -> str:
    """The command line (bash words) that starts the recipe on every GPU of the allocation."""
    args = " ".join(shlex.quote(a) for a in recipe_arguments(job))
    python = shlex.quote(job.python)
    if job.recipe == "watch":
        return f"{python} -m {job.spec.module} {args}".rstrip()
    nproc = max(job.gpus, 1)
    if job.launcher == "torchrun":
        return (f"srun --kill-on-bad-exit=1 --nodes={job.nodes} --ntasks-per-node=1 "
                f"{python} -m torch.distributed.run --nnodes={job.nodes} --nproc_per_node={nproc} "
                f'--rdzv_id="${{SLURM_JOB_ID}}" --rdzv_backend=c10d --rdzv_endpoint="${{MASTER_ADDR}}:${{MASTER_PORT}}" '
                f"-m {job.spec.module} {args}").rstrip()
    return (f'{python} -m deepspeed.launcher.runner --hostfile="${{HOSTFILE}}" --num_nodes={job.nodes} '
            f'--num_gpus={nproc} --master_addr="${{MASTER_ADDR}}" --master_port="${{MASTER_PORT}}" '
            f"--no_local_rank --module {job.spec.module} {args}").rstrip()


def fill(template: str, values: dict[str, str], source: str) -> str:
    missing = sorted(set(PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise SlurmError(f"{source}: no value for placeholder(s) {missing}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def render(job: SlurmJob) -> str:
    """The sbatch script for a job (validated first)."""
    job.validate()
    env = {**DEFAULT_ENV, **job.env}
    values = {
        "job_name": job.name(), "nodes": str(job.nodes), "gpus_per_node": str(max(job.gpus, 1)),
        "launcher": job.launcher, "module": job.spec.module, "run_dir": job.config or "",
        "workdir": shlex.quote(job.workdir), "logs_dir": shlex.quote(job.logs_dir),
        "signal_lead_s": str(job.signal_lead_s), "sbatch_options": sbatch_options(job),
        "env_exports": "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items()),
        "launch_command": launch_command(job), "run_dir_q": shlex.quote(job.config or ""),
        "every_s": str(job.every_s or ""), "follow_job": job.follow_job or "",
    }
    for part in ("setup", "distributed", "requeue"):
        path = TEMPLATES / f"_{part}.sh.tmpl"
        values[part] = fill(path.read_text(encoding="utf-8"), values, path.name).rstrip("\n")
    path = TEMPLATES / f"{job.spec.template}.sbatch.tmpl"
    return fill(path.read_text(encoding="utf-8"), values, path.name)


def submit(job: SlurmJob, script: str) -> str:
    """Write the script next to the logs and hand it to sbatch; returns sbatch's answer (the job id line)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SlurmError("sbatch not found: run this on a Slurm login node, or use --dry-run to see the script")
    logs = Path(job.workdir) / job.logs_dir
    logs.mkdir(parents=True, exist_ok=True)  # sbatch does not create the --output folder
    path = logs / f"{job.name()}-{time.strftime('%Y%m%d-%H%M%S')}.sbatch"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run([sbatch, str(path)], capture_output=True, text=True, cwd=job.workdir)
    if done.returncode != 0:
        raise SlurmError(f"sbatch failed ({done.returncode}): {done.stderr.strip()}")
    print(f"slurm: script {path}", file=sys.stderr)
    return done.stdout.strip()


def parse_args(argv: list[str] | None) -> tuple[SlurmJob, bool]:
    parser = argparse.ArgumentParser(prog="just slurm", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help=f"one of {', '.join(RECIPES)} or a recipe module")
    parser.add_argument("args", nargs="*", help="[config.yaml] [key=value ...]; for watch: the run folder")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, help="default 8 (training), 1 (watch)")
    parser.add_argument("--cpus-per-task", type=int)
    parser.add_argument("--partition")
    parser.add_argument("--account")
    parser.add_argument("--qos")
    parser.add_argument("--time", help="HH:MM:SS (default per recipe)")
    parser.add_argument("--mem")
    parser.add_argument("--job-name")
    parser.add_argument("--launcher", default="torchrun", choices=["torchrun", "deepspeed"])
    parser.add_argument("--logs-dir", default="logs/slurm")
    parser.add_argument("--python", default=".venv/bin/python", help="interpreter on the compute nodes")
    parser.add_argument("--workdir", default=str(ROOT), help="checkout on the shared filesystem")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--signal-lead", type=int, default=300, help="seconds before the time limit to requeue")
    parser.add_argument("--watch-args", default="", help="extra eval.watch flags, e.g. '--interval 600'")
    parser.add_argument("--every", type=int, help="watch: recurring job, one pass every S seconds")
    parser.add_argument("--follow-job", help="watch --every: recur until this (training) job leaves the queue")
    parser.add_argument("--hold", action="store_true", help="submit held; `scontrol release <id>` starts it")
    parser.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    a = parser.parse_args(argv)
    recipe = MODULES.get(a.recipe, a.recipe)
    config = a.args[0] if a.args and ("=" not in a.args[0] or recipe == "watch") else None
    overrides = a.args[1:] if config is not None else a.args
    bad_env = [e for e in a.env if "=" not in e]
    if bad_env:
        parser.error(f"--env needs KEY=VALUE, got {bad_env}")
    job = SlurmJob(recipe=recipe, config=config, overrides=overrides, nodes=a.nodes, gpus_per_node=a.gpus_per_node,
                   cpus_per_task=a.cpus_per_task, partition=a.partition, account=a.account, qos=a.qos,
                   time=a.time, mem=a.mem, job_name=a.job_name, launcher=a.launcher, logs_dir=a.logs_dir,
                   python=a.python, workdir=a.workdir, env=dict(e.split("=", 1) for e in a.env),
                   signal_lead_s=a.signal_lead, watch_args=a.watch_args, every_s=a.every,
                   follow_job=a.follow_job, hold=a.hold)
    return job, a.dry_run


def main(argv: list[str] | None = None) -> None:
    try:
        job, dry_run = parse_args(argv)
        script = render(job)
        print(script if dry_run else submit(job, script))
    except SlurmError as exc:
        sys.exit(f"slurm: {exc}")


if __name__ == "__main__":
    main()
