"""GSM8K calculator annotations `<<a*b=c>>`: safe exact evaluation and the equation list of a solution.

Never `eval`: the left side is parsed with `ast` and only numbers, + - * / **, unary signs and parentheses
are allowed, with bounds on length, node count, exponents and magnitudes, computed exactly with Fraction.
An annotation is valid when its left side evaluates to its right side, allowing the right side to be the
value rounded to the decimals it shows (GSM8K's own gold solutions write `<<10/3=3.33>>`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from fractions import Fraction

ANNOTATION = re.compile(r"<<([^<>]*)>>")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
MAX_EXPR_CHARS = 200
MAX_NODES = 64
MAX_EXPONENT = 64
MAX_ABS = Fraction(10) ** 30
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


class CalculatorError(ValueError):
    """An expression outside the allowed arithmetic (or out of bounds)."""


def _clean(expr: str) -> str:
    # Thousands separators and currency signs that annotations sometimes carry.
    return _THOUSANDS.sub("", expr).replace("$", "").strip()


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))  # str: 0.1 is one tenth, not the nearest binary float
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if type(node.op) in _BINARY:
            return _bounded(_BINARY[type(node.op)](left, right))
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise CalculatorError("division by zero")
            return _bounded(left / right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
    raise CalculatorError(f"not plain arithmetic: {ast.dump(node)[:60]}")


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is not a small integer")
    if base == 0 and exponent < 0:
        raise CalculatorError("zero to a negative power")
    if abs(base) > MAX_ABS:
        raise CalculatorError("base out of bounds")
    return _bounded(base ** int(exponent))


def _bounded(value: Fraction) -> Fraction:
    if abs(value) > MAX_ABS or value.denominator > MAX_ABS:
        raise CalculatorError("value out of bounds")
    return value


def evaluate(expr: str) -> Fraction:
    """Exact value of an arithmetic expression; CalculatorError for anything else."""
    text = _clean(expr)
    if not text or len(text) > MAX_EXPR_CHARS:
        raise CalculatorError(f"expression empty or longer than {MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as e:
        raise CalculatorError(f"cannot parse {text!r}") from e
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalculatorError("expression too large")
    return _value(tree.body)


def _decimals(literal: str) -> int | None:
    m = re.fullmatch(r"-?\d*\.(\d+)", literal)
    return len(m.group(1)) if m else None


def annotation_is_valid(body: str) -> bool:
    """`a*b=c` (the text between << and >>): does a*b evaluate to c? Never raises."""
    if body.count("=") != 1:
        return False
    lhs, rhs = body.split("=")
    try:
        value, shown = evaluate(lhs), evaluate(rhs)
    except CalculatorError:
        return False
    if value == shown:
        return True
    places = _decimals(_clean(rhs))
    return places is not None and round(value, places) == shown


def normalize_equation(body: str) -> str:
    return re.sub(r"\s+", "", body)


@dataclass
class AnnotationCheck:
    equations: tuple[str, ...] = ()  # normalised, in order of appearance
    invalid: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.invalid


def check_annotations(solution: str) -> AnnotationCheck:
    """The equation list of a solution and the annotations that do not compute."""
    bodies = ANNOTATION.findall(solution)
    return AnnotationCheck(tuple(normalize_equation(b) for b in bodies),
                           [b for b in bodies if not annotation_is_valid(b)])  # fmt: skip
