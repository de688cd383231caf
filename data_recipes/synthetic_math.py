"""Synthetic arithmetic word problems with GSM8K-style solutions, for the tiny math default.

Short templated stories with small numbers and 1-3 steps; each step's arithmetic carries a `<<a*b=c>>`
calculator annotation and the solution ends with `#### <answer>`. Deterministic from a seed. A problem's
identity is its template and numbers (names and objects are decoration): the held-out split takes a fixed
share of that space by hash, so no train problem has the template and numbers of a held-out one, and a
held-out score measures arithmetic on unseen operand combinations, not recall.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

NAMES = ["Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lea", "Max", "Nia",
         "Omar", "Pia", "Raj", "Sam", "Tess", "Uma"]  # fmt: skip
ITEMS = ["apples", "pens", "books", "cards", "stickers", "marbles", "cookies", "shells", "coins", "eggs",
         "stamps", "beads", "toys", "cups", "rocks", "socks"]  # fmt: skip
SPLITS = ("train", "heldout")
HELDOUT_SHARE = 0.2


@dataclass(frozen=True)
class Template:
    name: str
    ranges: tuple[tuple[int, int], ...]  # inclusive range of each number
    valid: Callable[..., bool]
    render: Callable[..., tuple[str, list[tuple[str, str, int]], int]]  # -> question, steps, answer


def _step(expr: str, value: int, sentence: str) -> tuple[str, str, int]:
    return expr, sentence, value


def _add(n, item, a, b):
    q = f"{n} has {a} {item}. {n} gets {b} more {item}. How many {item} does {n} have now?"
    return q, [_step(f"{a}+{b}", a + b, f"{n} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item} now.")], a + b


def _sub(n, item, a, b):
    q = f"{n} has {a} {item} and gives away {b} of them. How many {item} does {n} have left?"
    return q, [_step(f"{a}-{b}", a - b, f"{n} has {a} - {b} = <<{a}-{b}={a - b}>>{a - b} {item} left.")], a - b


def _mul(n, item, a, b):
    q = f"{n} buys {a} bags with {b} {item} in each bag. How many {item} does {n} buy?"
    return q, [_step(f"{a}*{b}", a * b, f"{n} buys {a} * {b} = <<{a}*{b}={a * b}>>{a * b} {item}.")], a * b


def _div(n, item, a, b):
    total = a * b
    q = f"{n} shares {total} {item} equally among {a} friends. How many {item} does each friend get?"
    return q, [_step(f"{total}/{a}", b, f"Each friend gets {total} / {a} = <<{total}/{a}={b}>>{b} {item}.")], b


def _add_mul(n, item, a, b, c):
    bc = b * c
    q = f"{n} has {a} {item}. {n} buys {b} boxes with {c} {item} in each box. How many {item} does {n} have now?"
    steps = [
        _step(f"{b}*{c}", bc, f"The boxes hold {b} * {c} = <<{b}*{c}={bc}>>{bc} {item}."),
        _step(f"{a}+{bc}", a + bc, f"{n} has {a} + {bc} = <<{a}+{bc}={a + bc}>>{a + bc} {item} now."),
    ]
    return q, steps, a + bc


def _change(n, item, a, b, c):
    cost = a * b
    q = f"One of the {item} costs ${a}. {n} buys {b} of them and pays with ${c}. How much change does {n} get?"
    steps = [
        _step(f"{a}*{b}", cost, f"The {item} cost {a} * {b} = $<<{a}*{b}={cost}>>{cost}."),
        _step(f"{c}-{cost}", c - cost, f"{n} gets {c} - {cost} = $<<{c}-{cost}={c - cost}>>{c - cost} in change."),
    ]
    return q, steps, c - cost


def _sub_add(n, item, a, b, c):
    left = a - b
    q = f"{n} had {a} {item}, lost {b} of them and then found {c} more. How many {item} does {n} have?"
    steps = [
        _step(f"{a}-{b}", left, f"After losing some, {n} has {a} - {b} = <<{a}-{b}={left}>>{left} {item}."),
        _step(f"{left}+{c}", left + c, f"Then {n} has {left} + {c} = <<{left}+{c}={left + c}>>{left + c} {item}."),
    ]
    return q, steps, left + c


def _wage(n, item, a, b, c, d):
    day, total = a * b, a * b * c
    q = (f"{n} earns ${a} an hour and works {b} hours a day for {c} days. {n} spends ${d} on {item}. "
         f"How much money does {n} have left?")  # fmt: skip
    steps = [
        _step(f"{a}*{b}", day, f"{n} earns {a} * {b} = $<<{a}*{b}={day}>>{day} a day."),
        _step(f"{day}*{c}", total, f"In {c} days that is {day} * {c} = $<<{day}*{c}={total}>>{total}."),
        _step(f"{total}-{d}", total - d, f"{n} has {total} - {d} = $<<{total}-{d}={total - d}>>{total - d} left."),
    ]
    return q, steps, total - d


def _double_sub(n, item, a, b):
    twice = 2 * a
    q = f"{n} has {a} {item}. {n}'s friend has twice as many but gives {b} away. How many {item} does the friend have?"
    steps = [
        _step(f"2*{a}", twice, f"The friend has 2 * {a} = <<2*{a}={twice}>>{twice} {item}."),
        _step(f"{twice}-{b}", twice - b, f"After giving some away: {twice} - {b} = <<{twice}-{b}={twice - b}>>{twice - b} {item}."),
    ]  # fmt: skip
    return q, steps, twice - b


TEMPLATES = [
    Template("add", ((2, 40), (2, 40)), lambda a, b: True, _add),
    Template("sub", ((5, 50), (1, 40)), lambda a, b: b < a, _sub),
    Template("mul", ((2, 9), (2, 9)), lambda a, b: True, _mul),
    Template("div", ((2, 9), (2, 9)), lambda a, b: True, _div),
    Template("add_mul", ((1, 20), (2, 6), (2, 6)), lambda a, b, c: True, _add_mul),
    Template("change", ((1, 9), (2, 5), (10, 50)), lambda a, b, c: a * b <= c, _change),
    Template("sub_add", ((5, 30), (1, 20), (1, 20)), lambda a, b, c: b < a, _sub_add),
    Template("wage", ((2, 9), (2, 5), (2, 5), (1, 30)), lambda a, b, c, d: d < a * b * c, _wage),
    Template("double_sub", ((2, 25), (1, 20)), lambda a, b: b < 2 * a, _double_sub),
]


def split_of(template: str, numbers: tuple[int, ...]) -> str:
    """train or heldout, fixed by the template and the numbers alone."""
    digest = hashlib.sha256(f"{template}:{numbers}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE else "train"


def solution_text(steps: list[tuple[str, str, int]], answer: int) -> str:
    return "\n".join(sentence for _, sentence, _ in steps) + f"\n#### {answer}"


@cache
def key_space(split: str) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Every valid number tuple of every template that belongs to `split` (about 17k in all)."""
    return {
        t.name: tuple(nums for nums in itertools.product(*(range(lo, hi + 1) for lo, hi in t.ranges))
                      if t.valid(*nums) and split_of(t.name, nums) == split)
        for t in TEMPLATES
    }  # fmt: skip


