"""The cached ground truth (canonical outputs and times, computed once per task) gives the same verdicts as
recomputing the canonical output beside each sample: cold cache, warm cache, digests of large outputs,
and a torn cache file; samples can neither read the cache nor fake a verdict."""

from __future__ import annotations

import marshal
import math
import shutil
import uuid
from pathlib import Path

import pytest

from eval.code.evalplus_harness import expected_digest, sample_digest
from eval.code.evalplus_runner import _harness_command, evaluate_evalplus, prepare_problems
from eval.code.problems import read_records
from eval.code.sandbox import bubblewrap_works

pytestmark = pytest.mark.timeout(600)

# Tasks whose canonical outputs are large (so cached as digests: HumanEval/15 strings, /130 float lists,
# /139 integers past str()'s digit limit, /100 int lists), plus small ones cached as values (/0, /2 floats).
TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/15", "HumanEval/100", "HumanEval/130", "HumanEval/139"]
WRONG = {
    "HumanEval/0": "    return any(abs(a - b) <= threshold for a in numbers for b in numbers)\n",
    "HumanEval/2": "    return round(number % 1.0, 3)\n",
    "HumanEval/15": "    return ' '.join(str(x) for x in range(n))\n",  # one number short
    "HumanEval/100": "    return [n + 2 * i for i in range(n)] if n < 50 else [n + 2 * i for i in range(n - 1)]\n",
    "HumanEval/130": (  # right except for a tuple where a list is expected
        "    if n == 0:\n        return [1]\n    my_tri = [1, 3]\n    for i in range(2, n + 1):\n"
        "        if i % 2 == 0:\n            my_tri.append(i / 2 + 1)\n"
        "        else:\n            my_tri.append(my_tri[i - 1] + my_tri[i - 2] + (i + 3) / 2)\n"
        "    return tuple(my_tri) if n > 100 else my_tri\n"),
    "HumanEval/139": (  # right except for large n, off by a factor
        "    fact_i = 1\n    special_fact = 1\n    for i in range(1, n+1):\n        fact_i *= i\n"
        "        special_fact *= fact_i\n    return special_fact * (2 if n > 300 else 1)\n"),
}


@pytest.fixture(scope="module")
def problems():
    from tests.conftest import shared_data_file

    records = read_records(shared_data_file("humanevalplus", "HumanEvalPlus.jsonl.gz"))
    return prepare_problems([r for r in records if r["task_id"] in TASKS], "humaneval")


def samples_for(problems: dict) -> list[dict]:
    right = [{"task_id": t, "completion": problems[t]["canonical_solution"]} for t in TASKS]
    return right + [{"task_id": t, "completion": body} for t, body in WRONG.items()]


def verdicts(results: list[dict]) -> list[tuple]:
    return [(r["task_id"], r["base_passed"], r["plus_passed"], r["original_passed"]) for r in results]


def test_cold_and_warm_cache_give_the_same_verdicts_and_wrong_large_outputs_fail(problems, tmp_path):
    cache = tmp_path / "expected"
    cache.mkdir()
    samples = samples_for(problems)
    cold = evaluate_evalplus(problems, samples, "humaneval", progress=False, cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) and len(list(cache.glob("*.marshal"))) == len(TASKS)
    warm = evaluate_evalplus(problems, samples, "humaneval", progress=False, cache_dir=cache)
    assert verdicts(cold) == verdicts(warm)
    n = len(TASKS)
    assert all(r["base_passed"] and r["plus_passed"] and r["original_passed"] for r in cold[:n])
    assert all(r["plus_passed"] is False for r in cold[n:]), verdicts(cold[n:])


def test_large_outputs_are_cached_as_digests_and_small_ones_as_values(problems, tmp_path):
    evaluate_evalplus({t: problems[t] for t in ("HumanEval/0", "HumanEval/15")},
                      [{"task_id": t, "completion": problems[t]["canonical_solution"]}
                       for t in ("HumanEval/0", "HumanEval/15")], "humaneval", progress=False, cache_dir=tmp_path)
    kinds = {}
    for path in tmp_path.glob("*.marshal"):
        entries = marshal.loads(path.read_bytes())
        kinds[len(entries)] = {k for e in entries for k in e if k != "s"}
        # CPU times are measured, not rounded to the 4 ms ticks of the process clock under RLIMIT_CPU
        assert sum(e["s"] > 0 for e in entries) >= 0.9 * len(entries)
    n0 = len(problems["HumanEval/0"]["base_input"]) + len(problems["HumanEval/0"]["plus_input"])
    n15 = len(problems["HumanEval/15"]["base_input"]) + len(problems["HumanEval/15"]["plus_input"])
    assert kinds[n0] == {"v"} and kinds[n15] == {"v", "d"}


