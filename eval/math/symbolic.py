"""Symbolic comparison with sympy: LaTeX (already normalised) -> sympy, then equal-by-value checks.

Runs inside the grader's worker process only (see eval/math/sympy_worker.py), where a per-call alarm and
the parent's kill bound the time: nothing here protects itself against huge exponents.
"""

from __future__ import annotations

import cmath
import random
import re

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

_TRANSFORMS = standard_transformations + (implicit_multiplication_application, convert_xor)
_LOCALS = {"i": sympy.I, "e": sympy.E, "E": sympy.E, "pi": sympy.pi, "oo": sympy.oo}
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi rho sigma tau upsilon "
          "phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi Psi Omega").split()
_FUNCTIONS = ("sin cos tan sec csc cot arcsin arccos arctan sinh cosh tanh log ln exp").split()
_SIMPLE = {r"\cdot": "*", r"\times": "*", r"\div": "/", r"\infty": " oo ", r"\pi": " pi ", r"\ln": "log",
           r"\exp": "exp", r"\lvert": "|", r"\rvert": "|", r"\vert": "|", r"\mid": "|", r"\emptyset": "EmptySet"}
_SYMPY_NAME = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "ln": "log"}
_BRACKETS = {r"\lfloor": " floor(", r"\rfloor": ")", r"\lceil": " ceiling(", r"\rceil": ")"}
_SAFE_SOURCE = re.compile(r"[A-Za-z0-9_+\-*/().,!| ]*")
_REL_TOL = 1e-9  # when a decimal literal is involved
_EXACT_REL_TOL = 1e-30  # exact expressions, evaluated to _DIGITS digits
_DIGITS = 50
_POINTS = 5  # for the ratio of two equations
_POOL = [sympy.Integer(n) for n in (1, 2, 3, 4, 5, 6, 7, 10, 12, 17, 26, 50, 101, -1, -3, -8)] + [
    sympy.Rational(n, d) for n, d in ((13, 100), (1, 2), (137, 100), (271, 100), (7, 2), (25, 4), (99, 10),
                                     (153, 10), (333, 10), (777, 10), (-2, 5), (-3, 2), (-72, 10))]
_MIN_AGREEING = 12


# `\\sin 2x`, `\\sin^2 x`, `\\cos\\theta`: a function applied to one bare term, which the parser would
# otherwise stretch over the rest of the product (`2\\sin x\\cos x` must not become sin(x*cos(x))).
_FUNCTION_ARGUMENT = re.compile(
    r"\\(" + "|".join(_FUNCTIONS) + r")(?![a-zA-Z])\s*(?:\^\s*\{?(\d+)\}?)?\s*(\d*(?:\\(?:pi|theta|alpha|beta|gamma|phi)(?![a-zA-Z])|[a-zA-Z])+|\d+)"
)


def _wrap_function_argument(m: re.Match[str]) -> str:
    name, power, argument = m.group(1), m.group(2), m.group(3)
    applied = f" {_SYMPY_NAME.get(name, name)}({argument}) "
    return f"({applied})**{power}" if power else applied


class NotParsable(ValueError):
    pass


def _replace_two_arg(text: str, command: str, template: str) -> str:
    """`\\frac{a}{b}` -> template.format(a, b), innermost first, braces matched."""
    from eval.math.extract import matching_brace

    for _ in range(200):
        pos = text.rfind(command + "{")
        if pos == -1:
            return text
        a_open = pos + len(command)
        a_close = matching_brace(text, a_open)
        if a_close == -1 or a_close + 1 >= len(text) or text[a_close + 1] != "{":
            raise NotParsable(f"{command} without two braced arguments")
        b_close = matching_brace(text, a_close + 1)
        if b_close == -1:
            raise NotParsable(f"unbalanced {command}")
        a, b = text[a_open + 1 : a_close], text[a_close + 2 : b_close]
        text = text[:pos] + template.format(a, b) + text[b_close + 1 :]
    raise NotParsable("too deeply nested")


