"""The corpus build on datatrove's executors: four stages, each a datatrove pipeline of one of our steps.

    documents (tasks)          per-document stages, chunk by chunk (task r: chunks r, r + tasks, ...)
    exact     (tasks)          exact-duplicate keys, one hash partition per task
    buckets   (tasks)          LSH (band, key) buckets by key partition, verified near-duplicate links
    assemble  (1)              clusters of links, replay, budgets, shards, manifest, report

Local runs the stages one after the other (LocalPipelineExecutor, `workers` processes); Slurm submits one job
array per stage chained with afterok dependencies (SlurmPipelineExecutor); Ray runs them on a Ray cluster
(RayPipelineExecutor). datatrove writes a completion marker per finished task under
`<out>/.work/logs/<stage>-of-<tasks>/completions/`, so a relaunch reruns only the unfinished tasks; inside a
task, finished chunks are skipped too (their work files are complete).
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from datatrove.pipeline.base import PipelineStep

from data_recipes.chunks import ChunkContext, process_chunk
from data_recipes.config import CorpusRecipe
from data_recipes.decontaminate import ContaminationIndex
from data_recipes.dedup import MinHasher
from data_recipes.dedup_stages import (
    DupMap,
    bucket_edges,
    cluster_links,
    exact_duplicates,
    exact_partition,
    stage_dir,
)
from data_recipes.plan import chunk_items, load_plan
from data_recipes.progress import Progress
from data_recipes.workfiles import load_chunk_meta

log = logging.getLogger("data_recipes")
INDEX = "decontamination.npz"
ROOT = Path(__file__).resolve().parents[1]
STAGES = ("documents", "exact", "buckets", "assemble")


def stage_tasks(recipe: CorpusRecipe) -> dict[str, int]:
    return {"documents": recipe.tasks, "exact": recipe.tasks, "buckets": recipe.tasks, "assemble": 1}


def save_index(work: Path, index: ContaminationIndex) -> None:
    """The decontamination index, built once by the launcher; every task maps it read-only."""
    if (work / INDEX).exists():
        return
    tmp = work / (INDEX + ".tmp.npz")
    meta = {"ngram": index.ngram, "names": index.names, "loaded": index.loaded, "missing": index.missing}
    np.savez(tmp, hashes=index.hashes, owner=index.owner, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    tmp.replace(work / INDEX)


def load_index(work: Path) -> ContaminationIndex:
    with np.load(work / INDEX) as data:
        meta = json.loads(data["meta"].tobytes())
        return ContaminationIndex(meta["ngram"], data["hashes"], data["owner"], meta["names"], meta["loaded"],
                                  meta["missing"])  # fmt: skip


class CorpusStep(PipelineStep):
    """One stage of the build as a datatrove step (pickled into Slurm jobs and Ray tasks)."""

    type = "qwen-specialists"

    def __init__(self, stage: str, recipe: CorpusRecipe, work: str, out: str, build: dict):
        super().__init__()
        self.name, self.stage, self.recipe, self.work, self.out, self.build = stage, stage, recipe, work, out, build

    def run(self, data, rank: int = 0, world_size: int = 1) -> Iterator:
        work = Path(self.work)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
        plan = load_plan(work)
        tasks = stage_tasks(self.recipe)
        log.info("stage %s: task %d/%d", self.stage, rank, world_size)
        if self.stage == "documents":
            self.documents(work, plan, rank, world_size)
        elif self.stage == "exact":
            exact_partition(work, plan, rank, world_size)
        elif self.stage == "buckets":
            bucket_edges(work, plan, self.recipe.dedup, stage_dir(work, "exact", tasks["exact"]), rank, world_size)
        else:
            from data_recipes.assemble import assemble

            none = DupMap(np.zeros((0, 2), np.int64))
            exact = exact_duplicates(stage_dir(work, "exact", tasks["exact"])) if self.recipe.dedup.exact else none
            near = cluster_links(stage_dir(work, "buckets", tasks["buckets"])) if self.recipe.dedup.near else none
            assemble(self.recipe, work, Path(self.out), plan, exact, near, load_index(work), self.build["identity"],
                     self.build["fingerprint"])  # fmt: skip
        yield from ()

    def documents(self, work: Path, plan, rank: int, world_size: int) -> None:
        from data_recipes.tokenization import end_of_text_id, fast_backend, load_corpus_tokenizer

        mine = plan[rank::world_size]
        recipe, d = self.recipe, self.recipe.dedup
        tokenizer = load_corpus_tokenizer(recipe.tokenizer)
        ctx = ChunkContext(recipe, fast_backend(tokenizer), end_of_text_id(tokenizer), load_index(work),
                           MinHasher(d.num_perm, d.shingle_size, d.seed), work)  # fmt: skip
        progress = Progress(f"documents task {rank}/{world_size}", sum(s.n_bytes for s in mine), recipe.log_every_s)
        for spec in mine:
            if load_chunk_meta(work, spec.index) is None:
                process_chunk(ctx, spec.index, chunk_items(recipe, spec))
            progress.update(spec.n_bytes, spec.count)
        progress.update(0, 0, force=True)


def executors(recipe: CorpusRecipe, work: Path, out: Path, build: dict) -> list:
    """One datatrove executor per stage, in order (Slurm ones chained by dependencies)."""
    made: list = []
    for stage, tasks in stage_tasks(recipe).items():
        step = CorpusStep(stage, recipe, str(work.resolve()), str(out.resolve()), build)
        logs = str((work / "logs" / f"{stage}-of-{tasks}").resolve())
        if recipe.executor == "local":
            from datatrove.executor import LocalPipelineExecutor

            # fork, not datatrove's default forkserver: a worker then starts in milliseconds instead of
            # re-importing numpy, tokenizers and tree-sitter (seconds per stage on a busy 2-core machine).
            made.append(LocalPipelineExecutor(pipeline=[step], tasks=tasks, workers=min(recipe.workers, tasks),
                                              logging_dir=logs, skip_completed=True, start_method="fork"))  # fmt: skip
        elif recipe.executor == "slurm":
            made.append(slurm_executor(recipe, step, tasks, logs, made[-1] if made else None))
        else:
            from datatrove.executor.ray import RayPipelineExecutor

            r = recipe.ray
            made.append(RayPipelineExecutor(pipeline=[step], tasks=tasks, workers=recipe.workers, logging_dir=logs,
                                            cpus_per_task=r.cpus_per_task, mem_per_cpu_gb=r.mem_per_cpu_gb,
                                            skip_completed=True))  # fmt: skip
    return made


def slurm_executor(recipe: CorpusRecipe, step: CorpusStep, tasks: int, logs: str, depends):
    from datatrove.executor import SlurmPipelineExecutor

    s = recipe.slurm
    partition = s.partition or default_partition()
    venv = s.venv or str(Path(sys.prefix) / "bin" / "activate")
    # The pickled steps must import in the job: this checkout goes first on its PYTHONPATH.
    env = f"source {shlex.quote(venv)}\nexport PYTHONPATH={shlex.quote(str(ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}"
    return SlurmPipelineExecutor(
        pipeline=[step], tasks=tasks, time=s.time, partition=partition, cpus_per_task=s.cpus_per_task,
        mem_per_cpu_gb=s.mem_per_cpu_gb, job_name=f"{s.job_name}-{step.stage}", qos=s.qos, logging_dir=logs,
        slurm_logs_folder=f"{logs}/slurm", env_command=env, depends=depends, skip_completed=True,
    )  # fmt: skip


def default_partition() -> str:
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    default = [p.rstrip("*") for p in out if p.endswith("*")]
    if not default and not out:
        raise SystemExit("slurm: no partition found (sinfo shows none); set slurm.partition")
    return default[0] if default else out[0]


def run_stages(recipe: CorpusRecipe, work: Path, out: Path, build: dict) -> bool:
    """Run (local, ray) or submit (slurm) every stage; True when the build is finished."""
    made = executors(recipe, work, out, build)
    if recipe.executor == "slurm":
        made[-1].run()  # submits the chain: each stage's array waits for the one before
        ids = [str(e.job_id) for e in made]
        print(f"submitted stages {', '.join(f'{s}: {j}' for s, j in zip(STAGES, ids, strict=True))}")
        if not recipe.slurm.wait:
            return False
        wait_for_slurm(made, ids, recipe.slurm.poll_s)
        return True
    if recipe.executor == "ray":
        import ray

        # "auto": the running cluster (`ray start --head`); "local": a fresh instance in this process.
        ray.init(address=None if recipe.ray.address == "local" else recipe.ray.address, ignore_reinit_error=True,
                 num_cpus=recipe.workers if recipe.ray.address == "local" else None)  # fmt: skip
    for stage, executor in zip(STAGES, made, strict=True):
        executor.run()
        incomplete = executor.get_incomplete_ranks(skip_completed=True)
        if incomplete:
            raise SystemExit(f"stage {stage}: tasks {incomplete} did not finish (see {executor.logging_dir.path})")
    return True


def wait_for_slurm(made: list, ids: list[str], poll_s: float) -> None:
    last = made[-1]
    while True:
        if not last.get_incomplete_ranks(skip_completed=True):
            return
        queued = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i"], capture_output=True, text=True)
        if not queued.stdout.strip():
            failed = [s for s, e in zip(STAGES, made, strict=True) if e.get_incomplete_ranks(skip_completed=True)]
            raise SystemExit(f"slurm jobs {', '.join(ids)} left the queue with stages {failed} unfinished "
                             f"(logs under {Path(last.logging_dir.path).parent}); relaunch to rerun them")
        time.sleep(poll_s)

