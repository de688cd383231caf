"""`is_equiv(prediction, gold)`: are two final answers (LaTeX allowed) the same answer? Never raises.

Cheapest evidence first: equal strings, equal normalised strings, then shape-aware comparison (tuples,
intervals, sets, matrices, lists of answers), where each scalar pair is tried as exact rational numbers,
then as words, and only then with sympy in a worker process that is killed at a hard deadline
(eval/math/sympy_worker.py). Most answers never reach sympy.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from fractions import Fraction

from eval.math.normalize import MAX_ANSWER_CHARS, normalize_answer
from eval.math.structure import Shape, parse_shape, split_top_level
from eval.math.sympy_worker import CALL_DEADLINE_S, TRANSIENT_ERRORS, shared_worker

log = logging.getLogger(__name__)

NUMERIC_REL_TOL = 1e-8  # decimals that are the exact value to 8 digits; integers compare exactly
CALL_BUDGET_S = 4.0  # one is_equiv call, all its sympy work together (a list compares many items)
MAX_SYMPY_CHARS = 600  # longer scalars are compared as strings only: no real answer is that long
_INT = r"[-+]?\d{1,400}"
_DECIMAL = re.compile(r"[-+]?(?:\d{1,400}(?:\.\d{0,400})?|\.\d{1,400})")
_FRACTION = re.compile(rf"({_INT})/({_INT})")
_LATEX_FRACTION = re.compile(rf"(-?)\\frac\{{({_INT})\}}\{{({_INT})\}}")
_WORDS = re.compile(r"[A-Za-z][A-Za-z ]*")
_SYMBOLIC_HINT = re.compile(r"[a-zA-Z\\^_]")
# Literal exponents no answer needs (1e999999999, 10^{1234567}): sympy would spend its whole deadline on them.
_HUGE_EXPONENT = re.compile(r"\d[eE][-+]?\d{4,}|\^\s*\{?\s*\d{7,}")


def parse_number(text: str) -> Fraction | None:
    """Exact value of a plain number: `-12`, `0.25`, `3/4`, `\\frac{3}{4}`, `-\\frac{3}{4}`; else None."""
    try:
        if _DECIMAL.fullmatch(text):
            return Fraction(text)
        m = _FRACTION.fullmatch(text)
        if m:
            return Fraction(int(m.group(1)), int(m.group(2)))
        m = _LATEX_FRACTION.fullmatch(text)
        if m:
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return -value if m.group(1) else value
    except (ValueError, ZeroDivisionError):
        return None
    return None


def numbers_close(a: Fraction, b: Fraction) -> bool:
    if a == b:
        return True
    if a.denominator == 1 and b.denominator == 1:
        return False  # counts and integer answers: off by one is wrong however large they are
    return abs(a - b) <= Fraction(NUMERIC_REL_TOL) * max(abs(a), abs(b))


class _SympyCache:
    """Verdicts of the sympy worker by (kind, a, b); only verdicts reached with the full deadline are kept."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._verdicts: dict[tuple[str, str, str], bool] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> bool | None:
        return self._verdicts.get(key)

    def put(self, key: tuple[str, str, str], verdict: bool) -> None:
        with self._lock:
            if len(self._verdicts) >= self.max_entries:
                self._verdicts.clear()
            self._verdicts[key] = verdict

    def clear(self) -> None:
        with self._lock:
            self._verdicts.clear()


SYMPY_CACHE = _SympyCache()
_CALL = threading.local()  # the running is_equiv call's deadline, per thread


def _remaining_s() -> float:
    deadline = getattr(_CALL, "deadline", None)
    return CALL_BUDGET_S if deadline is None else deadline - time.monotonic()


def _sympy_equal(kind: str, a: str, b: str) -> bool:
    key = (kind, a, b)
    cached = SYMPY_CACHE.get(key)
    if cached is not None:
        return cached
    remaining = _remaining_s()
    if remaining < 0.05:
        return False  # this call's budget is spent (a long list of symbolic items)
    deadline = min(CALL_DEADLINE_S, remaining)
    equal, error = shared_worker().compare(kind, a, b, deadline_s=deadline)
    if error:
        log.debug("sympy gave up on %r vs %r: %s", a[:80], b[:80], error)
    if error not in TRANSIENT_ERRORS and (error is None or deadline >= CALL_DEADLINE_S):
        SYMPY_CACHE.put(key, equal)  # a timeout is a verdict only when it had the full deadline
    return equal


