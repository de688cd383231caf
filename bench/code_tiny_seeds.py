"""The tiny code runs for several seeds: held-out pass@1 after pretraining, after SFT stage 1 (the baseline) and after
stage 2 on the execution-feedback data, with the paired gain (eval/stats.py) stage 2 - stage 1, per seed.

    .venv/bin/python bench/code_tiny_seeds.py [--seeds 0 1 2] [--runs-dir runs/seeds] [--sft-only]

Each seed s runs `just code-pretrain train.seed=s` and `just code-sft train.seed=s problem_data.seed=s` (the data
seed draws other training problems and feedback pool; the held-out problems are the same for every seed) in
their own run folders, timing each job's CPU seconds (user + sys of the child) beside its wall time and the load
average. Finished runs are resumed (a no-op), so the table can be re-printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_job(module: str, args: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": round(time.monotonic() - started, 1),
            "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1),
            "load1": round(os.getloadavg()[0], 1)}


def last_pass_at_1(run_dir: Path) -> tuple[int, float] | None:
    steps = sorted((int(p.parent.name.split("-")[1]), json.loads(p.read_text())["pass@1"])
                   for p in (run_dir / "eval" / "local").glob("step-*/summary.json"))
    return steps[-1] if steps else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs-dir", default="runs/seeds")
    parser.add_argument("--sft-only", action="store_true", help="reuse --init (a pretraining export) for all seeds")
    parser.add_argument("--init", default="runs/code-pretrain/tiny/export")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        name = f"seed{seed}"
        row: dict = {"seed": seed}
        init = args.init
        if not args.sft_only:
            row["pretrain_job"] = run_job("code_qwen.pretrain", [f"run_name={name}", f"runs_dir={args.runs_dir}",
                                                                 f"train.seed={seed}"])
            row["pretrain"] = last_pass_at_1(ROOT / args.runs_dir / "code-pretrain" / name)
            init = f"{args.runs_dir}/code-pretrain/{name}/export"
        data = f"{args.runs_dir}/data-{name}"
        row["sft_job"] = run_job("code_qwen.sft", [
            f"run_name={name}", f"runs_dir={args.runs_dir}", f"train.seed={seed}", f"init_from={init}",
            f"problem_data.seed={seed}", f"problem_data.out_dir={data}/problems",
            f"stages.stage1.train_files=[{data}/problems/sft.jsonl]",
            f"stages.stage2.train_files=[{data}/feedback/sft.jsonl]",
            f"feedback.overrides=[out_dir={data}/feedback, 'sources=[{{kind: humaneval, name: generated, "
            f"path: {data}/problems/train.jsonl}}]']"])
        gain = json.loads((ROOT / args.runs_dir / "code-sft" / name / "feedback_gain.json").read_text())
        report = json.loads((ROOT / data / "feedback" / "report.json").read_text())
        row.update(stage1=gain["before"], stage2=gain["after"], gain=gain["gain"], feedback=report["total"])
        rows.append(row)
        print(json.dumps(row))
    print("\n| seed | pretrain pass@1 | stage 1 pass@1 [95% CI] | stage 2 pass@1 [95% CI] | gain [paired 95% CI] | "
          "feedback kept / samples | CPU s (pretrain, sft) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ci = lambda d: f"{d['accuracy']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}]"  # noqa: E731
        g = r["gain"]
        pre = f"{r['pretrain'][1]:.3f} (step {r['pretrain'][0]})" if r.get("pretrain") else "-"
        cpu = f"{r.get('pretrain_job', {}).get('cpu_s', '-')}, {r['sft_job']['cpu_s']}"
        print(f"| {r['seed']} | {pre} | {ci(r['stage1'])} | {ci(r['stage2'])} | {g['difference']:+.3f} "
              f"[{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}] | {r['feedback']['kept']} / {r['feedback']['samples']} | "
              f"{cpu} |")


if __name__ == "__main__":
    main()
