"""ChatML rendering and loss masks against hand-written expectations, on the tiny and the real Qwen2 vocabulary."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.chat import (
    IGNORE_INDEX,
    ChatFormatError,
    fit_to_length,
    render_chatml,
    tokenize_chat,
    validate_messages,
)
from shared.config import ModelConfig
from shared.modeling import load_tokenizer
from tests.shared.qwen_vocab import qwen2_tokenizer

X = IGNORE_INDEX


@pytest.fixture(scope="module")
def tiny_tok():
    return load_tokenizer(ModelConfig())


@pytest.fixture(scope="module")
def qwen_tok():
    return qwen2_tokenizer()


# The ChatML format of the Qwen report's appendix A.1.1, written out by hand.
REPORT_EXAMPLE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nHello!<|im_end|>\n"
    "<|im_start|>assistant\nHello! How can I assist you today?<|im_end|>\n"
)
REPORT_MESSAGES = [
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hello! How can I assist you today?"},
]


@pytest.mark.parametrize("which", ["tiny_tok", "qwen_tok"])
def test_chat_template_renders_report_chatml(which, request):
    tok = request.getfixturevalue(which)
    assert tok.apply_chat_template(REPORT_MESSAGES, tokenize=False) == REPORT_EXAMPLE
    with_system = [{"role": "system", "content": "You are a helpful assistant."}, *REPORT_MESSAGES]
    assert render_chatml(with_system) == REPORT_EXAMPLE
    prompt = tok.apply_chat_template(REPORT_MESSAGES[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == REPORT_EXAMPLE.split("Hello! How")[0]


def test_single_turn_mask_real_qwen2_ids(qwen_tok):
    # Token ids of Qwen2's vocabulary written by hand: <|im_start|>=151644, <|im_end|>=151645, "\n"=198,
    # system=8948, user=872, assistant=77091, "Hello"=9707, " world"=1879.
    msgs = [
        {"role": "system", "content": "system"},
        {"role": "user", "content": "Hello world"},
        {"role": "assistant", "content": "Hello"},
    ]
    s = tokenize_chat(msgs, qwen_tok)
    assert s.input_ids == [
        151644, 8948, 198, 8948, 151645, 198,
        151644, 872, 198, 9707, 1879, 151645, 198,
        151644, 77091, 198, 9707, 151645, 198,
    ]  # fmt: skip
    assert s.labels == [X] * 13 + [X, X, X, 9707, 151645, X]


def test_multi_turn_mask_all_and_last(qwen_tok):
    msgs = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "world"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hello world"},
    ]
    world = qwen_tok.encode("world")
    s_all = tokenize_chat(msgs, qwen_tok, default_system_prompt=None)
    user = [X] * 6  # <|im_start|> user \n Hello <|im_end|> \n
    head = [X, X, X]  # <|im_start|> assistant \n
    assert s_all.labels == user + head + world + [151645, X] + user + head + [9707, 1879, 151645, X]
    s_last = tokenize_chat(msgs, qwen_tok, train_on="last", default_system_prompt=None)
    assert s_last.labels == user + head + [X] * (len(world) + 2) + user + head + [9707, 1879, 151645, X]
    assert s_all.input_ids == s_last.input_ids


@pytest.mark.parametrize("which", ["tiny_tok", "qwen_tok"])
def test_segmentwise_ids_equal_tokenising_the_template(which, request):
    tok = request.getfixturevalue(which)
    convs = [
        REPORT_MESSAGES,
        [
            {"role": "system", "content": "Solve step by step."},
            {"role": "user", "content": "Tom has 3 apples and buys 12 more. How many?"},
            {"role": "assistant", "content": "3+12=<<3+12=15>>15\n#### 15"},
            {"role": "user", "content": "def f(x):\n    return x  # why?"},
            {"role": "assistant", "content": "```python\ndef f(x):\n    return x\n```"},
        ],
    ]
    for msgs in convs:
        s = tokenize_chat(msgs, tok)
        assert s.input_ids == tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
        # Every trained token is assistant content or its <|im_end|>.
        trained = tok.decode([t for t, lab in zip(s.input_ids, s.labels, strict=True) if lab != X])
        assert trained == "".join(m["content"] + "<|im_end|>" for m in msgs if m["role"] == "assistant")


def test_default_system_prompt_added_only_when_missing(tiny_tok):
    msgs = REPORT_MESSAGES
    with_default = tokenize_chat(msgs, tiny_tok, default_system_prompt="Be terse.")
    assert tiny_tok.decode(with_default.input_ids).startswith("<|im_start|>system\nBe terse.<|im_end|>")
    none = tokenize_chat(msgs, tiny_tok, default_system_prompt=None)
    assert tiny_tok.decode(none.input_ids).startswith("<|im_start|>user\nHello!")


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
        ({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}, "unknown role"),
        ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]}, "empty content"),
        ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]}, "not a string"),
        ({"messages": []}, "non-empty"),
        ({"text": "no messages"}, "non-empty"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"},
                       {"role": "assistant", "content": "c"}]}, "only come first"),
    ],
)
def test_invalid_conversations_are_named(record, reason):
    with pytest.raises(ChatFormatError, match=reason) as err:
        validate_messages(record, "data.jsonl:7")
    assert "data.jsonl:7" in str(err.value)


def test_overlong_policy(tiny_tok):
    msgs = [{"role": "user", "content": "question"}, {"role": "assistant", "content": "answer " * 50}]
    s = tokenize_chat(msgs, tiny_tok)
    assert fit_to_length(s, len(s.input_ids), "skip") is s
    assert fit_to_length(s, 30, "skip") is None
    cut = fit_to_length(s, 30, "truncate")
    assert cut is not None and cut.truncated and len(cut.input_ids) == 30
    assert cut.input_ids == s.input_ids[:30] and cut.labels == s.labels[:30]
    # Cut before any assistant token: nothing to train on, so it is skipped rather than kept empty.
    assert fit_to_length(s, 8, "truncate") is None


# --------------------------------------------------------------------------- training ids == generation ids

# Text heavy in what BPE merges across a segment boundary: newlines, spaces, tabs, CR, punctuation, non-ASCII.
CONTENT = st.text(
    alphabet=st.one_of(st.sampled_from(["\n", " ", "\t", "\r", "#", "<", "|", ">", "a", "1", "é", "中", "."]),
                       st.characters(codec="utf-8", exclude_categories=("Cs",))),
    min_size=1, max_size=24,
).filter(lambda s: s.strip() != "")


def _generation_ids(tok, messages: list[dict[str, str]]) -> list[int]:
    """What generation feeds and produces: the template's prompt, then the content as its own tokens."""
    prompt = tok.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True,
                                     return_dict=True)["input_ids"]
    return list(prompt) + tok.encode(messages[-1]["content"], add_special_tokens=False) + \
        tok.convert_tokens_to_ids(["<|im_end|>"]) + tok.encode("\n", add_special_tokens=False)


