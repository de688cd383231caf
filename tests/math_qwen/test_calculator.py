"""Calculator annotations: exact arithmetic, GSM8K rounding, and nothing but arithmetic ever evaluated."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from math_qwen.calculator import CalculatorError, annotation_is_valid, check_annotations, evaluate


@pytest.mark.parametrize("expr, value", [
    ("2*6", 12), ("(3+4)*2-1", 13), ("10/4", Fraction(5, 2)), ("-3**2", -9), ("2**-2", Fraction(1, 4)),
    ("1,000*3", 3000), ("$5*0.2", 1), ("((((2))))", 2), (".5+.25", Fraction(3, 4)), ("0.1+0.2", Fraction(3, 10)),
])  # fmt: skip
def test_evaluates_plain_arithmetic_exactly(expr, value):
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr", [
    "__import__('os').system('true')", "x+1", "abs(-3)", "(1).real", "[1][0]", "2//1", "7%3", "1 if 1 else 2",
    "9**9**9", "2**0.5", "10**100*10**100", "1/0", "0**-1", "1+" * 150 + "1", "50%*2", "", "lambda: 1",
])  # fmt: skip
def test_refuses_anything_else(expr):
    with pytest.raises(CalculatorError):
        evaluate(expr)


@pytest.mark.parametrize("body, valid", [
    ("2*6=12", True), ("2*6=13", False), ("10/3=3.33", True), ("10/3=3.3333", True), ("10/3=3.34", False),
    ("10/3=3", False), ("7-2=5.0", True), ("1=1=1", False), ("3*4", False), ("open('f')=0", False),
])  # fmt: skip
def test_annotation_validity(body, valid):
    assert annotation_is_valid(body) is valid


def test_equation_list_in_order_with_the_bad_ones_named():
    check = check_annotations("a <<2 * 3=6>>6 then <<6+1=8>>8 and <<8-1=7>>7")
    assert check.equations == ("2*3=6", "6+1=8", "8-1=7")
    assert check.invalid == ["6+1=8"] and not check.valid
    assert check_annotations("no annotations").equations == () and check_annotations("").valid


def test_gsm8k_gold_annotations_compute(shared_data):
    """Every annotation of GSM8K's own train solutions checks, except those using floor division (not allowed)."""
    total, failures = 0, []
    with open(shared_data("gsm8k", "train.jsonl")) as f:
        for line in f:
            check = check_annotations(json.loads(line)["answer"])
            total += len(check.equations)
            failures += check.invalid
    assert total > 20_000
    assert all("//" in body for body in failures), [b for b in failures if "//" not in b][:10]
