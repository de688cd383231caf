"""Vectorised, deterministic hashing of a text's tokens and their n-grams (numpy, no Python loop per token).

Tokens are runs of word bytes (ASCII letters, digits, `_`, and any non-ASCII byte) or single punctuation
bytes; whitespace only separates them. A token's hash is a polynomial hash over its bytes computed for all
tokens at once from prefix sums (arithmetic mod 2^64 wraps in numpy), then mixed with splitmix64. The same
hashes feed MinHash shingles (dedup.py) and the 13-grams of decontamination (decontaminate.py), and are
identical in every process (no salted `hash()`).
"""

from __future__ import annotations

import numpy as np

U64 = np.uint64
_BASE = U64(0x100000001B3)  # odd, hence invertible mod 2^64
_NGRAM_BASE = U64(0x9E3779B97F4A7C15)

# Byte classes: 0 whitespace, 1 word byte, 2 punctuation.
_BYTE_CLASS = np.full(256, 2, dtype=np.uint8)
for _c in b" \t\n\r\x0b\x0c":
    _BYTE_CLASS[_c] = 0
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _BYTE_CLASS[_c] = 1
_BYTE_CLASS[128:] = 1

_pow = np.ones(1, dtype=U64)
_inv_pow = np.ones(1, dtype=U64)


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE^i and BASE^-i (mod 2^64) for i < n, grown on demand and cached."""
    global _pow, _inv_pow
    if len(_pow) < n:
        size = max(n, 2 * len(_pow))
        inv = U64(pow(int(_BASE), -1, 1 << 64))
        with np.errstate(over="ignore"):
            _pow = np.cumprod(np.concatenate([[U64(1)], np.full(size - 1, _BASE, dtype=U64)]), dtype=U64)
            _inv_pow = np.cumprod(np.concatenate([[U64(1)], np.full(size - 1, inv, dtype=U64)]), dtype=U64)
    return _pow[:n], _inv_pow[:n]


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole word."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> U64(27))) * U64(0x94D049BB133111EB)
        return x ^ (x >> U64(31))


def token_hashes(text: str) -> np.ndarray:
    """One uint64 per token of `text`, in order."""
    data = np.frombuffer(text.encode("utf-8", errors="surrogatepass"), dtype=np.uint8)
    n = len(data)
    if n == 0:
        return np.zeros(0, dtype=U64)
    cls = _BYTE_CLASS[data]
    prev = np.concatenate([[0], cls[:-1]])
    nxt = np.concatenate([cls[1:], [0]])
    starts = np.flatnonzero((cls == 2) | ((cls == 1) & (prev != 1)))
    ends = np.flatnonzero((cls == 2) | ((cls == 1) & (nxt != 1))) + 1
    pw, inv = _powers(n)
    with np.errstate(over="ignore"):
        weighted = (data.astype(U64) + U64(1)) * pw
        prefix = np.concatenate([[U64(0)], np.cumsum(weighted, dtype=U64)])
        sums = (prefix[ends] - prefix[starts]) * inv[starts]
        lengths = (ends - starts).astype(U64)
        return mix64(sums ^ (lengths << U64(56)))


def ngram_hashes(tokens: np.ndarray, n: int, short_as_one: bool = False) -> np.ndarray:
    """Hashes of all n consecutive tokens. Fewer than n tokens: nothing, or one gram of all (short_as_one)."""
    count = len(tokens) - n + 1
    if count <= 0:
        if not short_as_one or len(tokens) == 0:
            return np.zeros(0, dtype=U64)
        n, count = len(tokens), 1
    acc = np.zeros(count, dtype=U64)
    with np.errstate(over="ignore"):
        for j in range(n):
            acc = acc * _NGRAM_BASE + tokens[j : j + count]
    return mix64(acc)
