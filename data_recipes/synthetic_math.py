"""Synthetic arithmetic word problems with several solution paths, for the tiny math default.

Short stories with small numbers and 2-3 steps, written GSM8K-style: each step carries a `<<a+b=c>>` calculator
annotation and the solution ends with `#### <answer>`. Every template has several valid solution paths (the
same quantities combined in a different order, or by different equations, e.g. a*c + b*c or (a+b)*c), and a
problem's gold solution shows ONE of them, drawn from the seed. Across the training set every path is shown
(so the model can write each), but for a given problem sampling can find paths its gold does not show: that is
what rejection sampling (RFT, Yuan et al. 2023) needs to add distinct reasoning paths.

Sizes (why): digits are single tokens of the tiny tokenizer, so the model learns the arithmetic digit by
digit; operands stay small (sums under ~100, products of a single digit and a small number) so that a
2-4M-parameter model learns the facts in minutes on a CPU; solutions are terse (a short lead-in per step) so a
problem costs few tokens and an epoch is cheap.

A problem's identity is its template and numbers (names and objects are decoration): the held-out split takes
a fixed share of that space by hash, so no train problem has the template and numbers of a held-out one, and
a held-out score measures arithmetic on unseen operand combinations, not recall.
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
HELDOUT_SHARE = 0.3  # large enough for >= 2,000 held-out problems, so the 95% interval is about +-2 points

Step = tuple[str, int]  # (expression, value), e.g. ("3*4", 12)
Path_ = list[Step]


@dataclass(frozen=True)
class Template:
    name: str
    ranges: tuple[tuple[int, int], ...]  # inclusive range of each number
    valid: Callable[..., bool]
    question: Callable[..., str]  # (name, other name, item, *numbers) -> question text
    paths: Callable[..., list[Path_]]  # numbers -> every valid solution path (the steps of each)


def _op(a: int, sign: str, b: int) -> Step:
    value = {"+": a + b, "-": a - b, "*": a * b}[sign]
    return f"{a}{sign}{b}", value


def _sum3_paths(a, b, c):
    # Three quantities added: any pair first, then the third.
    return [[_op(x, "+", y), _op(x + y, "+", z)] for x, y, z in ((a, b, c), (a, c, b), (b, c, a))]


def _give2_paths(a, b, c):
    # Two amounts taken away: one after the other (either order), or their total at once.
    return [[_op(a, "-", b), _op(a - b, "-", c)], [_op(a, "-", c), _op(a - c, "-", b)],
            [_op(b, "+", c), _op(a, "-", b + c)]]  # fmt: skip


def _bags_paths(a, b, c):
    # a bags and b bags of c each: a*c + b*c (either product first) or (a+b)*c.
    return [[_op(a, "*", c), _op(b, "*", c), _op(a * c, "+", b * c)],
            [_op(b, "*", c), _op(a, "*", c), _op(b * c, "+", a * c)],
            [_op(a, "+", b), _op(a + b, "*", c)]]  # fmt: skip


def _more_paths(a, b):
    # B has b more than A's a; together: find B first, or double A first.
    return [[_op(a, "+", b), _op(a, "+", a + b)], [_op(a, "*", 2), _op(2 * a, "+", b)],
            [_op(a, "+", a), _op(a + a, "+", b)]]  # fmt: skip


def _lose_find_paths(a, b, c):
    # Lose b, find c: in either order, or the net change first when it is a gain.
    paths = [[_op(a, "-", b), _op(a - b, "+", c)], [_op(a, "+", c), _op(a + c, "-", b)]]
    if c > b:
        paths.append([_op(c, "-", b), _op(a, "+", c - b)])
    return paths


def _rows_paths(a, b, c):
    # a rows of b plus c extra; the product either way round, the extra added either side.
    return [[_op(a, "*", b), _op(a * b, "+", c)], [_op(b, "*", a), _op(a * b, "+", c)],
            [_op(a, "*", b), _op(c, "+", a * b)]]  # fmt: skip


TEMPLATES = [
    Template("sum3", ((2, 20), (2, 9), (2, 9)), lambda a, b, c: True,
             lambda n, m, item, a, b, c: f"{n} has {a} {item}, gets {b} more from {m} and then {c} more. "
                                         f"How many {item} does {n} have?", _sum3_paths),
    Template("give2", ((10, 40), (1, 9), (1, 9)), lambda a, b, c: b + c <= a,
             lambda n, m, item, a, b, c: f"{n} has {a} {item}, gives {b} to {m} and {c} to a friend. "
                                         f"How many {item} are left?", _give2_paths),
    Template("bags", ((2, 6), (2, 6), (2, 9)), lambda a, b, c: True,
             lambda n, m, item, a, b, c: f"{n} buys {a} bags and {m} buys {b} bags. Each bag has {c} {item}. "
                                         f"How many {item} do they buy?", _bags_paths),
    Template("more", ((2, 20), (1, 9)), lambda a, b: True,
             lambda n, m, item, a, b: f"{n} has {a} {item}. {m} has {b} more than {n}. "
                                      f"How many {item} do they have together?", _more_paths),
    Template("lose_find", ((10, 30), (1, 9), (1, 9)), lambda a, b, c: b < a,
             lambda n, m, item, a, b, c: f"{n} has {a} {item}, loses {b} and then finds {c}. "
                                         f"How many {item} does {n} have?", _lose_find_paths),
    Template("rows", ((2, 9), (2, 9), (1, 20)), lambda a, b, c: True,
             lambda n, m, item, a, b, c: f"{n} puts {item} in {a} rows of {b} and has {c} more. "
                                         f"How many {item} are there?", _rows_paths),
]
LEAD = ("First", "Then", "So")  # step i's lead-in ("So" for the last step of three)


def split_of(template: str, numbers: tuple[int, ...]) -> str:
    """train or heldout, fixed by the template and the numbers alone."""
    digest = hashlib.sha256(f"{template}:{numbers}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE else "train"


def step_text(i: int, n_steps: int, step: Step) -> str:
    expr, value = step
    lead = LEAD[min(i, len(LEAD) - 1)] if n_steps == 3 else LEAD[min(i, 1)]
    return f"{lead} {expr} = <<{expr}={value}>>{value}."


def solution_text(path: Path_) -> str:
    """The GSM8K-style solution of one path: a line per step, then `#### <answer>`."""
    lines = [step_text(i, len(path), s) for i, s in enumerate(path)]
    return "\n".join(lines) + f"\n#### {path[-1][1]}"


def distinct_paths(template: Template, numbers: tuple[int, ...]) -> list[Path_]:
    """The template's paths for these numbers, each once (with equal numbers, a*b and b*a are one path)."""
    paths: list[Path_] = []
    for path in template.paths(*numbers):
        if path not in paths:
            paths.append(path)
    return paths