def _replace_sqrt(text: str) -> str:
    text = re.sub(r"\\sqrt\[([^\[\]]+)\]\{", r"\\root{\1}{", text)
    text = _replace_two_arg(text, "\\root", "(({1})**(1/({0})))")
    return text.replace("\\sqrt{", " sqrt{")


def _absolute_values(text: str) -> str:
    """`|x-1|` -> `Abs(x-1)`: bars alternate open/close."""
    out, opened = [], False
    for ch in text:
        if ch == "|":
            out.append(")" if opened else "Abs(")
            opened = not opened
        else:
            out.append(ch)
    if opened:
        raise NotParsable("unbalanced |")
    return "".join(out)


def latex_to_source(text: str) -> str:
    """Normalised LaTeX -> sympy parser source; raises NotParsable for anything outside the subset."""
    text = re.sub(r"\\log_\{([^{}]+)\}\s*\{?([^{}]+)\}?|\\log_(\w)\s*\{?([^{}]+)\}?",
                  lambda m: f" log({m.group(2) or m.group(4)},{m.group(1) or m.group(3)})", text)
    text = _replace_two_arg(text, "\\frac", "(({0})/({1}))")
    text = _replace_two_arg(text, "\\binom", " binomial({0},{1})")
    text = _replace_sqrt(text)
    text = re.sub(r"\\(sin|cos|tan)\^\{?-1\}?", r"\\arc\1", text)  # \\sin^{-1} is arcsin
    for latex, source in _BRACKETS.items():
        text = text.replace(latex, source)
    text = _FUNCTION_ARGUMENT.sub(_wrap_function_argument, text)
    for latex, source in _SIMPLE.items():
        text = text.replace(latex, source)
    text = re.sub(r"\\(" + "|".join(_GREEK + _FUNCTIONS) + r")(?![a-zA-Z])",
                  lambda m: f" {_SYMPY_NAME.get(m.group(1), m.group(1))} ", text)
    text = re.sub(r"\\operatorname\{(\w+)\}", r" \1 ", text)
    if "\\" in text:
        raise NotParsable(f"unsupported LaTeX in {text[:60]!r}")
    text = text.replace("{", "(").replace("}", ")").replace("[", "(").replace("]", ")")
    text = re.sub(r"_\(([a-zA-Z0-9]+)\)", r"_\1", text)
    text = _absolute_values(text).replace("^", "**")
    text = re.sub(r"(\d)\s*\(", r"\1*(", text)
    text = re.sub(r"(?<![A-Za-z_])([a-zA-Z])\s*\(", r"\1*(", text)  # "k(d-k)" is a product: no one-letter functions
    if not _SAFE_SOURCE.fullmatch(text) or "__" in text:
        raise NotParsable(f"unsafe characters in {text[:60]!r}")
    return text


def to_sympy(text: str) -> sympy.Expr:
    source = latex_to_source(text)
    try:
        expr = parse_expr(source, transformations=_TRANSFORMS, local_dict=dict(_LOCALS))
    except Exception as exc:  # sympy's parser raises anything from SyntaxError to TypeError
        raise NotParsable(str(exc)) from exc
    if not isinstance(expr, sympy.Basic):
        raise NotParsable(f"not an expression: {source!r}")
    return expr


def _numeric(expr: sympy.Expr) -> complex | None:
    """The value as a Python complex, or None when it is undefined or beyond float range (see _close_exact)."""
    try:
        value = complex(expr.evalf(30))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not cmath.isfinite(value):
        return None  # NaN, or too large for a float: inf - inf would compare as "close"
    return value


def _close(x: complex, y: complex) -> bool:
    return abs(x - y) <= _REL_TOL * max(1.0, abs(x), abs(y))


