"""The shape of a normalised answer: matrix, tuple/interval, set, union, list of answers, or one scalar.

Shapes decide how two answers are compared: intervals keep their open/closed ends, tuples keep their
order, sets and lists of answers ("enter all solutions, separated by commas") do not, matrices compare
cell by cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eval.math.normalize import strip_variable_prefix

_OPEN = {"(": ")", "[": "]", "{": "}"}
_MATRIX = re.compile(r"^\\begin\{(?:matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{(?:matrix|array)\}$", re.DOTALL)


@dataclass(frozen=True)
class Shape:
    kind: str  # "scalar" | "tuple" | "set" | "list" | "union" | "matrix"
    text: str = ""  # scalar text
    items: tuple[Shape, ...] = ()
    brackets: str = ""  # for tuples/intervals: the opening and closing bracket, e.g. "[)"
    rows: tuple[tuple[Shape, ...], ...] = ()


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on separator outside (), [], {}, \\{\\}; intervals like [0,1) count as one group."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        if text.startswith("\\{", i) or text.startswith("\\}", i):
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _encloses(text: str) -> bool:
    """True when text[0] and text[-1] are one bracket pair around the whole text ("(a,b)" not "(a)+(b)")."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return False
    return depth == 0


def _expand_plus_minus(text: str) -> list[str] | None:
    if text.count("\\pm") != 1 and text.count("\\mp") != 1:
        return None
    command = "\\pm" if "\\pm" in text else "\\mp"
    return [text.replace(command, "+"), text.replace(command, "-")]


_LESS = {"<": ")", "\\leq": "]"}  # the operator after the lower bound / before the upper bound -> bracket
_OPEN_FOR = {"<": "(", "\\leq": "["}
_VARIABLE = r"([a-zA-Z](?:\([a-z]\))?|\\theta)"  # x, f(x), theta
_REL = r"(<|>|\\leq|\\geq)"
_FLIP = {"<": ">", ">": "<", "\\leq": "\\geq", "\\geq": "\\leq"}


def _interval(low: str, low_op: str, high: str, high_op: str) -> Shape:
    return Shape("tuple", brackets=_OPEN_FOR[low_op] + _LESS[high_op], items=(_scalar(low), _scalar(high)))


def inequality_as_interval(text: str) -> Shape | None:
    """`x \\geq 3` -> [3, oo), `-1 < x \\leq 2` -> (-1, 2]: a one-variable inequality is an interval."""
    text = re.sub(r"(\\(?:leq|geq))\s+", r"\1", text)  # normalisation keeps "\\leq x"; the patterns take "\\leqx"
    m = re.fullmatch(rf"(.+?){_REL}{_VARIABLE}{_REL}(.+)", text)
    if m and m.group(2) in _OPEN_FOR and m.group(4) in _OPEN_FOR:
        return _interval(m.group(1), m.group(2), m.group(5), m.group(4))
    m = re.fullmatch(rf"{_VARIABLE}{_REL}(.+)", text) or None
    if m:
        op, bound = m.group(2), m.group(3)
    else:
        m = re.fullmatch(rf"(.+?){_REL}{_VARIABLE}", text)
        if not m:
            return None
        op, bound = _FLIP[m.group(2)], m.group(1)
    if any(rel in bound for rel in ("<", ">", "\\leq", "\\geq", "=")):
        return None
    if op in (">", "\\geq"):
        return _interval(bound, "<" if op == ">" else "\\leq", "\\infty", "<")
    return _interval("-\\infty", "<", bound, op)


def _scalar(text: str) -> Shape:
    return Shape("scalar", text=strip_variable_prefix(text))


def parse_shape(text: str, depth: int = 0) -> Shape:
    """Shape of a normalised answer (see normalize.normalize_answer)."""
    text = strip_variable_prefix(text.strip())
    if depth > 20 or not text:
        return Shape("scalar", text=text)
    matrix = _MATRIX.match(text)
    if matrix:
        rows = [r for r in split_top_level(matrix.group(1), "\\\\") if r.strip()]
        return Shape("matrix", rows=tuple(tuple(_scalar(c) for c in split_top_level(r, "&")) for r in rows))
    if "\\cup" in text and len(parts := split_top_level(text, "\\cup")) > 1:
        return Shape("union", items=tuple(parse_shape(p, depth + 1) for p in parts))
    if text.startswith("\\{") and text.endswith("\\}"):
        inner = text[2:-2]
        return Shape("set", items=tuple(parse_shape(p, depth + 1) for p in split_top_level(inner, ",") if p))
    for separator in (",", ";"):
        parts = split_top_level(text, separator)
        if len(parts) > 1:
            return Shape("list", items=tuple(parse_shape(p, depth + 1) for p in parts if p.strip()))
    if text[0] in "([" and text[-1] in ")]" and _encloses(text):
        inner = text[1:-1]
        parts = split_top_level(inner, ",")
        if len(parts) == 1:
            parts = split_top_level(inner, ";")  # "(0;-2;6)"
        if len(parts) > 1:
            return Shape("tuple", brackets=text[0] + text[-1],
                         items=tuple(parse_shape(p, depth + 1) for p in parts))
    interval = inequality_as_interval(text)
    if interval is not None:
        return interval
    expanded = _expand_plus_minus(text)
    if expanded:
        return Shape("list", items=tuple(_scalar(t) for t in expanded))
    return _scalar(text)
