"""Qwen (v1)'s tiktoken vocabulary as a Hugging Face fast tokenizer (byte-level BPE), the form Qwen2 ships.

qwen.tiktoken holds one token per line: its bytes in base64 and its rank (= its id). tiktoken encodes a
pre-token by merging, again and again, the adjacent pair whose concatenation has the lowest rank; so a token
of rank r was made by the merge of the two parts that byte pair encoding of its bytes with ranks below r
ends in, and the merge list is those pairs in rank order. Qwen v1 puts its special tokens right after the
ranks (151643 in the released file): <|endoftext|>, <|im_start|>, <|im_end|>, then <|extra_0|>..<|extra_204|>.
Pre-tokenisation (the split regex) and NFC normalisation are the ones Qwen v1's tokenizer and Qwen2's use, so
the ids equal both on any text. The conversion of the released file takes some seconds; it is cached by the
file's hash (Qwen-7B, -14B and -72B share it).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from shared.tokenizer import (
    ENDOFTEXT,
    IM_END,
    IM_START,
    QWEN2_SPLIT_PATTERN,
    cache_root,
    load_cached,
    wrap_tokenizer,
)

log = logging.getLogger(__name__)

VOCAB_FILE = "qwen.tiktoken"
N_EXTRAS = 205  # <|extra_0|> .. <|extra_204|>
_VERSION = "1"


def read_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    """{token bytes: rank}; a malformed line is an error naming the file and line."""
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except ValueError as e:
                raise ValueError(f"{path}:{n}: not a tiktoken line (base64 token, rank): {line[:80]!r}") from e
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: ranks are not 0..{len(ranks) - 1} without gaps")
    return ranks


def special_tokens(n_ranks: int) -> list[tuple[int, str]]:
    names = [ENDOFTEXT, IM_START, IM_END] + [f"<|extra_{i}|>" for i in range(N_EXTRAS)]
    return list(enumerate(names, start=n_ranks))


def _byte_to_char() -> dict[int, str]:
    """The byte-level alphabet of GPT-2 / Qwen2 tokenizer.json: printable bytes stand for themselves, the others
    map to code points from 256 up, so every token is a printable string."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _last_merge(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes]:
    """The two parts BPE reaches for `token` with only the ranks below its own: the merge that makes it."""
    limit = ranks[token]
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, at = limit, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1], limit)
            if r < best:
                best, at = r, i
        if at < 0:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {limit}) cannot be built from lower-ranked tokens: not a BPE vocabulary")
    return parts[0], parts[1]


def tiktoken_to_fast(path: str | Path) -> PreTrainedTokenizerFast:
    """The byte-level BPE fast tokenizer of a Qwen v1 qwen.tiktoken, with ChatML specials and template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    ranks = read_tiktoken_ranks(path)
    to_char = _byte_to_char()

    def text(b: bytes) -> str:
        return "".join(to_char[x] for x in b)

    vocab = {text(tok): rank for tok, rank in ranks.items()}
    merges = [
        (text(a), text(b))
        for tok in sorted((t for t in ranks if len(t) > 1), key=ranks.__getitem__)
        for a, b in [_last_merge(ranks, tok)]
    ]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    for expected, name in special_tokens(len(ranks)):
        tok.add_special_tokens([AddedToken(name, special=True, normalized=False)])
        if tok.token_to_id(name) != expected:
            raise ValueError(f"{name} got id {tok.token_to_id(name)}, Qwen v1 has it at {expected}")
    fast = wrap_tokenizer(tok)
    fast.eos_token = ENDOFTEXT  # a base model's end of document, as Qwen v1's eod and Qwen2 base's eos
    return fast


def load_v1_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """tiktoken_to_fast, cached by the vocabulary file's hash."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    folder = cache_root() / "tokenizers" / f"qwen-v1-{digest}-v{_VERSION}"

    def convert() -> PreTrainedTokenizerFast:
        log.info("converting %s to a byte-level BPE tokenizer (once; cached in %s)", path, folder)
        return tiktoken_to_fast(path)

    return load_cached(folder, convert)
