"""A small HumanEval-format problem set built from local code, for the tiny in-training evaluation.

It is NOT a benchmark: with no evaluation data on the machine (no network, no /work/shared/data) the tiny
runs still need problems to exercise the whole in-training evaluation path (generate -> sandboxed execution
-> pass@1). Each problem is a short Python function from a few templates with seeded constants: the prompt
is its signature and docstring, the tests are asserts whose expected values come from running the
canonical solution here, at build time. Records have HumanEval's fields (task_id, prompt, entry_point,
canonical_solution, test with `check(candidate)`), so `eval.code` scores them like HumanEval.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

TASK_PREFIX = "LocalFn"

# (name, signature, docstring with {k}, body with {k}, argument tuples for the tests)
Template = tuple[str, str, str, str, Callable[[random.Random], list[tuple]]]


def _ints(rng: random.Random) -> list[tuple]:
    return [(rng.randint(-50, 50),) for _ in range(5)]


def _int_lists(rng: random.Random) -> list[tuple]:
    return [([rng.randint(-20, 20) for _ in range(rng.randint(0, 7))],) for _ in range(5)]


def _words(rng: random.Random) -> list[tuple]:
    vocab = ["alpha", "beta", "code", "qwen", "data", "tree", "loop", "byte", "list", "word"]
    return [(" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 5))),) for _ in range(5)]


TEMPLATES: list[Template] = [
    ("add_constant", "x: int", "Return x plus {k}.", "return x + {k}", _ints),
    ("scale_all", "xs: list", "Return a new list with every element of xs multiplied by {k}.",
     "return [x * {k} for x in xs]", _int_lists),
    ("count_above", "xs: list", "Return how many elements of xs are greater than {k}.",
     "return sum(1 for x in xs if x > {k})", _int_lists),
    ("sum_of_multiples", "xs: list", "Return the sum of the elements of xs that are divisible by {m}.",
     "return sum(x for x in xs if x % {m} == 0)", _int_lists),
    ("is_multiple", "x: int", "Return True when x is divisible by {m}, else False.",
     "return x % {m} == 0", _ints),
    ("clamp_value", "x: int", "Return x limited to the range [-{k}, {k}].",
     "return max(-{k}, min({k}, x))", _ints),
    ("repeat_words", "s: str", "Return s repeated {m} times, separated by single spaces.",
     "return ' '.join([s] * {m})", _words),
    ("longest_word_length", "s: str", "Return the length of the longest space-separated word of s (0 if none).",
     "return max((len(w) for w in s.split()), default=0)", _words),
    ("reverse_word_order", "s: str", "Return the words of s in reverse order, joined by single spaces.",
     "return ' '.join(reversed(s.split()))", _words),
    ("drop_first", "xs: list", "Return xs without its first {m} elements.", "return xs[{m}:]", _int_lists),
]


def _render(name: str, sig: str, doc: str, body: str, examples: list[tuple[tuple, Any]]) -> tuple[str, str]:
    shown = "".join(f"    >>> {name}({', '.join(map(repr, a))})\n    {r!r}\n" for a, r in examples)
    prompt = f'def {name}({sig}):\n    """{doc}\n{shown}    """\n'
    return prompt, f"    {body}\n"


def build_problems(n: int = 20, seed: int = 0) -> list[dict[str, Any]]:
    """`n` problems (templates in turn, constants drawn from `seed`); deterministic."""
    rng = random.Random(seed)
    problems = []
    for i in range(n):
        base, sig, doc, body, args_of = TEMPLATES[i % len(TEMPLATES)]
        k, m = rng.randint(2, 9), rng.randint(2, 5)
        name = f"{base}_{i}"
        doc, body = doc.format(k=k, m=m), body.format(k=k, m=m)
        namespace: dict[str, Any] = {}
        exec(f"def {name}({sig}):\n    {body}\n", namespace)  # our own generated source, not model output
        cases = [(a, namespace[name](*a)) for a in args_of(rng)]
        prompt, solution = _render(name, sig, doc, body, cases[:2])
        asserts = "".join(f"    assert candidate({', '.join(map(repr, a))}) == {r!r}\n" for a, r in cases)
        problems.append({"task_id": f"{TASK_PREFIX}/{i}", "prompt": prompt, "entry_point": name,
                         "canonical_solution": solution, "test": f"def check(candidate):\n{asserts}"})
    return problems


def write_problems(path: str | Path, n: int = 20, seed: int = 0) -> Path:
    """Write the set as JSONL (atomically); an existing identical file is left alone."""
    path = Path(path)
    text = "".join(json.dumps(p) + "\n" for p in build_problems(n, seed))
    if path.exists() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")  # several ranks may write it at once
    tmp.write_text(text)
    tmp.replace(path)
    return path
