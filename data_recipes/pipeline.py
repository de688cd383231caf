"""Build a pretraining corpus from a recipe: `python -m data_recipes.pipeline [recipe.yaml] [key=value ...]`.

The launcher plans the chunks (plan.py), builds the decontamination index once and runs the four stages on
datatrove's executors (engine.py: `executor=local|slurm|ray`, `tasks=N`, `workers=N`): per-document stages
(language, heuristics, tree-sitter syntax, decontamination, tokenisation, MinHash) -> exact dedup by key
partition -> near dedup by LSH band -> one task that clusters the links, applies the mixture budgets in input
order and writes one token shard per chunk (shared/token_shards.py), the manifest, the stage report (JSON +
table) and the lists of rejected and removed documents.

Every decision depends only on the input order, never on the number of tasks or workers: the kept documents
and the concatenated token stream are the same for any of them. Resume: work files live in `<out>/.work/`;
a relaunch reruns only the unfinished tasks and keeps the shards already written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from data_recipes.config import NON_OUTPUT_FIELDS, CorpusRecipe
from data_recipes.decontaminate import build_index
from data_recipes.engine import run_stages, save_index
from data_recipes.plan import PLAN, load_plan, plan_chunks, save_plan
from data_recipes.tokenization import load_corpus_tokenizer, tokenizer_identity
from shared.config import parse_cli, to_dict
from shared.token_shards import MANIFEST

log = logging.getLogger("data_recipes")

DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "code_tiny.yaml"
FORMAT_VERSION = 4  # bump when chunk work files or selection rules change (invalidates resumable work)

def fingerprint(recipe: CorpusRecipe, tokenizer_sha: str, index_sha: str) -> str:
    resolved = {k: v for k, v in to_dict(recipe).items() if k not in NON_OUTPUT_FIELDS}
    blob = json.dumps([FORMAT_VERSION, resolved, tokenizer_sha, index_sha], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def claim_work_dir(out: Path, fp: str) -> Path:
    """`<out>/.work`, created or checked to belong to the same recipe (else resuming would mix two builds)."""
    work = out / ".work"
    marker = work / "fingerprint"
    if marker.exists() and marker.read_text() != fp:
        raise SystemExit(f"{out} holds a build of a different recipe or input set: delete it or pick another out_dir")
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(fp)
    return work


def build_corpus(recipe: CorpusRecipe, out_dir: str | Path | None = None, keep_work: bool = False) -> Path:
    """Run the whole recipe into `out_dir` (default: recipe.out_dir); resumes a killed run in the same folder."""
    out = Path(out_dir or recipe.out_dir)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = load_corpus_tokenizer(recipe.tokenizer)
    identity = tokenizer_identity(tokenizer, recipe.tokenizer)
    index = build_index(recipe.decontamination) if recipe.decontamination.enabled else build_index_empty(recipe)
    index_sha = hashlib.sha256(index.hashes.tobytes() + json.dumps(index.names).encode()).hexdigest()
    fp = fingerprint(recipe, identity["sha256"], index_sha)
    if (out / MANIFEST).exists() and not (out / ".work").exists():
        if json.loads((out / MANIFEST).read_text()).get("fingerprint") != fp:
            raise SystemExit(f"{out} holds a finished build of a different recipe or input: delete it to rebuild")
        log.info("%s is complete (manifest present, same recipe); delete it to rebuild", out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    work = claim_work_dir(out, fp)
    save_index(work, index)
    if not (work / PLAN).exists():
        started = time.monotonic()
        save_plan(work, plan_chunks(recipe))
        log.info("planned %d chunks in %.1f s", len(load_plan(work)), time.monotonic() - started)
    if not run_stages(recipe, work, out, {"identity": identity, "fingerprint": fp}):
        log.info("submitted; the build lands in %s (run the same command again to wait for it)", out)
        return out
    manifest = json.loads((out / MANIFEST).read_text())
    log.info("%s: %d shards, %d documents, %d tokens", out, len(manifest["shards"]), manifest["n_documents"],
             manifest["n_tokens"])  # fmt: skip
    if not keep_work:
        shutil.rmtree(work)
    return out


def build_index_empty(recipe: CorpusRecipe):
    from dataclasses import replace

    return build_index(replace(recipe.decontamination, benchmarks=[]))


def build_code_corpus(recipe_path: str | Path | None = None, out_dir: str | Path | None = None,
                      overrides: list[str] | None = None) -> Path:  # fmt: skip
    """For other recipes: build the corpus of `recipe_path` (default: the tiny code recipe) unless present."""
    from shared.config import load_config

    recipe = load_config(CorpusRecipe, recipe_path or DEFAULT_RECIPE, overrides)
    return build_corpus(recipe, out_dir)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    recipe = parse_cli(CorpusRecipe, argv, DEFAULT_RECIPE)
    out = build_corpus(recipe)
    if (out / MANIFEST).exists():
        print((out / "report.txt").read_text())
        print(f"shards and manifest in {out}")


if __name__ == "__main__":
    main()
