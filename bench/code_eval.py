"""Benchmark the code evaluator against its baselines, measured in the same run.

1. HumanEval+ (164 canonical solutions, base + plus tests): evalplus 0.3.1's own `evaluate` vs `python -m
   eval.code --benchmark humaneval` (whole process, imports included), both with the same worker count,
   each first with a cold cache (fresh folders, so each computes its ground truth) and then warm (the
   second run, as when the next checkpoint is evaluated); verdicts compared. `--copies N` puts each
   solution N times in the samples file, as n samples per task for pass@k. It also prints the floor of any
   cold run: the canonical CPU once for the ground truth and once per sample, plus one sandboxed
   interpreter start per sample.
2. HumanEvalPack canonical solutions in six languages: ours (sandboxed, parallel, warm javac, Go build
   cache, prebuilt Rust crates) on all problems vs a plain sequential compile-and-run of the same
   programs (no sandbox, one cold compiler per sample) on a subset, as seconds per problem.

    .venv/bin/python bench/code_eval.py [--data ../shared/data] [--workers 2] [--baseline-problems 40]
                                        [--only humanevalplus|humanevalpack] [--copies 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.code.humanevalpack import evaluate_humanevalpack  # noqa: E402
from eval.code.languages import LANGUAGES, Program  # noqa: E402
from eval.code.problems import read_records  # noqa: E402

EVALPLUS_SCRIPT = """
import json, sys, time
from evalplus.evaluate import evaluate
start = time.time()
evaluate(dataset="humaneval", samples=sys.argv[1], parallel=int(sys.argv[2]), i_just_wanna_run=True)
print("EVALUATE_SECONDS", time.time() - start, flush=True)
"""


def evalplus_run(problems_gz: Path, samples: Path, workers: int, tmp: Path) -> tuple[float, float, dict]:
    """(seconds inside evaluate(), seconds of the whole process, {task: (base, plus)}); its cache in tmp, so
    the first call is cold (it computes the ground truth) and later ones warm."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg-cache"), "HUMANEVAL_OVERRIDE_PATH": str(problems_gz),
           "TQDM_DISABLE": "1"}
    result_file = Path(str(samples).replace(".jsonl", "_eval_results.json"))
    result_file.unlink(missing_ok=True)  # else evalplus asks on stdin whether to reuse it
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", EVALPLUS_SCRIPT, str(samples), str(workers)], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"evalplus failed: {proc.stderr[-2000:]}")
    inner = float(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("EVALUATE_SECONDS")))
    results = json.loads(result_file.read_text())
    verdicts = {t: (all(x["base_status"] == "pass" for x in r), all(x["plus_status"] == "pass" for x in r))
                for t, r in results["eval"].items()}
    return inner, wall, verdicts


def ours_humaneval(problems_gz: Path, samples: Path, workers: int, tmp: Path) -> tuple[float, dict]:
    """Whole process; its code-eval cache (ground truth included) in tmp: cold the first time, then warm."""
    out = tmp / "ours"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "QS_CODE_EVAL_CACHE": str(tmp / "ours-cache")}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "eval.code", "--benchmark", "humaneval", "--problems",
                           str(problems_gz), "--samples", str(samples), "--out", str(out), "--workers",
                           str(workers), "--quiet"], cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"eval.code failed: {proc.stderr[-2000:]}")
    verdicts: dict = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        base, plus = verdicts.get(r["task_id"], (True, True))
        verdicts[r["task_id"]] = (base and r["base_passed"], plus and r["plus_passed"])
    return wall, verdicts


def canonical_cpu_seconds(problems_gz: Path) -> float:
    """CPU seconds of the canonical solutions on every base and plus input, run here without any harness: a cold
    evaluation must spend this twice (ground truth and sample), so 2 x this / workers bounds any evaluator."""
    import contextlib
    import io
    import marshal

    from eval.code.evalplus_runner import prepare_problems

    total = 0.0
    for p in prepare_problems(read_records(problems_gz), "humaneval").values():
        namespace: dict = {}
        exec(p["prompt"] + p["canonical_solution"], namespace)  # the dataset's own reference code
        fn = namespace[p["entry_point"]]
        inputs = [marshal.dumps(list(i)) for i in p["base_input"] + p["plus_input"]]
        with contextlib.redirect_stdout(io.StringIO()):
            start = time.process_time()
            for blob in inputs:
                fn(*marshal.loads(blob))
            total += time.process_time() - start
    return total


