"""GPU checks of the generation engines, for `just gpu-check` and the `gpu` tests: vLLM greedy == HF greedy on
the same export, and sampling throughput of an engine (RFT's k samples per prompt).
"""

from __future__ import annotations

import time
from typing import Any

from eval.generate import Sampling, open_engine


def greedy_agreement(model_path: str, prompts: list[str], max_new_tokens: int = 32,
                     tensor_parallel_size: int = 1) -> dict[str, Any]:
    """Greedy completions of HF (the reference) and vLLM on the same prompts; `match` when all are equal."""
    sampling = Sampling(max_new_tokens=max_new_tokens)
    outputs, seconds = {}, {}
    for backend in ("hf", "vllm"):  # one engine at a time: the HF copy is gone before vLLM starts
        start = time.monotonic()
        engine = open_engine(model_path, backend=backend, tensor_parallel_size=tensor_parallel_size)
        try:
            outputs[backend] = engine.generate(prompts, [0] * len(prompts), sampling)
        finally:
            engine.close()
        seconds[backend] = round(time.monotonic() - start, 2)
    mismatches = [i for i, (a, b) in enumerate(zip(outputs["hf"], outputs["vllm"], strict=True)) if a != b]
    return {"match": not mismatches, "n_prompts": len(prompts), "mismatches": mismatches[:10],
            "first_mismatch": None if not mismatches else {k: v[mismatches[0]] for k, v in outputs.items()},
            "seconds": seconds}


def sampling_throughput(model_path: str, prompts: list[str], k: int, max_new_tokens: int = 256,
                        backend: str = "auto", temperature: float = 0.7) -> dict[str, Any]:
    """Samples per second drawing k samples per prompt (each with its own seed), engine start excluded."""
    engine = open_engine(model_path, backend=backend)
    try:
        texts = [p for p in prompts for _ in range(k)]
        seeds = list(range(len(texts)))
        start = time.monotonic()
        out = engine.generate(texts, seeds, Sampling(temperature=temperature, max_new_tokens=max_new_tokens))
        seconds = time.monotonic() - start
    finally:
        engine.close()
    return {"backend": type(engine).__name__, "samples": len(out), "seconds": round(seconds, 2),
            "samples_per_s": round(len(out) / seconds, 2)}
