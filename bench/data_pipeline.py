"""Benchmark of the corpus pipeline (data_recipes) against its baselines, measured in the same run.

1. Near-dedup, one process, stdlib files plus planted near-duplicates (small edits), 128 permutations,
   5-token shingles, threshold 0.8: our MinHash + LSH (numpy) vs datasketch MinHash + MinHashLSH vs
   datatrove's MinhashDedupSignature (its signatures alone, our word tokens): docs/s and recall.
2. Whole pipeline on N MB of stdlib Python: the pipeline before the data engine (git revision BASELINE_REV,
   its own pool of 2 workers) vs the datatrove engine (tasks=4, workers=2), same recipe, same input, run one
   after the other: MB/s (wall incl. start-up), CPU seconds (user+sys of the process tree), peak RSS, and
   whether the outputs are byte-identical (shards, token index, document lists, report, rejected/removed lists,
   manifest minus its fingerprint and recipe echo).
3. Near-dedup memory per task: the buckets stage over S synthetic documents' signatures (stored as the
   documents stage writes them; 5% planted near-copies), each task in a fresh process, tasks=1 vs tasks=4:
   peak RSS per task (and an idle interpreter with the same imports, for scale).
4. Tokenisation alone: our stage (encode_batch_fast in 2 worker processes) vs `tokenizers` encode_batch in
   one process with its own thread pool.

    .venv/bin/python bench/data_pipeline.py [--base-mb 8] [--dedup-docs 1500] [--memory-docs 3000000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_recipes.dedup import MinHasher, near_duplicate_clusters  # noqa: E402
from data_recipes.tokenization import fast_backend, load_corpus_tokenizer  # noqa: E402
from shared.config import ModelConfig  # noqa: E402

EVAL_DATA = Path(os.environ.get("QS_SHARED_DATA", ROOT.parent / "shared" / "data"))  # as tests/conftest.py


def stdlib_python(max_mb: float) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    for p in sorted(root.rglob("*.py")):
        if "site-packages" in p.relative_to(root).parts:
            continue
        size = p.stat().st_size
        if total + size > max_mb * 1e6:
            break
        files.append(p)
        total += size
    return files


def make_tree(files: list[Path], dest: Path, replicas: int) -> int:
    root = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for r in range(replicas):
        for p in files:
            target = dest / f"copy{r:02d}" / p.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)
            total += p.stat().st_size
    return total


def peak_tree_rss(proc: subprocess.Popen, stop: threading.Event, result: list) -> None:
    """Peak RSS of the process tree and its CPU seconds (user+sys per process, last sample; 50 ms period)."""
    parent = psutil.Process(proc.pid)
    peak = 0
    cpu: dict[int, float] = {}
    while not stop.is_set():
        try:
            procs = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            for p in procs:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
        except psutil.Error:
            pass
        time.sleep(0.05)
    result.extend([peak, sum(cpu.values())])


BASELINE_REV = "8e8a440"  # the last commit with the pipeline's own pool (before the datatrove engine)


def baseline_checkout(dest: Path) -> Path:
    """data_recipes and shared as of BASELINE_REV, extracted from this repository's history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_REV, "data_recipes", "shared"],
                             capture_output=True, check=True).stdout  # fmt: skip
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_pipeline(tree: Path, out: Path, code: Path, extra: dict) -> dict:
    """One build in a fresh process tree: wall s, CPU s (user+sys, children included), peak RSS of the tree."""
    recipe = {
        "name": "bench", "out_dir": str(out),
        "sources": [{"name": "tree", "kind": "tree", "path": str(tree)}],
        "languages": ["python"], "workers": 2, "log_every_s": 30,
        "decontamination": {"enabled": EVAL_DATA.exists(), "data_dir": str(EVAL_DATA), "allow_hub": False},
        **extra,
    }  # fmt: skip
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "data_recipes.pipeline", str(path)], cwd=code, env=env,
                                stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        stop, peak = threading.Event(), list[float]()
        sampler = threading.Thread(target=peak_tree_rss, args=(proc, stop, peak))
        sampler.start()
        proc.wait()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError((out.parent / f"{out.name}.log").read_text()[-3000:])
    return {"wall": elapsed, "cpu": peak[1], "rss": peak[0]}


