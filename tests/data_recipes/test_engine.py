"""The corpus build on datatrove's executors: the number of tasks (and the executor: local processes or a Slurm
job array) does not change a byte of the output, and the near dedup run in stages across tasks makes exactly
the decisions of the single-pass reference (dedup.near_duplicate_clusters over all signatures at once)."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from data_recipes.dedup import near_duplicate_clusters
from data_recipes.dedup_stages import alive_rows, bucket_edges, cluster_links, sorted_duplicates, stage_dir
from data_recipes.pipeline import build_corpus
from data_recipes.plan import load_plan
from data_recipes.workfiles import load_chunk_signatures

from .helpers import recipe

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def corpus_tree(root: Path) -> None:
    """Stdlib files, plus near copies (a line added) and exact copies (whitespace changed) of some of them."""
    files = [p for p in sorted(STDLIB.glob("*.py")) if 1_000 < p.stat().st_size < 12_000][:40]
    root.mkdir(parents=True)
    for i, path in enumerate(files):
        text = path.read_text()
        (root / path.name).write_text(text)
        if i % 4 == 0:
            (root / f"{path.stem}_near.py").write_text(text + "\n# a local patch\nPATCHED = True\n")
        if i % 7 == 0:
            (root / f"{path.stem}_copy.py").write_text(text.replace("\n", "  \n"))
    # A JSONL source after the folder: records (one a copy of a folder file), a malformed line, blank lines.
    lines = [json.dumps({"content": f.read_text(), "path": f"rec/{f.name}"}) for f in files[::3]]
    lines[2:2] = ["", "{not json", json.dumps({"content": files[0].read_text(), "path": "rec/again.py"})]
    (root.parent / "records.jsonl").write_text("\n".join(lines) + "\n")


def build(tmp: Path, name: str, **extra) -> Path:
    sources = [{"name": "lib", "kind": "tree", "path": str(tmp / "src")},
               {"name": "rec", "kind": "jsonl", "path": str(tmp / "records.jsonl"), "path_field": "path"}]
    # A token budget that cuts the source: mixture decisions must be exact across tasks too.
    cfg = recipe(tmp / name, sources, chunk_docs=3, mixture={"target_tokens": 60_000}, **extra)
    return build_corpus(cfg, keep_work=True)


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine")
    corpus_tree(tmp / "src")
    return tmp, build(tmp, "single", tasks=1, workers=1)


def test_single_task_build_exercises_every_decision(single):
    _, out = single
    removed = [json.loads(line) for line in (out / "removed_documents.jsonl").read_text().splitlines()]
    reasons = {r["reason"] for r in removed}
    assert {"exact_duplicate", "near_duplicate", "over_budget"} <= reasons
    rejected = [json.loads(line) for line in (out / "rejected_inputs.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected if r["doc_id"].startswith("rec:")] == ["malformed_jsonl"]
    near = {r["doc_id"]: r["duplicate_of"] for r in removed if r["reason"] == "near_duplicate"}
    assert all(k.endswith("_near.py") and v == k.replace("_near.py", ".py") for k, v in near.items() if k.startswith("lib:"))


def test_four_tasks_write_the_same_bytes(single):
    tmp, out = single
    four = build(tmp, "four", tasks=4, workers=2)
    assert len(load_plan(four / ".work")) >= 8  # enough chunks that every task had work
    mine, theirs = outputs(out), outputs(four)
    assert mine.keys() == theirs.keys() and len([n for n in mine if n.endswith(".bin")]) > 4
    for name in mine:
        assert mine[name] == theirs[name], name


@pytest.mark.parametrize("tasks", [1, 3, 5])
def test_staged_near_dedup_equals_the_single_pass_reference(single, tasks):
    _, out = single
    work = out / ".work"
    plan = load_plan(work)
    cfg = json.loads((out / "manifest.json").read_text())["recipe_config"]["dedup"]
    exact_dir = stage_dir(work, "exact", 1)
    duplicates = sorted_duplicates(exact_dir)
    signatures = np.concatenate([load_chunk_signatures(work, s.index, cfg["num_perm"])[alive_rows(work, s, duplicates)]
                                 for s in plan])  # fmt: skip
    labels = near_duplicate_clusters(signatures, cfg["bands"], cfg["threshold"])
    expected = {i: int(rep) for i, rep in enumerate(labels.tolist()) if rep != i}
    assert expected, "the input has no near duplicates to find"
    from data_recipes.config import DedupConfig

    dedup = DedupConfig(**cfg)
    shutil.rmtree(work / f"buckets-of-{tasks}", ignore_errors=True)
    for rank in range(tasks):
        bucket_edges(work, plan, dedup, exact_dir, rank, tasks)
    assert cluster_links(stage_dir(work, "buckets", tasks)).as_dict() == expected


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_job_array_writes_the_same_bytes(single):
    from tests.slurm_helpers import require_slurm

    require_slurm()
    tmp, out = single
    on_slurm = build(tmp, "slurm", tasks=4, executor="slurm", slurm={"time": "00:10:00", "poll_s": 0.5})
    mine, theirs = outputs(out), outputs(on_slurm)
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert mine[name] == theirs[name], name
    # One Slurm array task per datatrove task (<array job>_<task>.out; datatrove adds a stats job beside it).
    logs = [p.stem.split("_") for p in (on_slurm / ".work" / "logs" / "documents-of-4" / "slurm").glob("*.out")]
    by_job: dict[str, set[str]] = {}
    for job, task in logs:
        by_job.setdefault(job, set()).add(task)
    assert {"0", "1", "2", "3"} in by_job.values()


@pytest.mark.ray
@pytest.mark.slow
def test_ray_executor_writes_the_same_bytes(single, monkeypatch):
    """On a Ray instance started for the test (`ray.address=local`); skipped without the optional `ray`."""
    pytest.importorskip("ray")
    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # else a local init leaves a token that later `ray start`s use
    tmp, out = single
    try:
        on_ray = build(tmp, "ray", tasks=4, workers=2, executor="ray", ray={"address": "local"})
    finally:
        ray.shutdown()
    mine, theirs = outputs(out), outputs(on_ray)
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert mine[name] == theirs[name], name
