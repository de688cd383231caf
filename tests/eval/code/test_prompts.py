"""Post-processing of raw generations: fences stripped, completions cut after the function."""

from eval.code.languages import get_language
from eval.code.prompts import generation_prompt, postprocess, strip_fences, truncate_braces, truncate_python

PY = {"prompt": "def add(a, b):\n    \"\"\"Add.\"\"\"\n"}
JS = {"prompt": "/* add */\nconst add = (a, b) => {\n", "declaration": "\nconst add = (a, b) => {\n"}


def test_python_completion_stops_at_next_top_level_statement():
    raw = "    return a + b\n\n\ndef other():\n    pass\n"
    assert truncate_python(raw) == "    return a + b\n\n\n"
    assert postprocess(raw, PY, get_language("python"), chat=False) == "    return a + b\n\n\n"


def test_brace_languages_stop_when_the_prompt_braces_close():
    raw = "  if (a) { return a + b }\n  return b\n}\nconsole.log(add(1, 2))\n"
    assert truncate_braces(raw, 1) == "  if (a) { return a + b }\n  return b\n}\n"
    assert postprocess(raw, JS, get_language("js"), chat=False).endswith("return b\n}\n")


def test_chat_answer_fenced_block_is_reduced_to_the_body():
    answer = "Sure!\n```python\ndef add(a, b):\n    \"\"\"Add.\"\"\"\n    return a + b\n```\nDone."
    assert strip_fences(answer, get_language("python")).startswith("def add")
    assert postprocess(answer, PY, get_language("python"), chat=True) == "\n    return a + b\n"


def test_fence_with_matching_language_tag_is_preferred():
    answer = "```text\nnot code\n```\n```js\nconst add = (a, b) => {\n  return a + b\n}\n```"
    assert postprocess(answer, JS, get_language("js"), chat=True) == "\n  return a + b\n}\n"


def test_chat_prompt_wraps_the_problem_in_an_instruction():
    text = generation_prompt(PY, get_language("python"), chat=True)
    assert "```python" in text and "def add(a, b):" in text
    assert generation_prompt(PY, get_language("python"), chat=False) == PY["prompt"]