def compare_outputs(a: Path, b: Path) -> list[str]:
    """Files that differ between two builds (the manifest without its fingerprint and recipe echo)."""
    import json

    names = sorted({p.name for p in a.iterdir() if p.is_file()} | {p.name for p in b.iterdir() if p.is_file()})
    differ = []
    for name in names:
        if not (a / name).exists() or not (b / name).exists():
            differ.append(f"{name} (only in one)")
        elif name == "manifest.json":
            strip = lambda m: {k: v for k, v in m.items() if k not in ("fingerprint", "recipe_config")}  # noqa: E731
            if strip(json.loads((a / name).read_text())) != strip(json.loads((b / name).read_text())):
                differ.append(name)
        elif (a / name).read_bytes() != (b / name).read_bytes():
            differ.append(name)
    return differ


# ----------------------------------------------------------------------------- tokenisation

_TOK = None


def _encode_chunk(texts: list[str]) -> int:
    global _TOK
    if _TOK is None:
        _TOK = fast_backend(load_corpus_tokenizer(ModelConfig()))
    return sum(len(e.ids) for e in _TOK.encode_batch_fast(texts, add_special_tokens=False))


def bench_tokenisation(texts: list[str], n_bytes: int) -> dict:
    chunks = [texts[i : i + 50] for i in range(0, len(texts), 50)]
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    with mp.get_context("fork").Pool(2) as pool:
        pool.map(_encode_chunk, [chunks[0]] * 2)  # load the tokenizer in each worker first
        start = time.perf_counter()
        ours_tokens = sum(pool.map(_encode_chunk, chunks))
        ours = time.perf_counter() - start
    code = (
        "import os,sys,time,json; os.environ['TOKENIZERS_PARALLELISM']='true'\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from shared.tokenizer import load_tiny_tokenizer\n"
        "tok = load_tiny_tokenizer(4096).backend_tokenizer\n"
        "texts = json.load(open(sys.argv[2]))\n"
        "t = time.perf_counter(); n = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))\n"
        "print(time.perf_counter() - t, n)\n"
    )  # a fresh process: the parallelism setting is fixed once the Rust pool starts
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        import json

        json.dump(texts, f)
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), f.name], capture_output=True, text=True, check=True)
    os.unlink(f.name)
    base_s, base_tokens = out.stdout.split()
    assert int(base_tokens) == ours_tokens, "the two tokenisations disagree"
    return {"ours_mb_s": n_bytes / ours / 1e6, "tokenizers_mb_s": n_bytes / float(base_s) / 1e6,
            "ratio": float(base_s) / ours, "tokens": ours_tokens}  # fmt: skip


# ----------------------------------------------------------------------------- near-dedup

_TOKEN = re.compile(r"[A-Za-z0-9_\x80-\U0010ffff]+|[^\sA-Za-z0-9_]")  # the tokens of data_recipes.ngrams


