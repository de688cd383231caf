"""Qwen (v1) checkpoints (Qwen/Qwen-7B, -14B, ...) converted on load into transformers' native Qwen2 architecture.

Qwen v1 ships its own modelling code (trust_remote_code), which builds its own causal mask and rotary
positions and so cannot keep packed documents apart, nor use flash-attention's varlen path, ZeRO-3's native
hooks or vLLM's Qwen2 kernels. Its architecture is Qwen2's with other names, so the checkpoint is rewritten:

  Qwen v1 (config.json, model_type "qwen")       Qwen2
  hidden_size, num_hidden_layers, vocab_size      the same
  num_attention_heads                             num_attention_heads = num_key_value_heads (no GQA)
  kv_channels (per-head width)                    head_dim
  intermediate_size (w1 and w2 together)          intermediate_size // 2 (the width of one projection)
  rotary_emb_base, rotary_pct = 1                 rope_parameters {rope_type: default, rope_theta}
  layer_norm_epsilon (RMSNorm)                    rms_norm_eps
  attn_dropout_prob                               attention_dropout
  max_position_embeddings, tie_word_embeddings    the same (v1 unties lm_head)

  transformer.wte                                 model.embed_tokens
  transformer.h.i.ln_1 / ln_2                     model.layers.i.input_layernorm / post_attention_layernorm
  transformer.h.i.attn.c_attn (fused, with bias)  q_proj, k_proj, v_proj: rows [0:P), [P:2P), [2P:3P), P = heads*kv_channels
  transformer.h.i.attn.c_proj (no bias)           self_attn.o_proj
  transformer.h.i.mlp.w2, w1, c_proj              mlp.gate_proj, up_proj, down_proj: v1 computes
                                                  c_proj(w1(x) * silu(w2(x))), Qwen2 down(silu(gate(x)) * up(x))
  transformer.ln_f, lm_head                       model.norm, lm_head

Both rotate the two halves of each head (rotate_half with cos/sin of position * base^(-2i/d)), scale attention
by 1/sqrt(head_dim) and compute RMSNorm in fp32, so logits are equal (tests/shared/test_qwen_v1.py checks this
against a forward written from the v1 description). Refused, because Qwen2 cannot express them: rotary_pct < 1,
no_bias = false, scale_attn_weights = false, emb_dropout_prob > 0.

What does not carry over: use_dynamic_ntk and use_logn_attn. In v1's code both act only at inference
(never in training mode) and only past config.seq_length tokens: NTK-aware rotary base scaling and a log-n
factor on the queries, for length extrapolation. Within seq_length (8192 in Qwen-7B's config.json) v1 and
the converted model compute the same thing. Training at 8192 tokens is therefore unchanged (v1 trains with
plain rotary too); prompts longer than seq_length (none of HumanEval, MBPP, GSM8K or MATH come near 2048
tokens) see plain rotary where v1's inference code would have rescaled it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen2Config

from shared.qwen_v1_tokenizer import VOCAB_FILE, load_v1_tokenizer
from shared.tokenizer import ENDOFTEXT, IM_END, cache_root

log = logging.getLogger(__name__)

V1_MODEL_TYPE = "qwen"
_VERSION = "1"  # bump when the conversion below changes: cached conversions are then redone
_LAYER = re.compile(r"transformer\.h\.(\d+)\.(.+)")
_RENAME = {
    "ln_1.weight": "input_layernorm.weight",
    "ln_2.weight": "post_attention_layernorm.weight",
    "attn.c_proj.weight": "self_attn.o_proj.weight",
    "mlp.w2.weight": "mlp.gate_proj.weight",  # silu is applied to w2's output
    "mlp.w1.weight": "mlp.up_proj.weight",
    "mlp.c_proj.weight": "mlp.down_proj.weight",
}
_TOP = {"transformer.wte.weight": "model.embed_tokens.weight", "transformer.ln_f.weight": "model.norm.weight",
        "lm_head.weight": "lm_head.weight"}


class QwenV1ConversionError(ValueError):
    """A Qwen v1 checkpoint that cannot become a Qwen2 model exactly."""


def read_v1_config(folder: Path) -> dict | None:
    """The config.json of a Qwen v1 checkpoint folder, None for any other folder."""
    path = folder / "config.json"
    if not path.is_file():
        return None
    cfg = json.loads(path.read_text())
    return cfg if cfg.get("model_type") == V1_MODEL_TYPE else None


def qwen2_config(v1: dict) -> Qwen2Config:
    """The Qwen2Config computing what the v1 config describes (see the table above)."""
    def need(key, ok, what):
        if not ok(v1.get(key)):
            raise QwenV1ConversionError(f"Qwen v1 config {key}={v1.get(key)!r}: {what} (Qwen2 cannot express it)")

    need("rotary_pct", lambda v: v in (None, 1, 1.0), "rotary on part of each head")
    need("no_bias", lambda v: v in (None, True), "biases on c_proj and the MLP")
    need("scale_attn_weights", lambda v: v in (None, True), "attention without 1/sqrt(d) scaling")
    need("emb_dropout_prob", lambda v: not v, "dropout on the embeddings")
    heads, head_dim, hidden = v1["num_attention_heads"], v1["kv_channels"], v1["hidden_size"]
    eod = 151643  # <|endoftext|> of the released vocabulary (convert_checkpoint sets the tokenizer's own)
    extra = {"head_dim": head_dim} if heads * head_dim != hidden else {}
    return Qwen2Config(
        vocab_size=v1["vocab_size"],
        hidden_size=hidden,
        intermediate_size=v1["intermediate_size"] // 2,
        num_hidden_layers=v1["num_hidden_layers"],
        num_attention_heads=heads,
        num_key_value_heads=heads,
        hidden_act="silu",
        max_position_embeddings=v1["max_position_embeddings"],
        initializer_range=v1.get("initializer_range", 0.02),
        rms_norm_eps=v1["layer_norm_epsilon"],
        tie_word_embeddings=v1.get("tie_word_embeddings", False),
        rope_parameters={"rope_type": "default", "rope_theta": float(v1["rotary_emb_base"])},
        attention_dropout=v1.get("attn_dropout_prob", 0.0),
        use_sliding_window=False,
        bos_token_id=eod,
        eos_token_id=eod,
        pad_token_id=eod,
        architectures=["Qwen2ForCausalLM"],
        **extra,
    )


def convert_tensor(name: str, t: torch.Tensor, v1: dict) -> list[tuple[str, torch.Tensor]]:
    """One v1 tensor as the Qwen2 tensor(s) it becomes."""
    if name in _TOP:
        return [(_TOP[name], t)]
    m = _LAYER.fullmatch(name)
    if m is None:
        raise QwenV1ConversionError(f"unexpected tensor {name!r} in a Qwen v1 checkpoint")
    i, rest = m.groups()
    prefix = f"model.layers.{i}."
    if rest in ("attn.c_attn.weight", "attn.c_attn.bias"):
        p = v1["num_attention_heads"] * v1["kv_channels"]
        if t.shape[0] != 3 * p:
            raise QwenV1ConversionError(f"{name} has {t.shape[0]} rows, expected 3 x {p}")
        kind = rest.rsplit(".", 1)[1]
        return [(f"{prefix}self_attn.{proj}.{kind}", part.contiguous())
                for proj, part in zip(("q_proj", "k_proj", "v_proj"), t.split(p, dim=0), strict=True)]
    if rest not in _RENAME:
        raise QwenV1ConversionError(f"unexpected tensor {name!r} in a Qwen v1 checkpoint")
    return [(prefix + _RENAME[rest], t)]


def _v1_shards(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / n for n in names]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    raise QwenV1ConversionError(f"{folder}: no model.safetensors or model.safetensors.index.json")


def _converted_shards(folder: Path, v1: dict) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """Shard by shard (memory: one shard), keeping the shard layout and dtype."""
    from safetensors import safe_open

    for shard in _v1_shards(folder):
        out: dict[str, torch.Tensor] = {}
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                out.update(convert_tensor(name, f.get_tensor(name), v1))
        yield shard.name, out


def convert_checkpoint(src: Path, dst: Path) -> Path:
    """Write the Qwen2-format checkpoint of the v1 checkpoint `src` into `dst` (weights, config, tokenizer)."""
    from safetensors.torch import save_file

    v1 = read_v1_config(src)
    if v1 is None:
        raise QwenV1ConversionError(f"{src} is not a Qwen v1 checkpoint (config.json model_type != 'qwen')")
    config = qwen2_config(v1)  # refuses what Qwen2 cannot express before any work
    if v1.get("use_dynamic_ntk") or v1.get("use_logn_attn"):
        log.warning("%s: dynamic NTK / log-n attention scaling are not carried over (inference-time length "
                    "extrapolation past seq_length=%s tokens); the Qwen2 model uses plain rotary at every length",
                    src, v1.get("seq_length"))
    vocab = src / VOCAB_FILE
    if not vocab.is_file():
        raise QwenV1ConversionError(f"{src}: no {VOCAB_FILE} (the Qwen v1 vocabulary)")
    tokenizer = load_v1_tokenizer(vocab)
    eod = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    if not isinstance(eod, int):
        raise QwenV1ConversionError(f"{vocab}: no {ENDOFTEXT} token")
    config.bos_token_id = config.eos_token_id = config.pad_token_id = eod
    dst.mkdir(parents=True)
    weight_map, total, dtype = {}, 0, torch.float32
    for shard_name, tensors in _converted_shards(src, v1):
        save_file(tensors, str(dst / shard_name), metadata={"format": "pt"})
        for name, t in tensors.items():
            weight_map[name], dtype = shard_name, t.dtype
            total += t.numel() * t.element_size()
    expected = {n for i in range(config.num_hidden_layers) for n in _layer_names(i)} | set(_TOP.values())
    if config.tie_word_embeddings:
        expected.discard("lm_head.weight")
    if set(weight_map) != expected:
        missing, unexpected = sorted(expected - set(weight_map)), sorted(set(weight_map) - expected)
        raise QwenV1ConversionError(f"{src}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    if len({*weight_map.values()}) > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    elif next(iter(weight_map.values())) != "model.safetensors":
        (dst / next(iter(weight_map.values()))).rename(dst / "model.safetensors")
    config.dtype = str(dtype).removeprefix("torch.")  # as stored (the released checkpoints: bf16)
    config.save_pretrained(str(dst))
    stops = [eod, tokenizer.convert_tokens_to_ids(IM_END)]
    GenerationConfig(bos_token_id=eod, eos_token_id=stops, pad_token_id=eod).save_pretrained(str(dst))
    tokenizer.save_pretrained(str(dst))
    (dst / "converted_from.json").write_text(json.dumps({"source": str(src), "qwen_v1_config": v1}, indent=2))
    return dst


def _layer_names(i: int) -> list[str]:
    p = f"model.layers.{i}."
    qkv = [f"{p}self_attn.{x}_proj.{k}" for x in "qkv" for k in ("weight", "bias")]
    return qkv + [p + v for v in _RENAME.values()]


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha256(f"{_VERSION}:{folder.resolve()}".encode())
    for p in sorted(folder.iterdir()):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _local_folder(name_or_path: str) -> Path | None:
    """A local folder, or the hub snapshot of a Qwen v1 repo (config.json is read first; other repos are left to
    from_pretrained). None when not a Qwen v1 checkpoint."""
    path = Path(name_or_path)
    if path.is_dir():
        return path if read_v1_config(path) else None
    if path.exists() or name_or_path.count("/") != 1:
        return None
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        config = Path(hf_hub_download(name_or_path, "config.json"))
    except Exception:  # not on the hub or offline: from_pretrained reports it in its own words
        return None
    if read_v1_config(config.parent) is None:
        return None
    return Path(snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", VOCAB_FILE]))


def resolve_checkpoint(name_or_path: str) -> str:
    """What to load for `name_or_path`: the converted Qwen2 checkpoint of a Qwen v1 one (converted once, cached
    under the cache root, shared by concurrent ranks through a file lock), anything else unchanged."""
    src = _local_folder(name_or_path)
    if src is None:
        return name_or_path
    from filelock import FileLock

    slug = re.sub(r"[^\w.-]+", "_", name_or_path.strip("/"))[-60:]
    dst = cache_root() / "converted" / f"{slug}-qwen2-{_fingerprint(src)}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dst) + ".lock"):
        if not (dst / "config.json").is_file():
            log.info("converting Qwen v1 checkpoint %s to Qwen2 format in %s", src, dst)
            tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            convert_checkpoint(src, tmp)
            tmp.rename(dst)
    log.info("Qwen v1 checkpoint %s loads as the native Qwen2 checkpoint %s", name_or_path, dst)
    return str(dst)
