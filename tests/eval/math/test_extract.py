"""Final-answer extraction from whole responses: each rule fires on what models write, earlier rules win."""

from __future__ import annotations

import pytest

from eval.math.extract import last_boxed, truncate_continuation
from eval.math.final_answer import extract_final_answer


@pytest.mark.parametrize(
    ("completion", "answer", "rule"),
    [
        # GSM8K style
        ("She makes 9 * 2 = $18 every day.\n#### 18", "18", "hashes"),
        ("Total 1,200 dollars.\n#### $1,200", "1200", "hashes"),
        ("#### 5\nThe answer is 6", "5", "hashes"),
        ("#### Step 4: the total\nSo x = 6.\n\nThe total is \\(\\boxed{30}\\).", "30", "boxed"),  # a heading
        ("So 5 + 4 = 9. The answer is 9.", "9", "answer_is"),
        ("The answer is $1,234.50.", "1234.5", "answer_is"),
        ("The answer is: 42 apples", "42", "answer_is"),
        ("The answer is 5 + 3 = 8.", "8", "answer_is"),
        ("The answer is 18, which is 2 more than 16.", "18", "answer_is"),
        ("We get \\boxed{72} clips.", "72", "boxed"),
        ("Work: 3 + 4\nA: 7", "7", "last_sentence"),
        ("He has 3 apples, then 5 more, so 8 apples in total", "8", "last_sentence"),
        ("no digits here", None, "none"),
        # boxes
        ("so $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", "boxed"),
        ("first \\boxed{1} then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)",
         "boxed"),
        ("nested \\boxed{\\frac{\\sqrt{3}}{\\{2\\}}} done", "\\frac{\\sqrt{3}}{\\{2\\}}", "boxed"),
        ("answer \\fbox{12}", "12", "boxed"),
        ("so it is $\\boxed 5$.", "5", "boxed"),
        ("unbalanced \\boxed{12 and the answer is 5", "5", "answer_is"),
        # answer lines
        ("Final Answer: The final answer is $[2,5)$. I hope it is correct.", "[2,5)", "final_answer_is"),
        ("The final answer is 17.", "17", "final_answer_is"),
        ("takes it to $\\boxed{-12+15i}.$\n\nFinal Answer: The final answer is -12+15i. I hope it is correct.",
         "-12+15i", "boxed"),
        ("Final Answer: The final answer is -12+15i. I hope it is correct.", "-12+15i", "final_answer_is"),
        ("so the answer is $\\frac{3}{4}$, done", "\\frac{3}{4}", "answer_is"),
        ("So Verna paid $13.\n\n**Answer:** Verna received $7.00 in change.", "7", "answer_is"),
        ("**Final Answer:** \\(x + y = 4027\\).", "x + y = 4027", "final_answer_is"),
        # bold
        ("Steps...\n\nTherefore, the remainder is **0**. To summarize: we used 7k + 3.", "0", "bold"),
        ("**Step 1: set up**\nWe get 2x = 12.\n\nSo the number of rows is **6**.", "6", "bold"),
        ("Thus **Elizabeth needs at least 76 minutes** to finish.", "76", "bold"),
        # conclusion sentences
        ("Work.\n\nTherefore, Lara read 128 pages on the first day.", "128", "last_sentence"),
        ("So, Charisma spends a total of 34 hours on meditation and yoga practice in 4 weeks.", "34",
         "last_sentence"),
        ("The probability is approximately \\(1/3\\). This estimate is based on the digits \\(A\\) and \\(B\\).",
         "1/3", "last_sentence"),
        ("Therefore, the polynomial \\(p(x)\\) is:\n\\[\np(x) = \\frac{x(x-1)}{6}\n\\]\n\nThis works for all "
         "\\(m > 4\\).", "p(x) = \\frac{x(x-1)}{6}", "last_sentence"),
        ("We find that $y = 2x+3$ and then $x = 7$", "x = 7", "last_sentence"),
        ("the count is 12 and then 13", "12", "last_sentence"),
        ("If x = 14, then y = 15.\n\nSo, \\( x = 14 \\) and \\( y = 15 \\) is not a solution.", None, "none"),
        # a bare final answer as the response
        ("\\frac{1}{2}", "\\frac{1}{2}", "whole"),
        ("$x = 5$", "$x = 5$", "whole"),
        ("(1, 2)", "(1, 2)", "whole"),
    ],
)
def test_rules(completion, answer, rule):
    assert tuple(extract_final_answer(completion)) == (answer, rule)


@pytest.mark.parametrize(
    ("completion", "n_parts", "answer"),
    [
        ("the values are \\(\\boxed{-1}\\) and \\(\\boxed{-9}\\).", 2, "-1, -9"),
        ("the values are \\(\\boxed{-1}\\) and \\(\\boxed{-9}\\).", 1, "-9"),
        ("We had \\boxed{5} earlier.\n\nSo p = \\boxed{3} and q = \\boxed{4}.", 2, "3, 4"),
        ("Thus the solutions are \\(x = 5\\) and \\(x = -2\\).", 2, "x = 5, x = -2"),
        ("Summary:\n- \\( d(6) = \\frac{1}{3} \\)\n- \\( d(16) = 1 \\)\n- \\( d(72) = \\frac{1}{9} \\)", 3,
         "d(6) = \\frac{1}{3}, d(16) = 1, d(72) = \\frac{1}{9}"),
        ("Thus, the integer values are \\(-1, 0,\\) and \\(1\\).", 3, "-1, 0, 1"),
    ],
)
def test_several_parts(completion, n_parts, answer):
    assert extract_final_answer(completion, n_parts).answer == answer


def test_few_shot_continuation_is_ignored():
    completion = "3 + 4 = 7. The answer is 7.\n\nQuestion: Tom has 12 pens...\nAnswer: The answer is 12."
    assert tuple(extract_final_answer(completion)) == ("7", "answer_is")
    assert truncate_continuation(completion) == "3 + 4 = 7. The answer is 7.\n"
    completion = "So \\boxed{3}.\n\nProblem:\nWhat is 1+1?\n\nSolution:\n\\boxed{2}"
    assert tuple(extract_final_answer(completion)) == ("3", "boxed")


def test_last_boxed_matches_nested_braces_and_skips_unbalanced_last():
    assert last_boxed("\\boxed{a{b{c}}d} and \\boxed{x") == ("a{b{c}}d", "boxed")
    assert last_boxed("plain text") == (None, "none")
