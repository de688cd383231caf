"""A generator of small Python function problems with tests (the tiny code default's data and held-out set).

Each problem is one function from a family (an operation: "Return x plus {k}.", "Return the elements of xs
greater than {k}.", ...) with a constant k, a function name and an argument name. The prompt is the signature
and a docstring with ONE visible example; the tests are asserts on five other inputs, which never appear in the
prompt (hidden tests). Expected values come from running the canonical solution here, at build time.

Split: the held-out set is every problem whose (family, k) combination is held out (a fixed rule, the same for
every data seed); training problems only use the other combinations, so a held-out problem is an unseen
combination of an operation the model has seen (with other constants) and a constant it has seen (in other
operations). Records have HumanEval's fields (task_id, prompt, entry_point, canonical_solution, test with
`check(candidate)`), so `eval.code --benchmark humaneval` scores them, plus `family`, `k` and `split`.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TASK_PREFIX = "SynthFn"
K_VALUES = tuple(range(2, 13))
N_TESTS = 5


@dataclass(frozen=True)
class Family:
    stem: str  # name stem of the function
    kind: str  # argument kind: int | list | str | word
    doc: str  # docstring, {a} = argument name, {k} = constant
    body: str  # the return expression, same placeholders


def _near(rng: random.Random, k: int) -> int:
    """A value where operations with k and with k +- 1 tend to differ: k, its neighbours, its multiples."""
    return rng.choice([rng.randint(-40, 40), k + rng.randint(-1, 1), k * rng.randint(-4, 4)])


def _int_arg(rng: random.Random, k: int) -> int:
    return _near(rng, k)


def _list_arg(rng: random.Random, k: int) -> list[int]:
    return [_near(rng, k) for _ in range(rng.choice([rng.randint(1, 6), k + rng.randint(-1, 1)]))]


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _str_arg(rng: random.Random, k: int) -> str:
    lengths = [rng.choice([k, k + 1, rng.randint(1, 14)]) for _ in range(rng.randint(1, 4))]
    return " ".join("".join(rng.choice(LETTERS) for _ in range(n)) for n in lengths)


def _word_arg(rng: random.Random, k: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 4)))


ARGS: dict[str, tuple[tuple[str, ...], Callable[[random.Random, int], Any]]] = {
    "int": (("x", "n", "value", "num"), _int_arg),
    "list": (("xs", "items", "nums", "values"), _list_arg),
    "str": (("s", "text", "words", "line"), _str_arg),
    "word": (("s", "word", "token", "part"), _word_arg),
}

FAMILIES: tuple[Family, ...] = (
    Family("add", "int", "Return {a} plus {k}.", "{a} + {k}"),
    Family("subtract", "int", "Return {a} minus {k}.", "{a} - {k}"),
    Family("multiply", "int", "Return {a} times {k}.", "{a} * {k}"),
    Family("remainder", "int", "Return the remainder of {a} divided by {k}.", "{a} % {k}"),
    Family("divide", "int", "Return {a} divided by {k}, rounded down.", "{a} // {k}"),
    Family("is_multiple", "int", "Return True if {a} is divisible by {k}.", "{a} % {k} == 0"),
    Family("is_above", "int", "Return True if {a} is greater than {k}.", "{a} > {k}"),
    Family("cap", "int", "Return the smaller of {a} and {k}.", "min({a}, {k})"),
    Family("floor", "int", "Return the larger of {a} and {k}.", "max({a}, {k})"),
    Family("scale", "list", "Return every element of {a} times {k}.", "[v * {k} for v in {a}]"),
    Family("shift", "list", "Return every element of {a} plus {k}.", "[v + {k} for v in {a}]"),
    Family("count_above", "list", "Return how many elements of {a} are greater than {k}.",
           "sum(1 for v in {a} if v > {k})"),
    Family("keep_above", "list", "Return the elements of {a} that are greater than {k}.",
           "[v for v in {a} if v > {k}]"),
    Family("drop_first", "list", "Return {a} without its first {k} elements.", "{a}[{k}:]"),
    Family("take_first", "list", "Return the first {k} elements of {a}.", "{a}[:{k}]"),
    Family("sum_multiples", "list", "Return the sum of the elements of {a} that are divisible by {k}.",
           "sum(v for v in {a} if v % {k} == 0)"),
    Family("repeat", "word", "Return {a} repeated {k} times.", "{a} * {k}"),
    Family("prefix", "str", "Return the first {k} characters of {a}.", "{a}[:{k}]"),
    Family("long_words", "str", "Return the words of {a} longer than {k} characters.",
           "[w for w in {a}.split() if len(w) > {k}]"),
)
NOUNS = ("score", "count", "total", "level", "items", "data", "entries", "points", "size", "price", "step",
         "weight", "index", "record", "batch", "result")


def is_heldout(family_index: int, k: int) -> bool:
    """The fixed held-out rule: about a quarter of the (family, k) combinations, every family and k in both."""
    return (family_index * 3 + k) % 4 == 0


def _combos(heldout: bool) -> list[tuple[int, int]]:
    return [(f, k) for f in range(len(FAMILIES)) for k in K_VALUES if is_heldout(f, k) == heldout]


def _compile(name: str, a: str, body: str) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    exec(f"def {name}({a}):\n    return {body}\n", namespace)  # our own generated source, not model output
    return namespace[name]


def _draw_tests(fam: Family, a: str, k: int, rng: random.Random) -> tuple[list[tuple[Any, Any]], Callable]:
    """1 + N_TESTS distinct (input, output) cases whose hidden part tells k from k - 1 and from k + 1 (so an
    answer with a near-miss constant fails), redrawn until it does."""
    draw = ARGS[fam.kind][1]
    fn = _compile("f", a, fam.body.format(a=a, k=k))
    near = [_compile("f", a, fam.body.format(a=a, k=k + d)) for d in (-1, 1)]
    for _ in range(1000):
        inputs: list[Any] = []
        while len(inputs) < 1 + N_TESTS:  # distinct inputs: the visible example is never a hidden test
            x = draw(rng, k)
            if x not in inputs:
                inputs.append(x)
        if all(any(g(x) != fn(x) for x in inputs[1:]) for g in near):
            return [(x, fn(x)) for x in inputs], fn
    raise RuntimeError(f"no discriminating tests for {fam.stem} with k={k}")


def make_problem(family_index: int, k: int, rng: random.Random, task_id: str, split: str) -> dict[str, Any]:
    fam = FAMILIES[family_index]
    a = rng.choice(ARGS[fam.kind][0])
    name = f"{fam.stem}_{rng.choice(NOUNS)}"
    doc, body = fam.doc.format(a=a, k=k), fam.body.format(a=a, k=k)
    cases, _ = _draw_tests(fam, a, k, rng)
    (shown, shown_out), hidden = cases[0], cases[1:]
    prompt = f'def {name}({a}):\n    """{doc}\n    >>> {name}({shown!r})\n    {shown_out!r}\n    """\n'
    asserts = "".join(f"    assert candidate({x!r}) == {y!r}\n" for x, y in hidden)
    return {"task_id": task_id, "prompt": prompt, "entry_point": name, "canonical_solution": f"    return {body}\n",
            "test": f"def check(candidate):\n{asserts}", "family": fam.stem, "k": k, "split": split}


def build_problems(split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` problems of `split` (train | heldout), deterministic in (split, n, seed); combinations in turn so
    that every (family, k) of the split appears about equally often."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be train or heldout, not {split!r}")
    combos = _combos(split == "heldout")
    rng = random.Random(f"{split}:{seed}")
    order = list(combos)
    problems = []
    for i in range(n):
        if i % len(order) == 0:
            rng.shuffle(order)
        f, k = order[i % len(order)]
        problems.append(make_problem(f, k, rng, f"{TASK_PREFIX}/{split}/{i}", split))
    return problems


def solution_source(problem: dict[str, Any]) -> str:
    return problem["prompt"] + problem["canonical_solution"]


def pretrain_documents(n: int, seed: int = 0, per_module: int = 16) -> Iterator[tuple[str, str]]:
    """(path, text) of modules of `per_module` solved training functions each (one file of many functions, as
    real code is, so near-dedup compares modules rather than near-identical one-function files)."""
    problems = build_problems("train", n, seed)
    for start in range(0, n, per_module):
        chunk = problems[start:start + per_module]
        yield f"generated/functions_{start // per_module:05d}.py", "\n\n".join(solution_source(p) for p in chunk)


def write_jsonl_atomic(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write records as JSONL (atomically: several ranks may write it at once); an identical file is left alone."""
    path = Path(path)
    text = "".join(json.dumps(r) + "\n" for r in records)
    if path.exists() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)
    return path
