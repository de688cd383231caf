"""eval.sharded in one process: a sample depends on (seed, task_id, index) only, and resume is exact at any cut."""

from __future__ import annotations

import random

import pytest
import torch

from eval.generate import Sampling, open_engine, stop_token_ids
from eval.sharded import GenerationSpec, generate_tasks, make_blocks, sample_seed
from shared.config import ModelConfig, TinyModelConfig
from shared.modeling import load_model, load_tokenizer
from tests.counting_engine import CountingEngine

TASKS = [(f"t{i}", f"Question {i}: what is {i} plus {2 * i}?") for i in range(7)]
SPEC = GenerationSpec(n=3, temperature=0.9, top_p=0.95, max_new_tokens=6, seed=11, batch_size=4, chat=True)


@pytest.fixture(scope="module")
def tiny():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           num_key_value_heads=1, intermediate_size=64))
    tok = load_tokenizer(cfg)
    yield load_model(cfg, tok, precision="fp32", seed=0), tok
    torch.set_num_threads(threads)


def test_a_sample_depends_only_on_seed_task_and_index(tiny):
    model, tok = tiny
    reference = generate_tasks(model, TASKS, SPEC, tokenizer=tok, progress=False)
    assert set(reference) == {t for t, _ in TASKS} and all(len(v) == 3 for v in reference.values())
    assert len({c for v in reference.values() for c in v}) > len(TASKS)  # samples of a task differ
    shuffled = random.Random(0).sample(TASKS, len(TASKS))
    for batch_size in (1, 5):  # other batches, other order, other neighbours in every batch
        spec = GenerationSpec(**{**SPEC.__dict__, "batch_size": batch_size})
        assert generate_tasks(model, shuffled, spec, tokenizer=tok, progress=False) == reference
    other_seed = GenerationSpec(**{**SPEC.__dict__, "seed": 12})
    assert generate_tasks(model, TASKS, other_seed, tokenizer=tok, progress=False) != reference
    assert sample_seed(11, "t1", 0) != sample_seed(11, "t1", 1) != sample_seed(11, "t2", 1)


def test_greedy_decodes_once_and_repeats(tiny):
    model, tok = tiny
    engine = CountingEngine(model, tok)
    spec = GenerationSpec(n=3, max_new_tokens=5, batch_size=4)
    out = generate_tasks(engine, TASKS[:3], spec, progress=False)
    assert engine.generated == 3 and all(len(set(v)) == 1 and len(v) == 3 for v in out.values())


def test_blocks_never_span_groups():
    pairs = [(str(t), j) for t in range(5) for j in range(2)]
    assert make_blocks(pairs, group=4, batch_size=3) == [pairs[0:3], pairs[3:4], pairs[4:7], pairs[7:8], pairs[8:10]]
    assert make_blocks(pairs, group=10, batch_size=4) == [pairs[0:4], pairs[4:8], pairs[8:10]]


def test_resume_from_parts_torn_mid_block_gives_the_same_completions(tiny, tmp_path):
    model, tok = tiny
    work = tmp_path / "parts"
    reference = generate_tasks(model, TASKS, SPEC, tokenizer=tok, work_dir=work, progress=False)
    own = work / "rank-0.jsonl"
    lines = own.read_bytes().splitlines(keepends=True)
    assert len(lines) == len(TASKS) * 3  # one line per pair, blocks of 4 pairs
    own.write_bytes(b"".join(lines[:6]) + lines[6][:10])  # 1.5 blocks whole, then a torn line
    engine = CountingEngine(model, tok)
    assert generate_tasks(engine, TASKS, SPEC, work_dir=work, progress=False) == reference
    assert engine.generated == len(lines) - 4  # the first block was reused; the torn one redone whole
    assert own.read_bytes().count(b"\n") == len(lines) + 2  # the cut line was removed before appending

    skipping = CountingEngine(model, tok)  # tasks marked done elsewhere: their blocks are not generated
    out = generate_tasks(skipping, TASKS, SPEC, skip=[t for t, _ in TASKS[:4]], progress=False)
    assert out == {t: reference[t] for t, _ in TASKS[4:]} and skipping.generated == 9  # blocks 3-5: pairs 12-20


def test_other_settings_in_a_work_dir_are_an_error(tiny, tmp_path):
    model, tok = tiny
    generate_tasks(model, TASKS[:2], SPEC, tokenizer=tok, work_dir=tmp_path / "p", progress=False)
    hotter = GenerationSpec(**{**SPEC.__dict__, "temperature": 1.3})
    with pytest.raises(ValueError, match="other settings"):
        generate_tasks(model, TASKS[:2], hotter, tokenizer=tok, work_dir=tmp_path / "p", progress=False)
    with pytest.raises(ValueError, match="another prompt"):
        generate_tasks(model, [("t0", "changed"), TASKS[1]], SPEC, tokenizer=tok, work_dir=tmp_path / "p",
                       progress=False)


def test_hf_path_stops_at_im_end_when_eos_is_endoftext(tiny):
    """A base export's eos is <|endoftext|>; a chat answer ends with <|im_end|>: both must stop generation."""
    _, tok = tiny
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    forced = load_model(ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                         num_key_value_heads=1, intermediate_size=64)),
                        tok, precision="fp32", seed=0)
    with torch.no_grad():  # make <|im_end|> the most likely next token everywhere
        head = forced.get_output_embeddings().weight
        head[im_end] = head[im_end].sign() * head.abs().max() * 100
    forwards = []
    forced.register_forward_pre_hook(lambda module, args: forwards.append(1))
    eos = tok.eos_token
    try:
        tok.eos_token = "<|endoftext|>"  # as in a base export
        assert stop_token_ids(tok) == sorted({tok.convert_tokens_to_ids("<|endoftext|>"), im_end})
        out = open_engine(forced, tok).generate(["Hello"], [0], Sampling(max_new_tokens=8))
    finally:
        tok.eos_token = eos
    assert out == [""] and len(forwards) == 1  # one token (<|im_end|>), then stopped
