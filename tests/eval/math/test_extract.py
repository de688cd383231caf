"""Answer extraction: each rule fires on the text it is meant for, and the earlier rules win."""

from __future__ import annotations

import pytest

from eval.math.extract import extract_gsm8k, extract_math, last_boxed, truncate_continuation


@pytest.mark.parametrize(
    ("completion", "answer", "rule"),
    [
        ("She makes 9 * 2 = $18 every day.\n#### 18", "18", "hashes"),
        ("Total 1,200 dollars.\n#### $1,200", "1200", "hashes"),
        ("So 5 + 4 = 9. The answer is 9.", "9", "answer_is"),
        ("The answer is $1,234.50.", "1234.5", "answer_is"),
        ("The answer is: 42 apples", "42", "answer_is"),
        ("The answer is 5 + 3 = 8.", "8", "answer_is"),
        ("The answer is 18, which is 2 more than 16.", "18", "answer_is"),
        ("We get \\boxed{72} clips.", "72", "boxed"),
        ("Work: 3 + 4\nA: 7", "7", "a_line"),
        ("He has 3 apples, then 5 more, so 8 apples in total", "8", "last_number"),
        ("It costs -3.50 in the end", "-3.5", "last_number"),
        ("no digits here", None, "none"),
        ("#### 5\nThe answer is 6", "5", "hashes"),
    ],
)
def test_gsm8k_rules(completion, answer, rule):
    assert tuple(extract_gsm8k(completion)) == (answer, rule)


def test_gsm8k_few_shot_continuation_is_ignored():
    completion = "3 + 4 = 7. The answer is 7.\n\nQuestion: Tom has 12 pens...\nAnswer: The answer is 12."
    assert tuple(extract_gsm8k(completion)) == ("7", "answer_is")
    assert truncate_continuation(completion) == "3 + 4 = 7. The answer is 7.\n"


@pytest.mark.parametrize(
    ("completion", "answer", "rule"),
    [
        ("so $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", "boxed"),
        ("first \\boxed{1} then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", "boxed"),
        ("nested \\boxed{\\frac{\\sqrt{3}}{\\{2\\}}} done", "\\frac{\\sqrt{3}}{\\{2\\}}", "boxed"),
        ("answer \\fbox{12}", "12", "fbox"),
        ("so it is $\\boxed 5$.", "5", "boxed"),
        ("Final Answer: The final answer is $[2,5)$. I hope it is correct.", "[2,5)", "final_answer_is"),
        ("The final answer is 17.", "17", "final_answer_is"),
        ("so the answer is $\\frac{3}{4}$, done", "\\frac{3}{4}", "answer_is"),
        ("We find that $y = 2x+3$ and then $x = 7$", "7", "last_math"),
        ("the count is 12 and then 13", "13", "last_number"),
        ("nothing", None, "none"),
        ("unbalanced \\boxed{12 and the answer is 5", "5", "answer_is"),
    ],
)
def test_math_rules(completion, answer, rule):
    assert tuple(extract_math(completion)) == (answer, rule)


def test_last_boxed_matches_nested_braces_and_skips_unbalanced_last():
    assert last_boxed("\\boxed{a{b{c}}d} and \\boxed{x") == ("a{b{c}}d", "boxed")
    assert last_boxed("plain text") == (None, "none")


def test_math_few_shot_continuation_is_ignored():
    completion = "So \\boxed{3}.\n\nProblem:\nWhat is 1+1?\n\nSolution:\n\\boxed{2}"
    assert tuple(extract_math(completion)) == ("3", "boxed")
