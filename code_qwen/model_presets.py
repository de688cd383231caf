"""Model architectures as numbers (presets, local config.json or a hub config.json) and their parameter counts.

The planner needs only the shapes of a decoder-only Qwen-style transformer (RMSNorm, rotary attention with
optional grouped KV heads, SwiGLU MLP), so no model is ever built to plan for it. The numbers of the shipped
presets live in plan_presets.yaml, each with its source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PRESETS_FILE = Path(__file__).with_name("plan_presets.yaml")


@dataclass(frozen=True)
class ModelArch:
    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int  # width of one MLP projection (gate/up -> intermediate, down -> hidden)
    vocab_size: int
    tie_word_embeddings: bool
    qkv_bias: bool
    published_params: float | None = None
    source: str = ""

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_dim


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gib: float
    peak_bf16_tflops: float
    source: str = ""


@cache
def _presets() -> dict[str, Any]:
    return yaml.safe_load(PRESETS_FILE.read_text())


def preset_names() -> list[str]:
    return sorted(_presets()["models"])


def gpu_names() -> list[str]:
    return sorted(_presets()["gpus"])


def gpu_spec(name: str) -> GpuSpec:
    gpus = _presets()["gpus"]
    if name not in gpus:
        raise ValueError(f"unknown GPU {name!r}; known: {sorted(gpus)} (or pass --gpu-memory-gb/--peak-tflops)")
    g = gpus[name]
    return GpuSpec(name, float(g["memory_gb"]), float(g["peak_bf16_tflops"]), g.get("source", ""))


def preset(name: str) -> ModelArch:
    fields = dict(_presets()["models"][name])
    if fields.get("published_params") is not None:
        fields["published_params"] = float(fields["published_params"])  # YAML reads 7.72e9 as a string
    return ModelArch(name=name, **fields)


def arch_from_hf_config(cfg: dict[str, Any], name: str) -> ModelArch:
    """A Hugging Face config.json (qwen2/llama/mistral layout, or Qwen v1's remote-code 'qwen' layout)."""
    try:
        hidden = int(cfg["hidden_size"])
        heads = int(cfg["num_attention_heads"])
        model_type = cfg.get("model_type", "")
        if model_type == "qwen":
            # Qwen v1: fused c_attn with bias, MHA, and intermediate_size counting both halves of the SwiGLU.
            return ModelArch(
                name=name, hidden_size=hidden, num_hidden_layers=int(cfg["num_hidden_layers"]),
                num_attention_heads=heads, num_key_value_heads=heads,
                head_dim=int(cfg.get("kv_channels", hidden // heads)),
                intermediate_size=int(cfg["intermediate_size"]) // 2, vocab_size=int(cfg["vocab_size"]),
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)), qkv_bias=True,
            )
        return ModelArch(
            name=name, hidden_size=hidden, num_hidden_layers=int(cfg["num_hidden_layers"]),
            num_attention_heads=heads, num_key_value_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate_size=int(cfg["intermediate_size"]), vocab_size=int(cfg["vocab_size"]),
            # transformers' default for a config without the key is tied embeddings.
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
            qkv_bias=bool(cfg.get("attention_bias", model_type == "qwen2")),
        )
    except KeyError as e:
        raise ValueError(f"{name}: config.json lacks {e.args[0]!r}, needed to plan the model") from e


def resolve_arch(name_or_path: str) -> ModelArch:
    """A preset name, a local config.json (or a folder holding one), else the config.json of a hub model."""
    if name_or_path in _presets()["models"]:
        return preset(name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return arch_from_hf_config(json.loads(path.read_text()), str(name_or_path))
    if path.suffix == ".json" or name_or_path.startswith((".", "/")):
        raise FileNotFoundError(f"{name_or_path}: no such config.json")
    from huggingface_hub import hf_hub_download  # only config.json: no weights, no remote code

    try:
        downloaded = Path(hf_hub_download(name_or_path, "config.json"))
    except Exception as e:  # offline, unknown repo, gated: all mean the same to a user here
        raise ValueError(
            f"{name_or_path} is not a preset ({', '.join(preset_names())}), not a local config.json, and its "
            f"config.json could not be fetched from the hub: {e}"
        ) from e
    return arch_from_hf_config(json.loads(downloaded.read_text()), name_or_path)


def parameter_count(arch: ModelArch) -> int:
    """Exact count of distinct parameters (a tied lm_head shares the embedding and is counted once)."""
    h, i = arch.hidden_size, arch.intermediate_size
    attention = h * arch.q_dim + 2 * h * arch.kv_dim + arch.q_dim * h
    if arch.qkv_bias:
        attention += arch.q_dim + 2 * arch.kv_dim
    mlp = 3 * h * i
    norms = 2 * h
    embeddings = arch.vocab_size * h * (1 if arch.tie_word_embeddings else 2)
    return arch.num_hidden_layers * (attention + mlp + norms) + embeddings + h


def matmul_parameter_count(arch: ModelArch) -> int:
    """Weights of the matrix multiplies each token goes through: the projections of every layer and the lm_head
    (it multiplies even when tied to the embedding); the embedding lookup, biases and norms do no matmul."""
    h = arch.hidden_size
    per_layer = 2 * h * arch.q_dim + 2 * h * arch.kv_dim + 3 * h * arch.intermediate_size
    return arch.num_hidden_layers * per_layer + arch.vocab_size * h


def largest_module_parameters(arch: ModelArch) -> int:
    """Parameters of the largest single module (DeepSpeed's `largest_layer_params`: params owned directly by one
    nn.Module): the embedding / lm_head matrix, or one MLP projection, or q_proj with its bias."""
    h = arch.hidden_size
    return max(arch.vocab_size * h, h * arch.intermediate_size, h * arch.q_dim + (arch.q_dim if arch.qkv_bias else 0))
