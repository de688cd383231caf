"""Prompts for code generation and the post-processing that turns a raw generation into a completion.

Base models continue the problem's prompt (completion format) and stop at the language's stop
sequences. Chat models get a ChatML instruction; their answer usually holds a Markdown fenced block with
the whole function, from which the body after the prompt's signature is recovered. Either way the
completion is cut after the function ends: for brace languages when the braces the prompt opened are
closed, for Python at the first line back at the prompt's outer indentation.
"""

from __future__ import annotations

import re

from eval.code.languages import Language, get_language

INSTRUCTION = ("Complete the following {language} function. Reply with the complete function in one "
               "```{fence} code block.\n\n```{fence}\n{prompt}\n```")
_FENCE = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def language_for(benchmark: str, language: str | None) -> Language:
    return get_language(language or "python") if benchmark == "humanevalpack" else get_language("python")


def generation_prompt(problem: dict, lang: Language, chat: bool) -> str:
    if not chat:
        return problem["prompt"]
    return INSTRUCTION.format(language=lang.fence_names[0], fence=lang.fence_names[0], prompt=problem["prompt"].strip())


def strip_fences(text: str, lang: Language) -> str:
    """The first fenced block tagged with the language (else the first block); unchanged if none."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    for tag, body in blocks:
        if tag.lower() in lang.fence_names:
            return body
    return blocks[0][1]


def _after_signature(code: str, prompt: str, lang: Language) -> str:
    """A chat answer repeats the function: keep what follows the prompt's last line (the signature)."""
    last = next((line.strip() for line in reversed(prompt.splitlines()) if line.strip()), "")
    if last and last in code:
        return code[code.index(last) + len(last):]
    return code


def _brace_depth(text: str) -> int:
    return text.count("{") - text.count("}")


def truncate_braces(completion: str, open_depth: int) -> str:
    """Cut after the character that closes the braces the prompt left open (strings are rare enough here)."""
    depth = open_depth
    for i, ch in enumerate(completion):
        depth += ch == "{"
        depth -= ch == "}"
        if depth <= 0:
            return completion[: i + 1] + "\n"
    return completion


def truncate_python(completion: str) -> str:
    """Keep the body: stop at the first non-empty line that is not indented (a new top-level statement)."""
    lines = completion.split("\n")
    for i, line in enumerate(lines):
        if i > 0 and line.strip() and not line[0].isspace():
            return "\n".join(lines[:i]) + "\n"
    return completion


def truncate_at_stops(text: str, stops: list[str] | tuple[str, ...]) -> str:
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return text if cut < 0 else text[:cut]


def postprocess(raw: str, problem: dict, lang: Language, chat: bool, benchmark: str = "humanevalpack") -> str:
    """The completion to append to the problem's prompt (or declaration) when the program is assembled."""
    text = raw
    prompt = problem["prompt"]
    if chat or "```" in text:
        text = strip_fences(text, lang)
        if benchmark == "mbpp":
            return "\n" + text  # MBPP solutions are whole programs after the prompt's docstring
        text = _after_signature(text, prompt, lang)
    if benchmark == "mbpp":
        return text
    if lang.name == "python":
        return truncate_python(text)
    if lang.name == "go":
        body = prompt.replace(problem.get("import", ""), "")
    elif lang.name in ("java", "rust"):  # these programs are assembled from the declaration
        body = problem.get("declaration", prompt)
    else:
        body = prompt
    return truncate_braces(text, max(1, _brace_depth(body)))
