"""Generation engines: batched HF transformers (the reference) and vLLM (optional, GPU), one per process per phase.

An engine turns rendered prompt texts into completions, one per text, each with its own seed: sampling draws
from a generator seeded by that seed alone (HF: `SeededSampler`, one uniform per sequence per step; vLLM: the
request's own `seed`), so a sample does not depend on which other prompts share its batch. Stop sequences end a
sequence early and are cut from the text; `<|im_end|>` and `<|endoftext|>` (and the tokenizer's eos) stop it
on both paths. eval/sharded.py owns which (task, sample) pairs a process generates; this module only generates.

Lifecycle: `open_engine` loads the model once; callers reuse the engine for every chunk of a phase and `close()`
it before training. vLLM always runs in a child process (eval/vllm_worker.py): it is never started inside a
process that holds a DeepSpeed engine, and closing it returns all its GPU memory (the child exits).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    StoppingCriteria,
    StoppingCriteriaList,
)

log = logging.getLogger(__name__)
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class Sampling:
    """How each sequence is decoded: greedy when temperature <= 0."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


class Engine(Protocol):
    tokenizer: Any

    def generate(self, texts: list[str], seeds: list[int], sampling: Sampling) -> list[str]: ...

    def close(self) -> None: ...


def truncate_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """Text before the earliest stop sequence (the stop itself removed)."""
    cuts = [text.find(s) for s in (stop or ()) if s and s in text]
    return text[: min(cuts)] if cuts else text


class StopOnSequences(StoppingCriteria):
    """Per-sequence: done once the generated text (only that, never the prompt) contains a stop sequence."""

    def __init__(self, tokenizer, stop: Sequence[str], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, [s for s in stop if s], prompt_len
        # every token decodes to at least one byte, so the last len(stop)+1 tokens hold any new match
        self.window = max(len(s) for s in self.stop) + 1

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_len:]
        tails = self.tokenizer.batch_decode(generated[:, -self.window:], skip_special_tokens=True)
        done = [any(s in t for s in self.stop) for t in tails]
        # a bool tensor is what transformers calls a BoolTensor (isinstance agrees); torch types it as Tensor
        return cast(torch.BoolTensor, torch.tensor(done, dtype=torch.bool, device=input_ids.device))


class SeededSampler(LogitsProcessor):
    """Temperature + top-p sampling where row i draws from its own generator (seed i): batch-independent.

    Returns scores that are -inf except at the drawn token, so `generate(do_sample=False)` takes it. One float64
    uniform per row per step picks the token by inverse CDF over the (top-p filtered) probabilities.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.double() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            ordered, order = probs.sort(dim=-1, descending=True, stable=True)
            before = ordered.cumsum(dim=-1) - ordered  # mass of the more likely tokens
            ordered = ordered.masked_fill(before >= self.top_p, 0.0)  # keeps at least the most likely one
            probs = torch.zeros_like(probs).scatter_(-1, order, ordered)
        cdf = probs.cumsum(dim=-1)
        u = torch.stack([1.0 - torch.rand((), generator=g, dtype=torch.float64) for g in self.generators])  # (0, 1]
        target = (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1)
        choice = torch.searchsorted(cdf, target).clamp_(max=cdf.shape[1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return cast(torch.FloatTensor, out.scatter_(1, choice, 0.0))


def render_prompts(tokenizer, prompts: Sequence[str], chat: bool, system_prompt: str | None) -> list[str]:
    if not chat:
        return list(prompts)
    rendered = []
    for p in prompts:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
        messages.append({"role": "user", "content": p})
        rendered.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return rendered


def stop_token_ids(tokenizer) -> list[int]:
    """eos plus the ids of <|im_end|> and <|endoftext|>: a base export whose eos is one must stop at the other."""
    ids = {tokenizer.eos_token_id}
    for special in STOP_TOKENS:
        tid = tokenizer.convert_tokens_to_ids(special)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


def default_device() -> torch.device:
    """This process's GPU (LOCAL_RANK under a launcher) or the CPU."""
    import os

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


class HFEngine:
    """transformers generate with left padding; the reference every other path must match greedily."""

    def __init__(self, model: PreTrainedModel, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @torch.no_grad()
    def generate(self, texts: list[str], seeds: list[int], sampling: Sampling) -> list[str]:
        tok, model = self.tokenizer, cast(Any, self.model)  # torch's Module.__getattr__ hides generate from mypy
        side = tok.padding_side
        tok.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
        try:
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        finally:
            tok.padding_side = side
        enc = {k: v.to(model.device) for k, v in enc.items()}
        prompt_len = enc["input_ids"].shape[1]
        criteria = StoppingCriteriaList([StopOnSequences(tok, sampling.stop, prompt_len)]) if sampling.stop else None
        processors = None if sampling.greedy else LogitsProcessorList([SeededSampler(seeds, sampling.temperature,
                                                                                     sampling.top_p)])
        # A fresh config: the model's own generation_config (repetition penalty, top_k ...) must not leak in.
        config = GenerationConfig(max_new_tokens=sampling.max_new_tokens, do_sample=False, num_beams=1,
                                  pad_token_id=tok.pad_token_id, eos_token_id=stop_token_ids(tok))
        was_training = model.training
        model.eval()
        try:
            out = model.generate(**enc, generation_config=config, stopping_criteria=criteria,
                                 logits_processor=processors)
        finally:
            model.train(was_training)
        decoded = tok.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        return [truncate_at_stop(t, sampling.stop) for t in decoded]

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]


def vllm_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


def is_engine(obj: Any) -> bool:
    from eval.vllm_worker import VLLMEngine

    return isinstance(obj, HFEngine | VLLMEngine)


def open_engine(model: str | PreTrainedModel, tokenizer=None, *, backend: str = "auto",
                tensor_parallel_size: int = 1) -> Engine:
    """An engine for a path/hub name or a loaded model. backend: auto (vLLM for a path when installed with a
    GPU, else HF), hf or vllm (an error when it cannot run)."""
    if backend not in ("auto", "hf", "vllm"):
        raise ValueError(f"generation backend must be auto, hf or vllm, got {backend!r}")
    from shared.config import ModelConfig
    from shared.modeling import load_model, load_tokenizer

    if isinstance(model, str):
        tokenizer = tokenizer or load_tokenizer(ModelConfig(name_or_path=model))
        if backend == "vllm" or (backend == "auto" and vllm_available()):
            if not vllm_available():
                raise RuntimeError("generation backend vllm needs vllm installed and a CUDA GPU")
            from eval.vllm_worker import VLLMEngine

            return VLLMEngine(model, tokenizer, tensor_parallel_size=tensor_parallel_size)
        device = default_device()
        loaded = load_model(ModelConfig(name_or_path=model), tokenizer, device=device)
        # PreTrainedModel.to is decorated with functools.wraps(Module.to), which hides the bound self from mypy
        return HFEngine(loaded.to(device), tokenizer)  # type: ignore[arg-type]
    if tokenizer is None:
        raise ValueError("open_engine: pass the tokenizer along with a loaded model")
    if backend == "vllm":
        raise ValueError("the vllm backend loads a model from a path; got a loaded model")
    return HFEngine(model, tokenizer)