def small_edit(text: str, k: int) -> str:
    lines = text.splitlines()
    if len(lines) > 10:
        del lines[len(lines) // 3]
    lines.insert(len(lines) // 2, f"# edited copy {k}")
    return "\n".join(lines).replace("self", "this", 1) + "\n"


def dedup_corpus(n_docs: int) -> tuple[list[str], dict[int, int]]:
    files = [p for p in stdlib_python(40) if 2_000 < p.stat().st_size < 60_000][: int(n_docs / 1.2)]
    docs = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    planted = {}
    for k, i in enumerate(range(0, len(files), 5)):
        planted[len(docs)] = i
        docs.append(small_edit(docs[i], k))
    return docs, planted


def bench_ours(docs: list[str], planted: dict[int, int]) -> tuple[float, float, int]:
    start = time.perf_counter()
    hasher = MinHasher(128, 5, seed=1)
    labels = near_duplicate_clusters(np.stack([hasher.signature(t) for t in docs]), bands=16, threshold=0.8)
    elapsed = time.perf_counter() - start
    recall = np.mean([labels[c] == labels[o] for c, o in planted.items()])
    originals = [i for i in range(len(docs)) if i not in planted]
    merged = sum(labels[i] != i for i in originals)  # distinct files put in another file's cluster
    return len(docs) / elapsed, float(recall), int(merged)


def bench_datasketch(docs: list[str], planted: dict[int, int]) -> tuple[float, float, int]:
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    # Permutations drawn once and shared (its fastest use); affine32 is the datasketch 2.x default scheme.
    permutations = MinHash(num_perm=128, seed=1, scheme="affine32").permutations
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    found: dict[int, set] = {}
    for i, text in enumerate(docs):
        tokens = _TOKEN.findall(text)
        shingles = {" ".join(tokens[j : j + 5]).encode() for j in range(max(len(tokens) - 4, 1))}
        m = MinHash(num_perm=128, permutations=permutations, scheme="affine32")
        m.update_batch(list(shingles))
        found[i] = set(lsh.query(m))
        lsh.insert(i, m)
    elapsed = time.perf_counter() - start
    recall = np.mean([o in found[c] for c, o in planted.items()])
    merged = sum(any(j not in planted for j in found[i]) for i in range(len(docs)) if i not in planted)
    return len(docs) / elapsed, float(recall), int(merged)


def bench_datatrove(docs: list[str], planted: dict[int, int]) -> tuple[float, float]:
    """datatrove's MinHash signatures (16 buckets x 8 hashes, 5-grams, its 64-bit hashing) with our word
    tokens (its default tokeniser needs spacy); recall: a planted pair shares a bucket (its candidate rule)."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Words(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return _TOKEN.findall(text)

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    with tempfile.TemporaryDirectory() as tmp:
        config = MinhashConfig(n_grams=5, num_buckets=16, hashes_per_bucket=8)
        step = MinhashDedupSignature(tmp, config, language=Words())  # type: ignore[arg-type]
    start = time.perf_counter()
    sigs = [step.get_signature(step.get_shingles(text)) for text in docs]
    elapsed = time.perf_counter() - start
    recall = np.mean([any(x == y for x, y in zip(sigs[c], sigs[o], strict=True)) for c, o in planted.items()])
    return len(docs) / elapsed, float(recall)


MEMORY_CHILD = """
import re, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from data_recipes.config import DedupConfig
from data_recipes.dedup_stages import bucket_edges, stage_dir
from data_recipes.plan import load_plan
work, rank, tasks = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if tasks:
    bucket_edges(work, load_plan(work), DedupConfig(), stage_dir(work, "exact", 1), rank, tasks)
# VmHWM, not ru_maxrss: the latter keeps the forking parent's size across exec.
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024)
"""


def synthetic_signatures(work: Path, n_docs: int, per_chunk: int = 50_000) -> None:
    """Signatures of n_docs documents in the documents stage's files: random, 5% near-copies of earlier ones
    (10% of the positions redrawn), as many chunks as needed; no exact duplicates."""
    import io

    from data_recipes.dedup_stages import stage_dir
    from data_recipes.plan import ChunkSpec, save_plan

    rng = np.random.default_rng(0)
    work.mkdir(parents=True)
    stage_dir(work, "exact", 1)
    plan, previous = [], None
    for c, start in enumerate(range(0, n_docs, per_chunk)):
        m = min(per_chunk, n_docs - start)
        sigs = rng.integers(0, 2**32 - 1, size=(m, 128), dtype=np.uint32)
        if previous is not None:
            copies = rng.choice(m, m // 20, replace=False)
            sigs[copies] = previous[rng.integers(0, len(previous), len(copies))]
            redraw = rng.random(sigs[copies].shape) < 0.1
            sigs[copies] = np.where(redraw, rng.integers(0, 2**32 - 1, sigs[copies].shape, dtype=np.uint32),
                                    sigs[copies])  # fmt: skip
        previous = sigs
        (work / f"chunk-{c:05d}.sig").write_bytes(sigs.astype("<u4").tobytes())
        arrays = io.BytesIO()
        np.savez(arrays, keys=np.zeros((0, 16), np.uint8), key_pos=np.zeros(0, np.int64), passed=np.arange(m))
        (work / f"chunk-{c:05d}.npz").write_bytes(arrays.getvalue())
        plan.append(ChunkSpec(c, [[0, start, m]], m, 0, start))
    save_plan(work, plan)


def bench_memory(n_docs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        synthetic_signatures(work, n_docs)

        def task(rank: int, tasks: int) -> int:
            out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(ROOT), str(work), str(rank), str(tasks)],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            return int(out.stdout.split()[-1])

        idle = task(0, 0)
        one = task(0, 1)
        four = [task(r, 4) for r in range(4)]
    return {"idle": idle, "one": one, "four": four}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-mb", type=float, default=8.0)
    parser.add_argument("--dedup-docs", type=int, default=1500)
    parser.add_argument("--memory-docs", type=int, default=3_000_000)
    parser.add_argument("--only", choices=["dedup", "pipeline", "memory", "tokenisation"])
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    if args.only in (None, "dedup"):
        docs, planted = dedup_corpus(args.dedup_docs)
        ours_rate, ours_recall, ours_merged = bench_ours(docs, planted)
        ds_rate, ds_recall, ds_merged = bench_datasketch(docs, planted)
        dt_rate, dt_recall = bench_datatrove(docs, planted)
        print(f"near-dedup on {len(docs)} docs ({len(planted)} planted near-duplicates), one process:")
        print(f"  ours       {ours_rate:8.0f} docs/s  recall {ours_recall:.3f}  distinct files merged {ours_merged}")
        print(f"  datasketch {ds_rate:8.0f} docs/s  recall {ds_recall:.3f}  distinct files matched {ds_merged}")
        print(f"  datatrove  {dt_rate:8.0f} docs/s  recall {dt_recall:.3f}  (signatures alone, no LSH)")
        print(f"  ratio ours/datasketch: {ours_rate / ds_rate:.2f}x, ours/datatrove signatures: {ours_rate / dt_rate:.2f}x")

    files = stdlib_python(args.base_mb)
    if args.only in (None, "pipeline"):
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            size = make_tree(files, tmp_path / "tree", 1)
            before = run_pipeline(tmp_path / "tree", tmp_path / "before", baseline_checkout(tmp_path / "base"), {})
            engine = run_pipeline(tmp_path / "tree", tmp_path / "engine", ROOT, {"tasks": 4})
            for name, r in (("before the engine (own pool, 2 workers)", before), ("datatrove engine (tasks=4, workers=2)", engine)):
                print(f"pipeline {name}: {size / 1e6:.1f} MB in {r['wall']:.1f} s = {size / r['wall'] / 1e6:.2f} MB/s, "
                      f"CPU {r['cpu']:.1f} s, peak RSS {r['rss'] / 2**20:.0f} MiB")  # fmt: skip
            print(f"  ratio engine/before: {before['wall'] / engine['wall']:.2f}x wall, {before['cpu'] / engine['cpu']:.2f}x CPU")
            differ = compare_outputs(tmp_path / "before", tmp_path / "engine")
            print(f"  outputs {'byte-identical' if not differ else 'DIFFER: ' + ', '.join(differ)}")

    if args.only in (None, "memory"):
        mem = bench_memory(args.memory_docs)
        mib = lambda x: x / 2**20  # noqa: E731
        print(f"near-dedup buckets stage, {args.memory_docs:,} synthetic documents' signatures, peak RSS per task:")
        print(f"  tasks=1: {mib(mem['one']):.0f} MiB; tasks=4: {', '.join(f'{mib(x):.0f}' for x in mem['four'])} MiB "
              f"(idle interpreter with the imports: {mib(mem['idle']):.0f} MiB)")  # fmt: skip
        print(f"  ratio max(tasks=4) / tasks=1: {max(mem['four']) / mem['one']:.2f}")

    if args.only in (None, "tokenisation"):
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
        n_bytes = sum(len(t.encode()) for t in texts)
        tok = bench_tokenisation(texts, n_bytes)
        print(f"tokenisation of {n_bytes / 1e6:.1f} MB: ours (2 procs, encode_batch_fast) {tok['ours_mb_s']:.2f} MB/s, "
              f"tokenizers encode_batch (threads) {tok['tokenizers_mb_s']:.2f} MB/s, ratio {tok['ratio']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
