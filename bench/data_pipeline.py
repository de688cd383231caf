"""Benchmark of the corpus pipeline (data_recipes) against its baselines, measured in the same run.

1. Whole pipeline (workers=2) on N MB of stdlib Python and on a 10x replicated copy: MB/s, peak RSS of the
   process tree (parent + workers, sampled every 50 ms).
2. Tokenisation alone: our stage (encode_batch_fast in 2 worker processes, as the pipeline runs it) vs
   `tokenizers` encode_batch in one process with its own thread pool (TOKENIZERS_PARALLELISM=true).
   The replicas are exact copies: they are removed by the exact-dedup hash while reading, so the 10x run
   measures streaming and memory, while the 1x run measures every stage on distinct files.
3. Near-dedup: our MinHash + LSH (numpy) vs datasketch MinHash + MinHashLSH with the same parameters
   (128 permutations, 5-token shingles, threshold 0.8) on stdlib files plus planted near-duplicates
   (small edits): docs/s in one process, and recall of the planted pairs.

    .venv/bin/python bench/data_pipeline.py [--base-mb 8] [--replicas 10] [--dedup-docs 1500]
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

EVAL_DATA = ROOT.parent / "shared" / "data"


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


def peak_tree_rss(proc: subprocess.Popen, stop: threading.Event, result: list[int]) -> None:
    parent = psutil.Process(proc.pid)
    peak = 0
    while not stop.is_set():
        try:
            procs = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    result.append(peak)


def run_pipeline(tree: Path, out: Path, workers: int) -> tuple[float, int, str]:
    recipe = {
        "name": "bench", "out_dir": str(out),
        "sources": [{"name": "tree", "kind": "tree", "path": str(tree)}],
        "languages": ["python"], "workers": workers, "log_every_s": 30,
        "decontamination": {"enabled": EVAL_DATA.exists(), "data_dir": str(EVAL_DATA), "allow_hub": False},
    }  # fmt: skip
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "data_recipes.pipeline", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    stop, peak = threading.Event(), list[int]()
    sampler = threading.Thread(target=peak_tree_rss, args=(proc, stop, peak))
    sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(err.decode()[-3000:])
    stage_lines = [line for line in err.decode().splitlines() if "read+filter+tokenise" in line]
    return elapsed, peak[0], stage_lines[-1].split("read+filter+tokenise: ")[-1] if stage_lines else "?"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-mb", type=float, default=8.0)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--dedup-docs", type=int, default=1500)
    parser.add_argument("--only-dedup", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")

    docs, planted = dedup_corpus(args.dedup_docs)
    ours_rate, ours_recall, ours_merged = bench_ours(docs, planted)
    ds_rate, ds_recall, ds_merged = bench_datasketch(docs, planted)
    print(f"near-dedup on {len(docs)} docs ({len(planted)} planted near-duplicates), one process:")
    print(f"  ours       {ours_rate:8.0f} docs/s  recall {ours_recall:.3f}  distinct files merged {ours_merged}")
    print(f"  datasketch {ds_rate:8.0f} docs/s  recall {ds_recall:.3f}  distinct files matched {ds_merged}")
    print("  (distinct-file matches are real stdlib near-duplicates, e.g. encodings/cp*.py)")
    print(f"  ratio ours/datasketch: {ours_rate / ds_rate:.2f}x")
    if args.only_dedup:
        return

    files = stdlib_python(args.base_mb)
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    n_bytes = sum(len(t.encode()) for t in texts)
    tok = bench_tokenisation(texts, n_bytes)
    print(f"tokenisation of {n_bytes / 1e6:.1f} MB: ours (2 procs, encode_batch_fast) {tok['ours_mb_s']:.2f} MB/s, "
          f"tokenizers encode_batch (threads) {tok['tokenizers_mb_s']:.2f} MB/s, ratio {tok['ratio']:.2f}x")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        results = {}
        for replicas in (1, args.replicas):
            tree = tmp_path / f"tree{replicas}"
            size = make_tree(files, tree, replicas)
            elapsed, rss, stage = run_pipeline(tree, tmp_path / f"out{replicas}", workers=2)
            results[replicas] = (size, elapsed, rss)
            print(f"pipeline x{replicas}: {size / 1e6:.1f} MB in {elapsed:.1f}s = {size / elapsed / 1e6:.2f} MB/s "
                  f"(2 workers, incl. start-up), peak RSS {rss / 2**20:.0f} MiB")  # fmt: skip
            print(f"  per-document stages alone (pipeline's progress line): {stage}")
            shutil.rmtree(tree)
        (s1, _, r1), (s10, _, r10) = results[1], results[args.replicas]
        print(f"peak RSS growth for {s10 / s1:.0f}x input: {100 * (r10 / r1 - 1):+.1f}%")


if __name__ == "__main__":
    main()