def _values_close(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    """Whether two constant expressions have the same value; None when either is undefined.

    Evaluated to 50 digits: exact expressions must agree to 30 digits relative (so (x+1)^{10000} is not
    "close" to ((x+1)^{200}-1)^{50} at x = 2), an expression holding a decimal literal to 9 digits.
    """
    va, vb = a.evalf(_DIGITS), b.evalf(_DIGITS)
    if not (va.is_number and vb.is_number) or va.has(sympy.nan, sympy.zoo) or vb.has(sympy.nan, sympy.zoo):
        return None
    if not (va.is_finite and vb.is_finite):
        return None
    has_decimal = a.has(sympy.Float) or b.has(sympy.Float)
    tolerance = sympy.Float(_REL_TOL if has_decimal else _EXACT_REL_TOL, _DIGITS)
    scale = max(sympy.Integer(1), sympy.Abs(va), sympy.Abs(vb))
    return bool(sympy.Abs(va - vb) <= tolerance * scale)


def _points(symbols: list[sympy.Symbol]) -> list[dict[sympy.Symbol, sympy.Rational]]:
    """Many points, integers and non-integers, negative and positive, small and large: a function with jumps
    (floor, ceiling, mod, abs) is seen on both sides of them. One symbol takes every value of the pool; several
    take fixed pseudo-random combinations."""
    if len(symbols) == 1:
        return [{symbols[0]: value} for value in _POOL]
    rng = random.Random(0)
    return [{s: rng.choice(_POOL) for s in symbols} for _ in range(len(_POOL))]


def values_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal as numbers (constants) or as functions of their symbols. Functions: exact simplification of
    a - b first; otherwise equal only when they agree at every point of _POOL where both are defined, and
    at least _MIN_AGREEING of them (a few sample points are never enough: floor(n/2) and
    floor(sqrt(n-1)) agree on [0.1, 2.5])."""
    if a == b:
        return True
    if a.has(sympy.oo, -sympy.oo, sympy.zoo) or b.has(sympy.oo, -sympy.oo, sympy.zoo):
        return sympy.simplify(a - b) == 0 if not (a.is_infinite or b.is_infinite) else a == b
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        if a.is_Rational and b.is_Rational:
            return False  # exact numbers that differ (a == b was checked): no tolerance for 2^100 + 1
        return bool(_values_close(a, b))
    if sympy.expand(a - b) == 0:
        return True
    agreed = 0
    for point in _points(symbols):
        close = _values_close(a.subs(point), b.subs(point))
        if close is None:
            continue
        if not close:
            return False  # one point where they differ proves them different
        agreed += 1
    return agreed >= _MIN_AGREEING


def expressions_equal(a_text: str, b_text: str) -> bool:
    try:
        return values_equal(to_sympy(a_text), to_sympy(b_text))
    except NotParsable:
        return False


def equations_equal(a_text: str, b_text: str) -> bool:
    """`lhs = rhs` forms are equal when lhs - rhs of one is a nonzero constant multiple of the other's."""
    try:
        a_sides = [to_sympy(side) for side in a_text.split("=")]
        b_sides = [to_sympy(side) for side in b_text.split("=")]
    except NotParsable:
        return False
    if len(a_sides) != 2 or len(b_sides) != 2:
        return False
    da, db = a_sides[0] - a_sides[1], b_sides[0] - b_sides[1]
    if values_equal(da, db) or values_equal(da, -db):
        return True
    if db == 0:
        return False
    return _constant_ratio(da, db)


def _constant_ratio(da: sympy.Expr, db: sympy.Expr) -> bool:
    """da / db is the same nonzero constant at random points (the same equation scaled)."""
    symbols = sorted(da.free_symbols | db.free_symbols, key=str)
    rng = random.Random(1)
    ratios = []
    for _ in range(_POINTS):
        point = {s: sympy.Rational(rng.randint(51, 249), 100) for s in symbols}
        va, vb = _numeric(da.subs(point)), _numeric(db.subs(point))
        if va is None or vb is None or abs(vb) < 1e-12:
            continue
        ratios.append(va / vb)
    if len(ratios) < 3 or abs(ratios[0]) < 1e-12:
        return False
    return all(_close(r, ratios[0]) for r in ratios[1:])


def compare(kind: str, a_text: str, b_text: str) -> bool:
    if kind == "equation":
        return equations_equal(a_text, b_text)
    return expressions_equal(a_text, b_text)
