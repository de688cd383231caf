"""A small byte-level BPE tokenizer built locally for tiny runs, shaped like Qwen2's.

Same pre-tokenisation regex as Qwen2 (digits split one by one, which matters for arithmetic), byte-level
alphabet (never an unknown token), and Qwen's special tokens. Trained on the running interpreter's standard
library source, so it needs no download; cached on disk after the first build (a few seconds).
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Callable
from pathlib import Path

from transformers import PreTrainedTokenizerFast

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

# Qwen2's pre-tokenizer pattern (tokenizer.json of Qwen/Qwen2-7B).
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2-Instruct's chat template: a default system turn when the conversation has none.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_BUILD_VERSION = "1"  # bump when the training recipe below changes
_TRAIN_BYTES = 3_000_000


def cache_root() -> Path:
    return Path(os.environ.get("QWEN_SPECIALISTS_CACHE", Path.home() / ".cache" / "qwen_specialists"))


def stdlib_training_files(max_bytes: int = _TRAIN_BYTES) -> list[Path]:
    """A deterministic slice of the stdlib's .py files (sorted paths, tests excluded)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(p in {"test", "tests", "idlelib", "site-packages", "lib2to3"} for p in rel):
            continue
        size = path.stat().st_size
        if total + size > max_bytes:
            continue
        files.append(path)
        total += size
    return files


def build_tiny_bpe(vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )

    def texts():
        for path in stdlib_training_files():
            yield path.read_text(encoding="utf-8", errors="replace")

    tok.train_from_iterator(texts(), trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok) -> PreTrainedTokenizerFast:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        additional_special_tokens=[IM_START, IM_END],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_tokenizer_dir(vocab_size: int = 4096) -> Path:
    key = hashlib.sha256(f"{_BUILD_VERSION}-{vocab_size}-{sysconfig.get_paths()['stdlib']}".encode()).hexdigest()
    return cache_root() / "tokenizers" / f"tiny-bpe-{vocab_size}-{key[:12]}"


def load_cached(folder: Path, build: Callable[[], PreTrainedTokenizerFast]) -> PreTrainedTokenizerFast:
    """The tokenizer saved in `folder`, built and saved there first when missing. The save goes to a private
    folder renamed into place, so racing processes (ranks, tests) never read a half-written one."""
    if not (folder / "tokenizer.json").exists():
        tok = build()
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        tok.save_pretrained(str(tmp))
        try:
            tmp.replace(folder)
        except OSError:  # another process won the race; its copy is identical
            pass
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def load_tiny_tokenizer(vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """The locally built tokenizer, trained once and then read from the cache."""
    return load_cached(tiny_tokenizer_dir(vocab_size), lambda: build_tiny_bpe(vocab_size))


def ensure_chat_template(tokenizer) -> None:
    """Give a tokenizer without one the ChatML template (base Qwen checkpoints ship none)."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    for tok in (IM_START, IM_END):
        if tokenizer.convert_tokens_to_ids(tok) in (None, tokenizer.unk_token_id):
            raise ValueError(f"tokenizer has no {tok} token: it cannot render ChatML")
