"""Load any Hugging Face causal LM (hub name or local path) or build the tiny Qwen2 preset; load its tokenizer.

A Qwen (v1) checkpoint (model_type "qwen", e.g. Qwen/Qwen-7B) is converted once into the native Qwen2 format
(shared/qwen_v1.py) and loaded from there, model and tokenizer alike: no remote code.
"""

from __future__ import annotations

import importlib.util
import logging

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
)

from shared.config import ModelConfig
from shared.qwen_v1 import resolve_checkpoint
from shared.tokenizer import ensure_chat_template, load_tiny_tokenizer

log = logging.getLogger(__name__)


def pick_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """auto: bf16 on a GPU that supports it, fp32 on CPU (CPU bf16 is slow and imprecise here)."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def pick_attn_implementation(requested: str, device: torch.device | str, dtype: torch.dtype) -> str:
    if requested != "auto":
        return requested
    on_gpu = torch.device(device).type == "cuda"
    if on_gpu and dtype in (torch.bfloat16, torch.float16) and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return "sdpa"


def load_tokenizer(cfg: ModelConfig):
    name = cfg.tokenizer or cfg.name_or_path
    tok: PreTrainedTokenizerBase
    if name in ("tiny", "tiny-bpe"):
        tok = load_tiny_tokenizer(cfg.tiny_vocab_size)
    else:
        tok = AutoTokenizer.from_pretrained(resolve_checkpoint(name), trust_remote_code=cfg.trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = "<|endoftext|>" if "<|endoftext|>" in tok.get_vocab() else tok.eos_token
    ensure_chat_template(tok)
    return tok


def tiny_qwen2_config(cfg: ModelConfig, tokenizer) -> Qwen2Config:
    t = cfg.tiny
    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=t.hidden_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads,
        num_key_value_heads=t.num_key_value_heads,
        intermediate_size=t.intermediate_size,
        max_position_embeddings=t.max_position_embeddings,
        # transformers 5 folds this legacy keyword into rope_parameters but leaves it out of the signature
        rope_theta=t.rope_theta,  # type: ignore[call-arg]
        tie_word_embeddings=t.tie_word_embeddings,
        attention_dropout=t.attention_dropout,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def load_model(
    cfg: ModelConfig,
    tokenizer,
    precision: str = "auto",
    device: torch.device | str = "cpu",
    seed: int | None = None,
) -> PreTrainedModel:
    """The model in training dtype with the attention implementation that suits the device."""
    dtype = pick_dtype(precision, device)
    attn = pick_attn_implementation(cfg.attn_implementation, device, dtype)
    if cfg.name_or_path == "tiny":
        if seed is not None:
            torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(
            tiny_qwen2_config(cfg, tokenizer), attn_implementation=attn, dtype=dtype
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(
            resolve_checkpoint(cfg.name_or_path), dtype=dtype, attn_implementation=attn, trust_remote_code=cfg.trust_remote_code
        )
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    log.info("model %s: %.1fM parameters, %s, attn=%s", cfg.name_or_path, count_parameters(model) / 1e6, dtype, attn)
    return model


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