def generate_problems(n: int, seed: int = 0, split: str = "train", with_keys: bool = False) -> list[dict]:
    """`n` distinct problems of `split` ({"question", "answer"}), the same for the same seed.

    Templates are drawn uniformly (numbers without repetition within a template), so short one-step and
    three-step problems are equally common. with_keys adds "template" and "numbers" (the problem's
    identity) to each record. Asking for more problems than `split` has raises ValueError.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    space = key_space(split)
    available = sum(len(v) for v in space.values())
    if n > available:
        raise ValueError(f"{split} has {available} distinct problems; {n} requested")
    rng = random.Random(f"synthetic-math-{seed}-{split}")
    queues = {}
    for t in TEMPLATES:
        keys = list(space[t.name])
        rng.shuffle(keys)
        queues[t.name] = keys
    by_name = {t.name: t for t in TEMPLATES}
    problems: list[dict] = []
    while len(problems) < n:
        name = rng.choice([t for t in queues if queues[t]])
        numbers = queues[name].pop()
        question, steps, answer = by_name[name].render(rng.choice(NAMES), rng.choice(ITEMS), *numbers)
        record: dict = {"question": question, "answer": solution_text(steps, answer)}
        if with_keys:
            record.update(template=name, numbers=list(numbers))
        problems.append(record)
    return problems
