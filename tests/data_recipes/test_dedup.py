"""Exact and near-duplicate detection on real source files with planted near-duplicates."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from data_recipes.dedup import MinHasher, exact_key, near_duplicate_clusters


def stdlib_texts(n: int) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(root.glob("*.py")) if 3_000 < p.stat().st_size < 30_000]
    return [p.read_text(encoding="utf-8") for p in files[:n]]


def small_edit(text: str, k: int) -> str:
    """A near-duplicate: one renamed word, one dropped line, one added comment (varies with k)."""
    lines = text.splitlines()
    del lines[len(lines) // 3 + k % 5]
    lines.insert(len(lines) // 2, f"# edited copy {k}")
    return "\n".join(lines).replace("self", "this", 1) + "\n"


def test_exact_key_ignores_whitespace_only():
    assert exact_key("def f(x):\n    return x\n") == exact_key("def f(x):\n  return x   \n\n")
    assert exact_key("def f(x):\n    return x\n") != exact_key("def f(y):\n    return y\n")


def test_signature_estimates_jaccard_of_shingle_sets():
    hasher = MinHasher(num_perm=256, shingle_size=5, seed=3)
    texts = stdlib_texts(3)
    a = texts[0]
    b = small_edit(a, 1) + texts[1][:2000]  # moderately similar
    sa, sb = hasher.shingles(a), hasher.shingles(b)
    true = len(np.intersect1d(sa, sb)) / len(np.union1d(sa, sb))
    estimate = float((hasher.signature(a) == hasher.signature(b)).mean())
    assert 0.3 < true < 0.95
    assert abs(estimate - true) < 0.1


def test_planted_near_duplicates_found_and_distinct_files_left_alone():
    originals = stdlib_texts(40)
    assert len(originals) == 40
    docs = list(originals)
    planted = {}  # index of the copy -> index of its original
    for k, i in enumerate(range(0, 40, 4)):
        planted[len(docs)] = i
        docs.append(small_edit(originals[i], k))
    hasher = MinHasher(128, 5, seed=1)
    labels = near_duplicate_clusters(np.stack([hasher.signature(t) for t in docs]), bands=16, threshold=0.8)
    for copy, original in planted.items():
        assert labels[copy] == original  # found, and the first occurrence is the representative
    for i in range(40):
        assert labels[i] == i  # no original was merged with another distinct file


def test_clusters_are_deterministic_and_keep_first():
    hasher = MinHasher(64, 3, seed=0)
    base = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho " * 3
    docs = [base + "sigma", "completely different words here " * 10, base + "tau", base + "upsilon", ""]
    sigs = np.stack([hasher.signature(t) for t in docs])
    labels = near_duplicate_clusters(sigs, bands=16, threshold=0.7)
    assert labels.tolist() == [0, 1, 0, 0, 4]  # the empty document is never anyone's duplicate
    assert near_duplicate_clusters(sigs, 16, 0.7).tolist() == labels.tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_signatures_identical_across_hashers_with_same_seed(seed):
    text = stdlib_texts(1)[0]
    assert (MinHasher(128, 5, seed).signature(text) == MinHasher(128, 5, seed).signature(text)).all()
