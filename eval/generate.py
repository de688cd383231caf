"""Generate completions for a list of prompts: batched HF transformers (left padding), vLLM when installed.

Shared by eval.code and eval.math. Greedy or sampled (n per prompt, temperature, top-p), stop sequences
end a sequence early (a stopping criterion) and are cut from the text, chat=True renders each prompt as a
ChatML user turn with the tokenizer's chat template. vLLM is used only when it is installed, a GPU is
there and the model is given by name or path; it is never required.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from typing import Any, TypeGuard, cast

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, StoppingCriteria, StoppingCriteriaList

log = logging.getLogger(__name__)


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


def render_prompts(tokenizer, prompts: Sequence[str], chat: bool, system_prompt: str | None) -> list[str]:
    if not chat:
        return list(prompts)
    rendered = []
    for p in prompts:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
        messages.append({"role": "user", "content": p})
        rendered.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return rendered


def _load(model: str | PreTrainedModel, tokenizer) -> tuple[PreTrainedModel, Any]:
    from shared.config import ModelConfig
    from shared.modeling import load_model, load_tokenizer

    if isinstance(model, str):
        cfg = ModelConfig(name_or_path=model)
        tokenizer = tokenizer or load_tokenizer(cfg)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # PreTrainedModel.to is decorated with functools.wraps(Module.to), which hides the bound self from mypy
        loaded = load_model(cfg, tokenizer, device=device).to(device)  # type: ignore[arg-type]
    elif tokenizer is None:
        raise ValueError("generate_completions: pass the tokenizer along with a loaded model")
    else:
        loaded = model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return loaded, tokenizer


def _eos_ids(tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    for special in ("<|im_end|>", "<|endoftext|>"):
        tid = tokenizer.convert_tokens_to_ids(special)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


def _use_vllm(model: str | PreTrainedModel) -> TypeGuard[str]:
    return isinstance(model, str) and torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


def generate_completions(model: str | PreTrainedModel, prompts: list[str], *, tokenizer=None, n: int = 1,
                         temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 512,
                         stop: list[str] | None = None, batch_size: int = 8, seed: int = 0, chat: bool = False,
                         system_prompt: str | None = None, progress: bool = True) -> list[list[str]]:
    """n completions for each prompt (outer list follows `prompts`), stop sequences cut off."""
    if not prompts:
        return []
    if _use_vllm(model):
        return _generate_vllm(model, prompts, n=n, temperature=temperature, top_p=top_p,
                              max_new_tokens=max_new_tokens, stop=stop, seed=seed, chat=chat,
                              system_prompt=system_prompt)
    model, tokenizer = _load(model, tokenizer)
    texts = render_prompts(tokenizer, prompts, chat, system_prompt)
    greedy = temperature <= 0
    copies = 1 if greedy else n  # greedy samples are identical: decode once, repeat
    jobs = [(i, text) for i, text in enumerate(texts) for _ in range(copies)]
    outputs: list[list[str]] = [[] for _ in prompts]
    model.eval()
    bar = tqdm(total=len(jobs), desc="generating", unit="seq", disable=not progress)
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start:start + batch_size]
        decoded = _generate_batch(model, tokenizer, [t for _, t in batch], greedy=greedy,
                                  temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                  stop=stop, seed=seed + start)
        for (i, _), text in zip(batch, decoded, strict=True):
            outputs[i].append(truncate_at_stop(text, stop))
        bar.update(len(batch))
    bar.close()
    return [o * n if greedy else o for o in outputs]


@torch.no_grad()
def _generate_batch(model, tokenizer, texts: list[str], *, greedy: bool, temperature: float, top_p: float,
                    max_new_tokens: int, stop: list[str] | None, seed: int) -> list[str]:
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow every prompt directly
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    enc = {k: v.to(model.device) for k, v in enc.items()}
    prompt_len = enc["input_ids"].shape[1]
    criteria = StoppingCriteriaList([StopOnSequences(tokenizer, stop, prompt_len)]) if stop else None
    torch.manual_seed(seed)
    sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": 0}
    out = model.generate(**enc, do_sample=not greedy, max_new_tokens=max_new_tokens, stopping_criteria=criteria,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=_eos_ids(tokenizer), **sampling)
    return tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)


def _generate_vllm(model: str, prompts: list[str], *, n: int, temperature: float, top_p: float,
                   max_new_tokens: int, stop: list[str] | None, seed: int, chat: bool,
                   system_prompt: str | None) -> list[list[str]]:  # pragma: no cover - needs a GPU and vLLM
    from vllm import LLM, SamplingParams

    from shared.qwen_v1 import resolve_checkpoint

    llm = LLM(model=resolve_checkpoint(model), seed=seed)  # a Qwen v1 checkpoint: its converted Qwen2 copy
    texts = render_prompts(llm.get_tokenizer(), prompts, chat, system_prompt)
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                            stop=stop or None, seed=seed)
    log.info("generating with vLLM: %d prompts x %d", len(prompts), n)
    return [[truncate_at_stop(o.text, stop) for o in r.outputs] for r in llm.generate(texts, params)]
