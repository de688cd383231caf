"""`just gpu-check`: the GPU path checked and measured in one run, for the first machine with CUDA (one H100:
under 8 minutes). On a machine without CUDA it says so and exits 0.

One table (also written as JSON, --out), one row per step; each step is also a pytest marked `gpu`
(tests/bench/test_gpu_check.py) that skips without CUDA:

  flash_vs_sdpa_packed  flash_attention_2 (varlen, packed rows) vs our sdpa_packed, bf16: loss and gradients, each
                        compared with an fp32 reference; passes when flash's error is within 2x sdpa_packed's
                        (both are bf16 computations of the same thing; neither may be worse than bf16 noise)
  bf16_accumulation     DeepSpeed (ZeRO-2, bf16, fp32 accumulation): 8x1 accumulated gradient == the exact sum of
                        the 8 micro-batch bf16 gradients (<= 1e-6), and 8x1 vs 1x8 (bf16 compute noise)
  vllm_greedy           vLLM greedy == HF greedy on a tiny export (eval.vllm_check.greedy_agreement: HF engine,
                        then vLLM in a child process of its own); skipped without vLLM
  train_1.5b_seq8192    tokens/s/GPU and MFU of a Qwen2-1.5B-shaped random model, ZeRO-2, activation
                        checkpointing, flash-attn when installed, packed rows of 8192 (code pretraining shape)
  train_1.5b_seq1024    the same at 1024 (math SFT shape)
  liger_flce            Liger's fused linear cross-entropy vs logits + cross-entropy at 8192 x 151,936 (peak
                        memory and time side by side); skipped without liger-kernel
  vllm_throughput       vLLM samples/s for RFT sampling (64 prompts x 8 samples x 256 tokens, temperature 1)
                        on a 0.5B-shaped random model; skipped without vLLM

The vLLM steps run in a child process each (vLLM takes most of the GPU memory and must not share a process with
a DeepSpeed engine). The steps themselves are in bench/gpu_steps.py.

    python -m bench.gpu_check [--out runs/gpu_check.json] [--only NAME ...] [--steps 6]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from bench.gpu_steps import (
    Row,
    check_bf16_accumulation,
    check_flash_vs_sdpa_packed,
    check_liger_flce,
    check_train_1024,
    check_train_8192,
    check_vllm_greedy,
    check_vllm_throughput,
)

log = logging.getLogger("gpu_check")


CHECKS: dict[str, Callable] = {
    "flash_vs_sdpa_packed": check_flash_vs_sdpa_packed,
    "bf16_accumulation": check_bf16_accumulation,
    "train_1.5b_seq8192": check_train_8192,
    "train_1.5b_seq1024": check_train_1024,
    "liger_flce": check_liger_flce,
    "vllm_greedy": check_vllm_greedy,
    "vllm_throughput": check_vllm_throughput,
}
# vLLM takes most of the GPU's memory for itself and must never share a process with a DeepSpeed engine: these
# steps run in a child process of their own.
OWN_PROCESS = {"vllm_greedy", "vllm_throughput"}


def run_check(name: str, args) -> Row:
    if name in OWN_PROCESS and not args.in_child:
        return run_in_child(name, args)
    t0 = time.perf_counter()
    try:
        row = CHECKS[name](args)
    except Exception as e:  # one failing step must not hide the others' numbers
        traceback.print_exc()
        row = Row(name, "FAIL", f"{type(e).__name__}: {e}")
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    row.seconds = time.perf_counter() - t0
    return row


def run_in_child(name: str, args) -> Row:
    out = Path(args.workdir) / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.gpu_check", "--only", name, "--in-child", "--out", str(out),
           "--workdir", args.workdir, "--steps", str(args.steps)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    if not out.exists():
        return Row(name, "FAIL", f"its process exited with {proc.returncode} and wrote no result",
                   seconds=time.perf_counter() - t0)
    return Row(**json.loads(out.read_text())["rows"][0])


def print_table(rows: list[Row]) -> None:
    width = max(len(r.name) for r in rows)
    print(f"\n{'check':<{width}}  status   seconds  result")
    for r in rows:
        print(f"{r.name:<{width}}  {r.status:<7}  {r.seconds:7.1f}  {r.summary}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/gpu_check.json")
    p.add_argument("--only", nargs="*", choices=sorted(CHECKS), default=None)
    p.add_argument("--steps", type=int, default=6, help="optimizer steps per throughput run (2 are warm-up)")
    p.add_argument("--workdir", default="runs/gpu_check")
    p.add_argument("--in-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not torch.cuda.is_available():
        print("gpu-check needs CUDA: no GPU is visible here, so nothing was checked or measured.")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    names = args.only or list(CHECKS)
    rows = []
    for i, name in enumerate(names):
        log.info("[%d/%d] %s", i + 1, len(names), name)
        rows.append(run_check(name, args))
        log.info("%s: %s (%.1f s)", name, rows[-1].status, rows[-1].seconds)
    print_table(rows)
    report = {"gpu": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "torch": torch.__version__, "rows": [asdict(r) for r in rows]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=float))
    print(f"written {args.out}")
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
