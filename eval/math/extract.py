"""Text primitives of answer extraction: balanced braces, boxes, numbers, few-shot continuations.

The rules that find a response's final answer are in eval/math/final_answer.py.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Extraction(NamedTuple):
    answer: str | None
    rule: str  # which rule fired; "none" when nothing could be extracted


# Few-shot continuations: a base model keeps writing the next exemplar after its answer; the answer is
# always before the first of these.
CONTINUATION_MARKERS = ("\nQuestion:", "\nProblem:", "\nQ:", "<|im_end|>", "<|endoftext|>", "<|im_start|>")

_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
NUMBER_RE = re.compile(_NUMBER)


def truncate_continuation(text: str) -> str:
    """Cut a few-shot continuation (the model writing the next exemplar) off the completion."""
    cut = len(text)
    for marker in CONTINUATION_MARKERS:
        pos = text.find(marker)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]


def matching_brace(text: str, open_pos: int) -> int:
    """Index of the `}` closing the `{` at open_pos, or -1 when unbalanced (iterative: no recursion limit)."""
    depth = 0
    i = open_pos
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped brace \{ or \} does not count
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def last_boxed(text: str) -> tuple[str | None, str]:
    """Content of the last `\\boxed{...}` or `\\fbox{...}` (also `\\boxed 5`), and which command it was."""
    pos = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    for _ in range(50):  # bounded: each unbalanced box scans to the end of the text
        if pos == -1:
            break
        command = "fbox" if text.startswith("\\fbox", pos) else "boxed"
        rest = pos + len(command) + 1
        while rest < len(text) and text[rest] == " ":
            rest += 1
        if rest < len(text) and text[rest] == "{":
            end = matching_brace(text, rest)
            if end != -1:
                return text[rest + 1 : end].strip(), command
        elif rest < len(text) and rest > pos + len(command) + 1:
            # `\boxed 5`: the argument runs to the next space or dollar sign
            m = re.match(r"[^\s$]+", text[rest:])
            if m:
                return m.group(0).rstrip(".,"), command
        pos = max(text.rfind("\\boxed", 0, pos), text.rfind("\\fbox", 0, pos))
    return None, "none"


def normalize_number_text(text: str) -> str:
    """`$1,000.00` -> `1000`, `-3.50` -> `-3.5`: currency, separators and trailing zeros stripped."""
    cleaned = text.replace("$", "").replace(",", "").replace(" ", "").rstrip(".")
    if "." in cleaned:
        cleaned = cleaned.rstrip("0").rstrip(".")
    if cleaned in ("", "-"):
        return text.strip()
    if cleaned.startswith("."):
        cleaned = "0" + cleaned
    if cleaned.startswith("-."):
        cleaned = "-0" + cleaned[1:]
    return cleaned


def extract_answer(completion: str, benchmark: str) -> Extraction:
    """The final answer of a completion by eval.math.final_answer's rules (the same for both benchmarks)."""
    if benchmark not in ("gsm8k", "math"):
        raise ValueError(f"unknown benchmark {benchmark!r} (expected gsm8k or math)")
    from eval.math.final_answer import extract_final_answer  # it builds on this module: import when used

    return extract_final_answer(completion)