def scalars_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    if not a or not b:
        return False
    na, nb = parse_number(a), parse_number(b)
    if na is not None and nb is not None:
        return numbers_close(na, nb)
    if _WORDS.fullmatch(a) and _WORDS.fullmatch(b) and (len(a) > 1 or len(b) > 1):
        return a.lower() == b.lower()  # text answers ("even", "Monday"); single letters stay symbols
    if not (_SYMBOLIC_HINT.search(a) or _SYMBOLIC_HINT.search(b)):
        if na is None and nb is None and "/" not in a + b and "!" not in a + b:
            return False  # two differing strings without symbols or arithmetic to evaluate
    if len(a) > MAX_SYMPY_CHARS or len(b) > MAX_SYMPY_CHARS or _HUGE_EXPONENT.search(a + " " + b):
        return False
    if a.count("=") == 1 and b.count("=") == 1:
        return _sympy_equal("equation", a, b)
    if "=" in a or "=" in b or any(op in a + b for op in ("<", ">", "\\leq", "\\geq", "\\neq")):
        return False  # relations are equal only when they normalise to the same string
    return _sympy_equal("expression", a, b)


def _flatten(items: tuple[Shape, ...]) -> list[Shape]:
    out: list[Shape] = []
    for item in items:
        out.extend(_flatten(item.items) if item.kind == "list" else [item])
    return out


def _unordered_equal(a: list[Shape], b: list[Shape]) -> bool:
    if len(a) != len(b):
        return False
    # Pair identical items first (no sympy), then match what is left by equivalence.
    unused = list(b)
    leftover = []
    for item in a:
        if item in unused:
            unused.remove(item)
        else:
            leftover.append(item)
    a = leftover
    for item in a:
        match = next((j for j, other in enumerate(unused) if shapes_equal(item, other)), None)
        if match is None:
            return False
        unused.pop(match)
    return True


def _vector_equals_tuple(matrix: Shape, other: Shape) -> bool:
    """A one-column (or one-row) matrix is the vector `(1, 7)` written as a tuple; a 2-D matrix never is."""
    if other.kind != "tuple" or other.brackets != "()":
        return False
    if all(len(row) == 1 for row in matrix.rows):
        entries = [row[0] for row in matrix.rows]
    elif len(matrix.rows) == 1:
        entries = list(matrix.rows[0])
    else:
        return False
    return len(entries) == len(other.items) and all(map(shapes_equal, entries, other.items))


def shapes_equal(a: Shape, b: Shape) -> bool:
    if a.kind == "scalar" and b.kind == "scalar":
        return scalars_equal(a.text, b.text)
    if a.kind == "matrix" or b.kind == "matrix":
        if a.kind != b.kind:
            return _vector_equals_tuple(a if a.kind == "matrix" else b, b if a.kind == "matrix" else a)
        if len(a.rows) != len(b.rows):
            return False
        return all(
            len(ra) == len(rb) and all(map(shapes_equal, ra, rb)) for ra, rb in zip(a.rows, b.rows, strict=True)
        )
    if a.kind == "tuple" and b.kind == "tuple":
        return a.brackets == b.brackets and len(a.items) == len(b.items) and all(map(shapes_equal, a.items, b.items))
    if {a.kind, b.kind} == {"tuple", "list"}:
        # "1, 2" for the ordered pair "(1, 2)"; never for an interval with a closed end
        tup, lst = (a, b) if a.kind == "tuple" else (b, a)
        return tup.brackets == "()" and len(tup.items) == len(lst.items) and all(map(shapes_equal, tup.items, lst.items))
    unordered = {"set", "list", "union"}
    if a.kind in unordered and b.kind in unordered:
        if "union" in (a.kind, b.kind) and a.kind != b.kind:
            # "x < -3 or x > 3" is the union (-oo,-3) U (3,oo); a list of numbers never is
            other = b if a.kind == "union" else a
            if not all(item.kind == "tuple" for item in other.items):
                return False
        return _unordered_equal(_flatten(a.items), _flatten(b.items))
    return False


_NAME = r"\\?[A-Za-z]+(?:_\{?\w+\}?)?"
# The left side of `label = value` that names the quantity asked for: a name or function value (`V_1`,
# `E(2020, 1993)`, `\\sin\\theta`), a tuple or ratio of names (`(p,q)`, `V_1:V_2`, `\\frac{NO}{BO}`), an absolute
# value (`|r-s|`).
_LABEL = re.compile(rf"{_NAME}(?:\([^()=]*\))?|\\[a-z]+\s*{_NAME}|\((?:{_NAME},)+{_NAME}\)|{_NAME}(?::{_NAME})+"
                    rf"|\|[^|=]+\||\\frac\{{[A-Za-z]+\}}\{{[A-Za-z]+\}}")


