"""vLLM in a child process: one engine per phase, reused for every chunk, gone (GPU memory returned) on close.

Why a child: the parent may hold (or later build) a DeepSpeed engine and a torch.distributed group; vLLM sets up
its own distributed state and CUDA memory pool. The child sees only this rank's GPU(s) (CUDA_VISIBLE_DEVICES)
and none of the launcher's RANK/WORLD_SIZE/MASTER_* variables, so each data-parallel rank runs an independent
engine. Prompts go in as token ids (tokenised once, as the HF path does, without added special tokens); each
request has n=1 and its own seed, so a sample does not depend on its batch. Written against vLLM's documented
API (`LLM`, `SamplingParams(seed=, stop=, stop_token_ids=)`, `LLM.generate` with a list of params).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from dataclasses import asdict
from typing import Any

from eval.generate import Sampling, stop_token_ids, truncate_at_stop

log = logging.getLogger(__name__)
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR",
                 "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT")


def visible_gpus(tensor_parallel_size: int) -> str:
    """This rank's GPUs: LOCAL_RANK .. LOCAL_RANK + tp - 1 (ranks sharing a node take disjoint ones)."""
    first = int(os.environ.get("LOCAL_RANK", "0")) * tensor_parallel_size
    return ",".join(str(first + i) for i in range(tensor_parallel_size))


def _serve(conn, model: str, tensor_parallel_size: int, stop_ids: list[int]) -> None:  # pragma: no cover - GPU
    from vllm import LLM, SamplingParams

    from shared.qwen_v1 import resolve_checkpoint

    # a Qwen v1 checkpoint: its converted Qwen2 copy (vLLM then runs the native architecture)
    llm = LLM(model=resolve_checkpoint(model), tensor_parallel_size=tensor_parallel_size, seed=0)
    conn.send(("ready", None))
    while True:
        message, payload = conn.recv()
        if message == "close":
            break
        ids, seeds, sampling = payload["ids"], payload["seeds"], Sampling(**payload["sampling"])
        params = [SamplingParams(n=1, temperature=max(sampling.temperature, 0.0),
                                 top_p=1.0 if sampling.greedy else sampling.top_p,
                                 max_tokens=sampling.max_new_tokens, stop=list(sampling.stop) or None,
                                 stop_token_ids=stop_ids, seed=None if sampling.greedy else seed)
                  for seed in seeds]
        outputs = llm.generate([{"prompt_token_ids": p} for p in ids], params, use_tqdm=False)
        conn.send(("ok", [o.outputs[0].text for o in outputs]))
    conn.close()


class VLLMEngine:  # pragma: no cover - needs vLLM and a GPU (tests/eval/test_vllm_gpu.py)
    def __init__(self, model: str, tokenizer, *, tensor_parallel_size: int = 1):
        self.tokenizer = tokenizer
        ctx = mp.get_context("spawn")  # never fork a process that holds CUDA or a process group
        self.conn, child = ctx.Pipe()
        saved = {k: os.environ.pop(k) for k in LAUNCHER_VARS if k in os.environ}
        cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpus(tensor_parallel_size)
        try:  # the spawned child copies this environment at start
            self.process = ctx.Process(target=_serve, args=(child, model, tensor_parallel_size,
                                                            stop_token_ids(tokenizer)), daemon=True)
            self.process.start()
        finally:
            os.environ.update(saved)
            if cuda is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES")
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = cuda
        child.close()
        self._expect("ready")
        log.info("vLLM engine for %s up (pid %d, tensor parallel %d)", model, self.process.pid, tensor_parallel_size)

    def _expect(self, what: str) -> Any:
        try:
            message, payload = self.conn.recv()
        except EOFError as e:
            raise RuntimeError(f"the vLLM worker (pid {self.process.pid}) died; see its log above") from e
        if message != what:
            raise RuntimeError(f"vLLM worker said {message!r}, expected {what!r}")
        return payload

    def generate(self, texts: list[str], seeds: list[int], sampling: Sampling) -> list[str]:
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        self.conn.send(("generate", {"ids": ids, "seeds": seeds, "sampling": asdict(sampling)}))
        return [truncate_at_stop(t, sampling.stop) for t in self._expect("ok")]

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(("close", None))
            self.process.join(timeout=120)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