def sandboxed_start_seconds(code: str, n: int = 40) -> float:
    """Median wall time of one sandboxed interpreter start running `code`: what each sample costs at the least
    when every sample gets its own sandbox and interpreter, as the issue's isolation asks."""
    from eval.code.sandbox import Limits, Sandbox

    sandbox, times = Sandbox(), []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(n):
            times.append(sandbox.run([sys.executable, "-I", "-S", "-c", code], Path(d), limits=Limits()).wall_s)
    return sorted(times)[n // 2]


def bench_humanevalplus(data: Path, workers: int, copies: int) -> None:
    """copies > 1: each canonical solution that many times, as n samples per task for pass@k (verdicts per task:
    all copies pass)."""
    problems_gz = data / "humanevalplus" / "HumanEvalPlus.jsonl.gz"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        samples = tmp / "samples.jsonl"
        rows = read_records(problems_gz)
        samples.write_text("".join(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]}) + "\n"
                                   for r in rows for _ in range(copies)))
        ev_inner, ev_wall, ev = evalplus_run(problems_gz, samples, workers, tmp)
        ours_wall, ours = ours_humaneval(problems_gz, samples, workers, tmp)
        ev_warm_inner, ev_warm_wall, _ = evalplus_run(problems_gz, samples, workers, tmp)
        ours_warm, ours_again = ours_humaneval(problems_gz, samples, workers, tmp)
    differ = sorted(t for t in ours if ours[t] != ev.get(t))
    canonical = canonical_cpu_seconds(problems_gz)
    floor = (1 + copies) * canonical / workers
    start_s = sandboxed_start_seconds("pass")
    process_floor = floor + copies * len(ours) * start_s / workers
    print(f"HumanEval+ 164 canonical x {copies} per task, {workers} workers:")
    print(f"  evalplus evaluate() cold: {ev_inner:.1f} s (process {ev_wall:.1f} s, incl. its stuck-checker "
          f"thread) base {sum(b for b, _ in ev.values())}/164 plus {sum(p for _, p in ev.values())}/164")
    print(f"  ours cold (whole process): {ours_wall:.1f} s base {sum(b for b, _ in ours.values())}/164 "
          f"plus {sum(p for _, p in ours.values())}/164")
    print(f"  evalplus evaluate() warm: {ev_warm_inner:.1f} s (process {ev_warm_wall:.1f} s)")
    print(f"  ours warm (whole process): {ours_warm:.1f} s (same verdicts as cold: {ours_again == ours})")
    print(f"  cold vs cold: {ev_inner / ours_wall:.2f}x (vs its process {ev_wall / ours_wall:.2f}x); "
          f"warm vs warm: {ev_warm_inner / ours_warm:.2f}x; ours warm vs evalplus cold: {ev_inner / ours_warm:.2f}x")
    print(f"  floor for any cold run (canonical solutions' CPU x {1 + copies} / {workers} workers, no overhead at all): "
          f"{floor:.1f} s = {ev_inner / floor:.2f}x evalplus cold at best; ours cold is {ours_wall / floor:.2f}x the floor")
    print(f"  plus one sandboxed interpreter per sample ({1000 * start_s:.1f} ms each): "
          f"{process_floor:.1f} s = {ev_inner / process_floor:.2f}x evalplus "
          f"cold at best")
    print(f"  verdicts that differ: {differ or 'none'}"
          + (" (evalplus 0.3.1 fails the HumanEval/32 canonical: PR #201)" if differ == ["HumanEval/32"] else ""))


def plain_sequential(program: Program, workdir: Path) -> bool:
    """Compile and run without sandbox or caches beyond the language's own, one after another."""
    program.write_files(workdir)
    env = {**os.environ}
    for step in (program.compile, program.run):
        if step is None:
            continue
        env.update(step.env)
        proc = subprocess.run(step.argv, cwd=workdir, env=env, input="token\n", capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            return False
    return True


def bench_humanevalpack(data: Path, workers: int, baseline_n: int) -> None:
    print(f"HumanEvalPack canonical solutions, {workers} workers (ours) vs plain sequential compile-and-run:")
    total_ours = 0.0
    for lang in LANGUAGES.values():
        rows = read_records(data / "humanevalpack" / f"{lang.dataset}.jsonl")
        problems = {r["task_id"]: r for r in rows}
        samples = [{"task_id": t, "completion": p["canonical_solution"]} for t, p in problems.items()]
        start = time.monotonic()
        results, env = evaluate_humanevalpack(problems, samples, language=lang.name, workers=workers, progress=False)
        ours = time.monotonic() - start
        total_ours += ours
        passed = sum(r["passed"] for r in results)
        for r in results:
            if not r["passed"]:
                print(f"    not passed: {r['task_id']} {r['status']}: {r['detail'][:200]!r}")
        subset = rows[:: max(1, len(rows) // baseline_n)][:baseline_n]
        sub_problems = {r["task_id"]: r for r in subset}
        start = time.monotonic()
        evaluate_humanevalpack(sub_problems, [{"task_id": t, "completion": p["canonical_solution"]}
                                              for t, p in sub_problems.items()],
                               language=lang.name, workers=workers, progress=False)
        ours_sub = (time.monotonic() - start) / len(subset)
        start = time.monotonic()
        base_ok = 0
        with tempfile.TemporaryDirectory() as d:
            for i, r in enumerate(subset):
                work = Path(d) / str(i)
                work.mkdir()
                base_ok += plain_sequential(lang.build(r, r["canonical_solution"]), work)
        base = (time.monotonic() - start) / len(subset)
        print(f"  {lang.name:6s} ours all {ours / len(rows):.3f} s/problem ({passed}/{len(rows)} pass"
              f"{', ' + str(env) if env else ''}) | same {len(subset)} problems: ours {ours_sub:.3f}, plain "
              f"sequential {base:.3f} s/problem ({base_ok}/{len(subset)} pass) | {base / ours_sub:.1f}x")
    print(f"  all six languages x 164, ours: {total_ours:.1f} s (target < 180 s on 2 cores)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--baseline-problems", type=int, default=40)
    p.add_argument("--only", choices=["humanevalplus", "humanevalpack"])
    p.add_argument("--copies", type=int, default=1, help="HumanEval+ samples per task (pass@k-style runs)")
    args = p.parse_args()
    data = Path(args.data)
    if not data.exists():
        raise SystemExit(f"{data} not found: pass --data with the public evaluation files")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    if args.only in (None, "humanevalplus"):
        bench_humanevalplus(data, args.workers, args.copies)
    if args.only in (None, "humanevalpack"):
        bench_humanevalpack(data, args.workers, args.baseline_problems)


if __name__ == "__main__":
    main()