@pytest.mark.parametrize("which", ["tiny_tok", "qwen_tok"])
def test_training_ids_equal_generation_ids_for_any_content(which, request):
    tok = request.getfixturevalue(which)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(system=CONTENT, user=CONTENT, answer=CONTENT, earlier=st.lists(st.tuples(CONTENT, CONTENT), max_size=2))
    def check(system, user, answer, earlier):
        turns = [m for u, a in earlier for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})]
        msgs = [{"role": "system", "content": system}, *turns, {"role": "user", "content": user},
                {"role": "assistant", "content": answer}]
        s = tokenize_chat(msgs, tok, train_on="last")
        expected = _generation_ids(tok, msgs)
        assert s.input_ids == expected
        completion = tok.encode(answer, add_special_tokens=False) + tok.convert_tokens_to_ids(["<|im_end|>"])
        n_prompt = len(expected) - len(completion) - 1
        assert s.labels == [X] * n_prompt + completion + [X]
        if not turns:  # one trained turn: train_on=all is the same sequence
            assert tokenize_chat(msgs, tok, train_on="all").input_ids == expected

    check()


def test_content_starting_with_a_newline_real_qwen2_ids(qwen_tok):
    # "user\n" + "\nHello": the template's rendering has "\n\n" (271), which generation sees; 198, 198 never.
    msgs = [{"role": "system", "content": "system"}, {"role": "user", "content": "\nHello"},
            {"role": "assistant", "content": "Hello"}]
    s = tokenize_chat(msgs, qwen_tok)
    assert s.input_ids == [
        151644, 8948, 198, 8948, 151645, 198,
        151644, 872, 271, 9707, 151645, 198,
        151644, 77091, 198, 9707, 151645, 198,
    ]  # fmt: skip
    assert s.labels == [X] * 15 + [9707, 151645, X]