def test_a_torn_or_short_cache_file_is_recomputed(problems, tmp_path):
    sample = [{"task_id": "HumanEval/2", "completion": problems["HumanEval/2"]["canonical_solution"]}]
    evaluate_evalplus({"HumanEval/2": problems["HumanEval/2"]}, sample, "humaneval", progress=False,
                      cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.marshal")
    whole = marshal.loads(path.read_bytes())
    for broken in (path.read_bytes()[:100], marshal.dumps(whole[:-1]), b"junk"):  # torn; one entry short; not marshal
        path.write_bytes(broken)
        result = evaluate_evalplus({"HumanEval/2": problems["HumanEval/2"]}, sample, "humaneval", progress=False,
                                   cache_dir=tmp_path)
        assert result[0]["plus_passed"] is True
        again = marshal.loads(path.read_bytes())  # rewritten whole (the times are measured anew)
        assert [e["v"] for e in again] == [e["v"] for e in whole]


@pytest.fixture
def cache_outside_tmp():
    """A cache folder the sandbox would see (not under its private /tmp), removed afterwards."""
    path = Path(__file__).resolve().parents[3] / f".test-evalplus-cache-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(not bubblewrap_works(), reason="hiding folders needs bubblewrap")
def test_samples_cannot_read_the_cache_or_fake_a_verdict(problems, cache_outside_tmp):
    cache = cache_outside_tmp
    body = problems["HumanEval/0"]["canonical_solution"]
    steal = (f"    import glob\n    if not glob.glob({str(cache)!r} + '/*.marshal'):\n        return None\n" + body)
    fake = ('    import os, sys\n    sys.__stdout__.write(\'\\n{"base": true, "plus": true, "original": true}\\n\')\n'
            "    os._exit(0)\n")
    samples = [{"task_id": "HumanEval/0", "completion": c} for c in (body, steal, fake, "    import os\n    os._exit(0)\n")]
    results = evaluate_evalplus({"HumanEval/0": problems["HumanEval/0"]}, samples, "humaneval", progress=False,
                                cache_dir=cache)
    assert list(cache.glob("*.marshal"))  # the cache exists outside the sandbox...
    assert [r["passed"] for r in results] == [True, False, False, False]  # ...but not inside it


@pytest.mark.parametrize("a, b", [
    ("x" * 10, "x" * 10), ([1.5, 2.0], [1.5, 2.0]), (10 ** 5000, 10 ** 5000), (("a", 1), ("a", 1)),
], ids=["str", "floats", "huge-int", "tuple"])
def test_equal_values_of_the_same_types_share_a_digest(a, b):
    assert expected_digest(a) is not None
    assert expected_digest(a) == sample_digest(b)


@pytest.mark.parametrize("a, b", [
    ([1, 2], (1, 2)), ([1], [1.0]), ([True], [1]), ("1", 1), ([1.0, 2.0], [1.0, 2.5]), (10 ** 5000, 10 ** 5000 + 1),
], ids=["list-tuple", "int-float", "bool-int", "str-int", "floats", "huge-int"])
def test_different_values_or_types_do_not(a, b):
    assert expected_digest(a) != sample_digest(b)


def test_values_without_an_exact_digest_get_none():
    assert expected_digest([math.nan]) is None  # NaN is unequal to itself
    assert expected_digest([1, math.nan, "a"]) is None
    assert expected_digest([[1], [2]]) is None  # nested: compared the exact way
    assert expected_digest(1.5) is None and expected_digest({1: 2}) is None
    assert expected_digest(b"ab") is None and expected_digest([b"ab"]) is None  # see the buffer objects below


class ListThatEqualsNothing(list):
    def __eq__(self, other):
        return False


class IntThatEqualsEverything(int):
    def __eq__(self, other):
        return True


def test_a_sample_output_of_another_class_never_matches_an_expected_digest():
    """Subclasses (with an __eq__ of their own) are not marshallable; buffer objects marshal as bytes, which
    no expected digest holds; generators are not marshallable: all are compared the exact way."""
    expected = expected_digest([1, 2])
    assert expected is not None and sample_digest([1, 2]) == expected
    assert sample_digest(ListThatEqualsNothing([1, 2])) is None
    assert sample_digest([IntThatEqualsEverything(1), 2]) is None
    assert sample_digest(x for x in [1]) is None
    assert sample_digest(bytearray(b"ab")) == sample_digest(b"ab")  # why expected digests exclude bytes
    assert expected_digest("ab") != sample_digest(b"ab") and expected_digest(["ab"]) != sample_digest([bytearray(b"ab")])


def test_the_harness_runs_from_bytecode_compiled_into_the_cache(problems, tmp_path, monkeypatch):
    """Not from __pycache__, which PYTHONDONTWRITEBYTECODE or a read-only checkout leaves stale (a compile per
    sample); a cache cleaned between evaluations gets it compiled again."""
    monkeypatch.setenv("QS_CODE_EVAL_CACHE", str(tmp_path / "code-eval"))
    pyc = Path(_harness_command("sample")[-2])
    assert pyc.suffix == ".pyc" and pyc.is_relative_to(tmp_path) and pyc.is_file()
    pyc.unlink()
    sample = [{"task_id": "HumanEval/0", "completion": problems["HumanEval/0"]["canonical_solution"]}]
    result = evaluate_evalplus({"HumanEval/0": problems["HumanEval/0"]}, sample, "humaneval", progress=False,
                               cache_dir=tmp_path / "expected")
    assert result[0]["plus_passed"] is True and pyc.is_file()
