"""`grade(response, gold)`: whole model responses against a gold answer or solution.

The response's final answer is found by eval/math/final_answer.py (rules in order of trust, the rule recorded),
the gold's by its box, `#### n` line or closing sentence; then the two are compared by eval.math.grader's
equivalence, with what only whole answers need: a `lhs = value` statement compared by its value, and lists
of answers compared in order when they answer ordered sub-questions.
"""

from __future__ import annotations

import logging
import re
import time

from eval.math.extract import Extraction
from eval.math.final_answer import boxes, extract_final_answer
from eval.math.grader import _CALL, CALL_BUDGET_S, _flatten, is_equiv, parse_number, shapes_equal
from eval.math.normalize import normalize_answer
from eval.math.structure import Shape, parse_shape, split_top_level

log = logging.getLogger(__name__)

_HASHES_GOLD = re.compile(r"####\s*(.+)")
# Questions that ask for every solution: their answers are a set, whatever order the gold lists them in.
_ALL_SOLUTIONS = re.compile(r"\ball\b|\bevery\b|separated by commas|solutions|roots|in any order", re.IGNORECASE)


def gold_final_answer(gold: str) -> str:
    """The gold's final answer: a bare answer as given; a solution's boxed answer (several boxes joined when
    only separators stand between them: `\\boxed{1} and \\boxed{-2}`), its `#### n` line, or else what the
    response rules find in its closing sentences."""
    found = boxes(gold)
    if found:
        joined = [found[-1]]
        for earlier in reversed(found[:-1]):
            between = gold[earlier[0] : joined[0][0]]
            between = between[between.find(earlier[1]) + len(earlier[1]) :] if earlier[1] in between else between
            if not re.fullmatch(r"[\s$,;.}\\()]*(?:and|or|\\text\{\s*and\s*\})?[\s$,;.\\()]*", between):
                break
            joined.insert(0, earlier)
        return ", ".join(content for _, content in joined)
    hashes = _HASHES_GOLD.findall(gold)
    if hashes:
        return hashes[-1].strip()
    if len(gold) > 200 and (prose := extract_final_answer(gold).answer):
        return prose  # a worked solution without a box
    return gold.strip()


def _gold_parts(gold: str) -> tuple[Shape, ...]:
    shape = parse_shape(normalize_answer(gold))
    return tuple(_flatten(shape.items)) if shape.kind in ("list", "set") else (shape,)


def _is_ordered(parts: tuple[Shape, ...], problem: str | None) -> bool:
    """Several numbers listed out of sorted order answer ordered sub-questions ("T(10), T(11), T(12)": 2, 4, 3);
    a sorted list, or any list for a question that asks for all solutions, is a set of answers."""
    if len(parts) < 2 or (problem is not None and _ALL_SOLUTIONS.search(problem)):
        return False
    values = [parse_number(p.text) if p.kind == "scalar" else None for p in parts]
    if any(v is None for v in values):
        return False
    return values != sorted(values) and values != sorted(values, reverse=True)  # type: ignore[type-var]


def _value_side(prediction: str) -> str:
    """`\\frac{28}{4}=7` -> `7`, `(b,c)=(6,5)` -> `(6,5)`, `x=1/3\\approx0.33` -> `1/3`: a response's
    `lhs = value` states the value, whatever the lhs."""
    text = normalize_answer(prediction)
    if "\\approx" in text:
        exact, approx = text.split("\\approx", 1)
        text = exact if "=" in exact else approx
    parts = split_top_level(text, "=")
    return parts[-1] if len(parts) > 1 and parts[-1] else text


def answers_match(prediction: str, gold: str, problem: str | None = None) -> bool:
    """Is an extracted final answer (or several, comma-joined) the gold answer? Order counts for ordered
    sub-questions (see _is_ordered); a `lhs = value` prediction is compared by its value against a gold
    that is not itself an equation (and both ways against one that is: `(f(n), g(n)) = (n, 1)`)."""
    candidates = [prediction]
    if "=" in prediction:
        values = ", ".join(_value_side(p) for p in split_top_level(prediction, ","))
        if values != prediction:
            candidates = [values] if "=" not in normalize_answer(gold) else [prediction, values]
    gold_parts = _gold_parts(gold)
    ordered = _is_ordered(gold_parts, problem)
    return any(_match(candidate, gold, gold_parts, ordered) for candidate in candidates)


def _match(prediction: str, gold: str, gold_parts: tuple[Shape, ...], ordered: bool) -> bool:
    if not ordered:
        return is_equiv(prediction, gold)
    predicted = _gold_parts(prediction)
    return len(predicted) == len(gold_parts) and all(map(shapes_equal, predicted, gold_parts))


def grade_response(response: str, gold: str, problem: str | None = None) -> tuple[bool, Extraction]:
    """(verdict, extraction): the response's final answer found by eval.math.final_answer, then compared,
    all within one CALL_BUDGET_S of sympy time."""
    _CALL.deadline = time.monotonic() + CALL_BUDGET_S
    try:
        gold = gold_final_answer(str(gold))
        n_parts = len(_gold_parts(gold))
        extraction = extract_final_answer(str(response), n_parts)
        if extraction.answer is None:
            return False, extraction
        return answers_match(extraction.answer, gold, problem), extraction
    except Exception:  # a grader bug must cost one sample, never the run
        log.exception("grade failed on %r vs %r", str(response)[-80:], str(gold)[:80])
        return False, Extraction(None, "error")
    finally:
        _CALL.deadline = None


def grade(response: str, gold: str, problem: str | None = None) -> bool:
    """True when a whole model response (or a bare final answer) ends with the gold answer. `gold` is a bare
    answer or a solution whose final answer is boxed; `problem`, when given, tells whether a list of answers
    is a set ("find all ...") or ordered. Never raises; bounded time; safe from threads and processes."""
    return grade_response(response, gold, problem)[0]
