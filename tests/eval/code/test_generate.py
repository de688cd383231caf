"""eval.generate (through eval.sharded) on a tiny random Qwen2 model: batched == one-by-one, stop sequences, chat,
sampling, paths."""

from __future__ import annotations

import pytest
import torch

from eval.generate import render_prompts, truncate_at_stop
from eval.sharded import GenerationSpec, generate_tasks
from shared.config import ModelConfig, TinyModelConfig
from shared.modeling import load_model, load_tokenizer

PROMPTS = ["def add(a, b):\n", "import os\n\nclass Thing:\n    def __init__(self):", "x = 1"]


def generate_completions(model, prompts, *, tokenizer=None, stop=None, **spec) -> list[list[str]]:
    """n completions per prompt, in prompt order (the task ids are the prompts' positions)."""
    spec = GenerationSpec(stop=tuple(stop or ()), **{k: v for k, v in spec.items() if k != "progress"})
    out = generate_tasks(model, [(str(i), p) for i, p in enumerate(prompts)], spec, tokenizer=tokenizer,
                         progress=False)
    return [out[str(i)] for i in range(len(prompts))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                           num_key_value_heads=2, intermediate_size=128))
    tok = load_tokenizer(cfg)
    model = load_model(cfg, tok, precision="fp32", seed=0)
    path = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model, tok, path


def test_batched_greedy_equals_one_by_one(tiny):
    model, tok, _ = tiny
    batched = generate_completions(model, PROMPTS, tokenizer=tok, max_new_tokens=10, batch_size=3, progress=False)
    single = [generate_completions(model, [p], tokenizer=tok, max_new_tokens=10, batch_size=1, progress=False)[0]
              for p in PROMPTS]
    assert batched == single
    assert all(len(c) == 1 and c[0] for c in batched)


def test_stop_sequences_truncate(tiny):
    model, tok, _ = tiny
    free = generate_completions(model, PROMPTS, tokenizer=tok, max_new_tokens=16, progress=False)
    # stop on a piece of text the model really produces: the generation must end right before it
    target = next(c[0] for c in free if len(c[0]) > 6)
    stop = target[3:6]
    stopped = generate_completions(model, PROMPTS, tokenizer=tok, max_new_tokens=16, stop=[stop], progress=False)
    for (full,), (cut,) in zip(free, stopped, strict=True):
        assert stop not in cut
        assert cut == truncate_at_stop(full, [stop])


def test_stop_criterion_ends_early(tiny):
    from eval.generate import StopOnSequences

    _, tok, _ = tiny
    ids = tok(["hello world", "hello there"], return_tensors="pt", padding=True)["input_ids"]
    crit = StopOnSequences(tok, ["world"], prompt_len=0)
    assert crit(ids).tolist() == [True, False]


def test_chat_prompts_use_the_chat_template(tiny):
    _, tok, _ = tiny
    (text,) = render_prompts(tok, ["Write add."], chat=True, system_prompt="Be brief.")
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>user\nWrite add.<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_sampling_gives_n_per_prompt_and_is_seeded(tiny):
    model, tok, _ = tiny
    kw = dict(tokenizer=tok, n=3, temperature=1.0, top_p=0.95, max_new_tokens=8, progress=False)
    a = generate_completions(model, PROMPTS[:2], seed=7, **kw)
    b = generate_completions(model, PROMPTS[:2], seed=7, **kw)
    assert a == b and [len(x) for x in a] == [3, 3]
    assert len({s for x in a for s in x}) > 1  # samples differ from each other


def test_model_path_loads_and_matches_in_memory_model(tiny):
    model, tok, path = tiny
    from_path = generate_completions(str(path), PROMPTS[:2], max_new_tokens=8, progress=False)
    in_memory = generate_completions(model, PROMPTS[:2], tokenizer=tok, max_new_tokens=8, progress=False)
    assert from_path == in_memory
    assert torch.is_grad_enabled()  # generation ran under no_grad and left the global flag as it was
