"""Exact deduplication (hash of whitespace-normalised text) and near-duplicate detection (MinHash + LSH).

MinHash: shingles are `shingle_size` consecutive tokens (ngrams.py), hashed to 32 bits; each of `num_perm`
hash functions is the permutation h -> a*h + b (mod 2^32, a odd) and the signature keeps, per function, the
minimum over the document's shingles, computed as one numpy array operation per block of shingles. (uint32
arithmetic is 4x faster than uint64 here, with the same bias and spread of the Jaccard estimate.)
LSH: the signature is cut into `bands` bands; documents whose band values collide in any band are
candidates, linked when their signatures agree on at least `threshold` of the positions (an estimate of
Jaccard similarity). Connected components are clusters; the first document (lowest global index) of
each cluster is kept, so the result depends only on the input order.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from data_recipes.ngrams import U64, ngram_hashes, token_hashes

_EMPTY = np.iinfo(np.uint32).max
_BLOCK = 4096  # shingles per block: bounds the (block x num_perm) temporary to a few MB


def exact_key(text: str) -> bytes:
    """Hash of the text with whitespace runs collapsed: formatting-only copies share it."""
    normalised = " ".join(text.split())
    return hashlib.blake2b(normalised.encode("utf-8", errors="surrogatepass"), digest_size=16).digest()


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, _EMPTY, size=num_perm, dtype=np.uint32, endpoint=True) | np.uint32(1)
    b = rng.integers(0, _EMPTY, size=num_perm, dtype=np.uint32, endpoint=True)
    return a, b


class MinHasher:
    def __init__(self, num_perm: int = 128, shingle_size: int = 5, seed: int = 1):
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.a, self.b = permutations(num_perm, seed)

    def shingles(self, text: str, tokens: np.ndarray | None = None) -> np.ndarray:
        """The document's distinct shingles as uint32 hashes (`tokens`: token_hashes(text), if at hand)."""
        grams = ngram_hashes(token_hashes(text) if tokens is None else tokens, self.shingle_size, short_as_one=True)
        return np.unique((grams >> U64(32)).astype(np.uint32))

    def signature_of_shingles(self, shingles: np.ndarray) -> np.ndarray:
        sig = np.full(self.num_perm, _EMPTY, dtype=np.uint32)
        with np.errstate(over="ignore"):
            for start in range(0, len(shingles), _BLOCK):
                values = shingles[start : start + _BLOCK, None] * self.a
                values += self.b
                np.minimum(sig, values.min(axis=0), out=sig)
        return sig

    def signature(self, text: str, tokens: np.ndarray | None = None) -> np.ndarray:
        # Repeated shingles cannot change a minimum: no need for the (costly) np.unique of shingles().
        grams = ngram_hashes(token_hashes(text) if tokens is None else tokens, self.shingle_size, short_as_one=True)
        return self.signature_of_shingles((grams >> U64(32)).astype(np.uint32))


def band_keys(signatures: np.ndarray, bands: int) -> np.ndarray:
    """(n_docs, bands) uint64: each band's rows folded into one hash."""
    n, num_perm = signatures.shape
    rows = num_perm // bands
    view = signatures.reshape(n, bands, rows).astype(U64)
    acc = np.zeros((n, bands), dtype=U64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            acc = acc * U64(0x100000001B3) + view[:, :, r] + U64(1)
    return acc


def near_duplicate_clusters(signatures: np.ndarray, bands: int, threshold: float) -> np.ndarray:
    """Cluster label per document: the index of its cluster's first document (itself when unique)."""
    n = len(signatures)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = band_keys(signatures, bands)
    empty = (signatures == _EMPTY).all(axis=1)  # no tokens at all: never a near-duplicate of anything
    src, dst = [], []
    for band in range(bands):
        order = np.lexsort((np.arange(n), keys[:, band]))
        sorted_keys = keys[order, band]
        new_group = np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]])
        group_first = order[np.maximum.accumulate(np.where(new_group, np.arange(n), 0))]
        members = ~new_group
        a, b = group_first[members], order[members]
        similar = (signatures[a] == signatures[b]).mean(axis=1) >= threshold
        keep = similar & ~empty[a] & ~empty[b]
        src.append(a[keep])
        dst.append(b[keep])
    src_all, dst_all = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src_all), dtype=np.int8), (src_all, dst_all)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    first = np.full(component.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, component, np.arange(n))
    return first[component]