def answer_of(template: Template, numbers: tuple[int, ...]) -> int:
    answers = {p[-1][1] for p in template.paths(*numbers)}
    if len(answers) != 1:  # every path of a template must reach the same answer
        raise AssertionError(f"{template.name}{numbers}: paths disagree: {answers}")
    return answers.pop()


@cache
def key_space(split: str) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Every valid number tuple of every template that belongs to `split` and has at least two distinct paths."""
    return {
        t.name: tuple(nums for nums in itertools.product(*(range(lo, hi + 1) for lo, hi in t.ranges))
                      if t.valid(*nums) and split_of(t.name, nums) == split and len(distinct_paths(t, nums)) > 1)
        for t in TEMPLATES
    }  # fmt: skip


def generate_problems(n: int, seed: int = 0, split: str = "train", with_keys: bool = False) -> list[dict]:
    """`n` distinct problems of `split` ({"question", "answer"}), the same for the same seed.

    Templates are drawn uniformly (numbers without repetition within a template) and each gold solution is one
    of its template's paths, drawn uniformly. with_keys adds "template", "numbers" (the problem's identity)
    and "n_paths" to each record. Asking for more problems than `split` has raises ValueError.
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
        t = by_name[rng.choice([name for name in queues if queues[name]])]
        numbers = queues[t.name].pop()
        name, other = rng.sample(NAMES, 2)
        paths = distinct_paths(t, numbers)
        answer_of(t, numbers)
        record: dict = {"question": t.question(name, other, rng.choice(ITEMS), *numbers),
                        "answer": solution_text(rng.choice(paths))}  # fmt: skip
        if with_keys:
            record.update(template=t.name, numbers=list(numbers), n_paths=len(paths))
        problems.append(record)
    return problems
