"""Prompts: the exemplars are well-formed (each one's own answer extracts the way the model's should)."""

from __future__ import annotations

import re

from eval.math.final_answer import extract_final_answer
from eval.math.grader import is_equiv
from eval.math.prompts import GSM8K_EXEMPLARS, MATH_EXEMPLARS, build_prompts, few_shot_prompt


def test_gsm8k_exemplars_answer_themselves():
    assert len(GSM8K_EXEMPLARS) == 8
    for _, answer in GSM8K_EXEMPLARS:
        stated = re.search(r"The answer is (\d+)\.$", answer).group(1)
        assert tuple(extract_final_answer(answer)) == (stated, "answer_is")


def test_math_exemplars_box_their_final_answer():
    assert len(MATH_EXEMPLARS) == 4
    for _, solution in MATH_EXEMPLARS:
        boxed = extract_final_answer(solution.split("Final Answer:")[0])
        final = extract_final_answer("Final Answer:" + solution.split("Final Answer:")[1])
        assert boxed.rule == "boxed" and final.rule == "final_answer_is"
        assert is_equiv(boxed.answer, final.answer)


def test_few_shot_prompts_end_where_the_model_answers():
    gsm8k = few_shot_prompt("gsm8k", "What is 2+2?")
    assert gsm8k.count("Question: ") == 9 and gsm8k.endswith("Question: What is 2+2?\nAnswer:")
    math = few_shot_prompt("math", "Compute $1+1$.")
    assert math.count("Problem:\n") == 5 and math.endswith("Problem:\nCompute $1+1$.\n\nSolution:\n")
    # A base model continuing with the next exemplar is stopped there.
    _, stops = build_prompts("gsm8k", ["q"], chat=False)
    assert "\n\nQuestion:" in stops


def test_chat_prompts_ask_for_the_answer_format():
    (gsm8k,), stops = build_prompts("gsm8k", ["What is 2+2?"], chat=True)
    assert "####" in gsm8k and gsm8k.endswith("What is 2+2?") and "<|im_end|>" in stops
    (math,), _ = build_prompts("math", ["Compute $1+1$."], chat=True)
    assert "\\boxed{}" in math