def _constant(text: str) -> bool:
    return bool(text) and not re.search(r"[A-Za-z]", re.sub(r"\\[a-zA-Z]+", "", text))


def strip_label(text: str) -> str:
    """The value a normalised `label = value` states: `V_1:V_2=11:21` -> `11:21`, `\\frac{28}{4}=7` -> `7`,
    `x=5+5=10` -> `10` (a chain of equalities ends in its value), `x=1/3\\approx0.33` -> `1/3` (the exact
    value before an approximation), `x\\approx11` -> `11`. An equation between expressions (`7=11a+c`,
    `x^2+y^2=13`) stays whole."""
    if "\\approx" in text:
        exact, approx = text.split("\\approx", 1)
        text = exact if "=" in exact else approx
    parts = split_top_level(text, "=")
    if len(parts) < 2 or not parts[-1]:
        return text
    lhs, value = parts[0].strip(), parts[-1]
    if len(parts) > 2 or _LABEL.fullmatch(lhs) or (_constant(lhs) and _constant(value)):
        return value
    return text


_FUNCTION_OF = re.compile(r"([A-Za-z])\(([a-z])\)=")


def _rename_argument(a: str, b: str, value: str) -> str:
    """`f(n)=n` against `f(z)=z`: the same function, its argument named differently; rename a's to b's."""
    ma, mb = _FUNCTION_OF.match(a), _FUNCTION_OF.match(b)
    if not (ma and mb) or ma.group(1) != mb.group(1) or ma.group(2) == mb.group(2):
        return value
    if re.search(rf"(?<![A-Za-z\\]){mb.group(2)}(?![A-Za-z])", value):
        return value  # b's name is already used in a's value: renaming would merge two symbols
    return re.sub(rf"(?<![A-Za-z\\]){ma.group(2)}(?![A-Za-z])", mb.group(2), value)


def _percent_equal(prediction: str, gold: str, a: str, b: str) -> bool:
    """`62.5\\%` is the fraction 0.625 as well as the number 62.5 (normalisation keeps 62.5)."""
    if ("%" in prediction) == ("%" in gold):
        return False
    na, nb = parse_number(a), parse_number(b)
    if na is None or nb is None:
        return False
    return numbers_close(na / 100, nb) if "%" in prediction else numbers_close(na, nb / 100)


def is_equiv(prediction: str | None, gold: str | None) -> bool:
    """True when prediction and gold are the same final answer. Never raises; bounded time on any input."""
    outer = getattr(_CALL, "deadline", None)  # inside grade(): its budget covers every comparison it makes
    _CALL.deadline = outer if outer is not None else time.monotonic() + CALL_BUDGET_S
    try:
        if prediction is None or gold is None:
            return False
        prediction, gold = str(prediction), str(gold)
        if prediction.strip() == gold.strip():
            return bool(gold.strip())
        if max(len(prediction), len(gold)) > MAX_ANSWER_CHARS:
            return False  # runaway output: only an exact match (above) counts
        a, b = normalize_answer(prediction), normalize_answer(gold)
        if a == b:
            return bool(a)
        if _percent_equal(prediction, gold, a, b):
            return True
        la, lb = strip_label(a), strip_label(b)
        la = _rename_argument(a, b, la)
        if (la, lb) != (a, b) and shapes_equal(parse_shape(la), parse_shape(lb)):
            return True
        if a.count("=") == 1 and b.count("=") == 1 and _sympy_equal("equation", a, b):
            return True  # `y = -x/2 + 3/4` is the line `2x + 4y - 3 = 0`
        return shapes_equal(parse_shape(a), parse_shape(b))
    except Exception:  # a grader bug must cost one sample, never the run
        log.exception("is_equiv failed on %r vs %r", str(prediction)[:80], str(gold)[:80])
        return False
    finally:
        _CALL.deadline = outer


def grade(response: str, gold: str, problem: str | None = None) -> bool:
    """A whole model response (or a bare final answer) against a gold answer or solution: eval/math/response.py.
    Never raises; bounded time; safe from threads and processes."""
    from eval.math.response import grade as grade_response_text  # response.py builds on this module

    return grade_response_text(response, gold, problem)
