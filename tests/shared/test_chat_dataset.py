"""Chat JSONL -> rows: bad records get a clear error or a counted skip; nothing vanishes from the report."""

from __future__ import annotations

import json

import pytest

from shared.chat import ChatFormatError
from shared.chat_dataset import build_sft_rows
from shared.config import ChatDataConfig, ModelConfig
from shared.modeling import load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(ModelConfig())


def good(i):
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_malformed_line_names_file_and_line(tmp_path, tok):
    path = write(tmp_path / "train.jsonl", [good(0), good(1), '{"messages": [', good(2)])
    with pytest.raises(ChatFormatError, match=r"train\.jsonl:3: malformed JSON"):
        build_sft_rows([path], tok, ChatDataConfig(), 256)


def test_invalid_conversation_error_names_file_and_line(tmp_path, tok):
    path = write(tmp_path / "train.jsonl", [good(0), {"messages": [{"role": "user", "content": "only a question"}]}])
    with pytest.raises(ChatFormatError, match=r"train\.jsonl:2: no assistant turn"):
        build_sft_rows([path], tok, ChatDataConfig(), 256)


def test_skip_policy_counts_every_reason(tmp_path, tok):
    long_answer = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "word " * 400}]}
    lines = [
        good(0),
        '{"messages": [',
        {"messages": [{"role": "user", "content": "q"}]},
        {"messages": [{"role": "wizard", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": ["x"]}, {"role": "assistant", "content": "a"}]},
        long_answer,
        good(1),
    ]
    path = write(tmp_path / "train.jsonl", lines)
    skip_cfg = ChatDataConfig(bad_records="skip", overlong="skip")
    rows, report = build_sft_rows([path], tok, skip_cfg, 128)
    d = report.to_dict()
    assert d["read"] == 8 and d["kept"] == 2
    assert d["skipped"] == {"malformed_json": 1, "no_assistant_turn": 1, "unknown_role": 1, "empty_content": 1,
                            "not_a_string": 1, "overlong": 1}
    assert d["read"] == d["kept"] + sum(d["skipped"].values())
    assert "train.jsonl:2" in d["skip_examples"]["malformed_json"]
    # Truncation keeps the over-long sample, cut to the row length, and counts it.
    rows, report = build_sft_rows([path], tok, ChatDataConfig(bad_records="skip", overlong="truncate"), 128)
    assert report.kept == 3 and report.truncated == 1
    assert all(len(r.input_ids) == 128 for r in rows)


def test_no_trainable_conversation_is_an_error(tmp_path, tok):
    path = write(tmp_path / "train.jsonl", [{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(ValueError, match="no trainable conversations"):
        build_sft_rows([path], tok, ChatDataConfig(bad_records="skip"), 128)
