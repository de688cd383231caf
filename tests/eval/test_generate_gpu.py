"""GPU path of generation (skips without CUDA; vLLM parts also without vLLM): vLLM greedy == HF greedy on a
tiny export, and the vLLM engine's memory returned when it is closed. `just gpu-check` calls the same functions
(eval.vllm_check.greedy_agreement, sampling_throughput)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
needs_vllm = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm")
PROMPTS = ["<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n", "def add(a, b):\n", "x = 1"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from shared.config import ModelConfig, TinyModelConfig
    from shared.modeling import load_model, load_tokenizer

    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                                           num_key_value_heads=2, intermediate_size=512))
    tok = load_tokenizer(cfg)
    model = load_model(cfg, tok, precision="bf16", seed=0)
    with torch.no_grad():  # a random model's logits are nearly flat: sharpen them so argmax is not a coin toss
        model.get_output_embeddings().weight.mul_(30.0)
    path = tmp_path_factory.mktemp("gpu-export")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@needs_vllm
def test_vllm_greedy_equals_hf_greedy(export):
    from eval.vllm_check import greedy_agreement

    report = greedy_agreement(export, PROMPTS, max_new_tokens=24)
    assert report["match"], report


@needs_vllm
def test_vllm_engine_is_reused_and_its_memory_returned(export):
    from eval.generate import Sampling, open_engine

    free_before, _ = torch.cuda.mem_get_info()
    engine = open_engine(export, backend="vllm")
    first = engine.generate(PROMPTS, [1, 2, 3], Sampling(temperature=0.8, max_new_tokens=8))
    again = engine.generate(PROMPTS, [1, 2, 3], Sampling(temperature=0.8, max_new_tokens=8))
    assert first == again  # per-request seeds, one engine for every chunk
    engine.close()
    free_after, total = torch.cuda.mem_get_info()
    assert free_after >= free_before - 0.02 * total  # the child exited: its memory is back


def test_hf_greedy_on_gpu_equals_cpu(export):
    from eval.generate import HFEngine, Sampling
    from shared.config import ModelConfig
    from shared.modeling import load_model, load_tokenizer

    tok = load_tokenizer(ModelConfig(name_or_path=export))
    outs = []
    for device in ("cpu", "cuda"):
        model = load_model(ModelConfig(name_or_path=export), tok, precision="fp32", device=device).to(device)
        outs.append(HFEngine(model, tok).generate(PROMPTS, [0, 0, 0], Sampling(max_new_tokens=16)))
    assert outs[0] == outs[1]
