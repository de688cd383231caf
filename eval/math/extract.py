"""Final-answer extraction from model output, recording which rule fired.

GSM8K: `#### n`, "the answer is n", `\\boxed{n}`, a final "A: n" line, then the last number in the text.
MATH: the last `\\boxed{...}` / `\\fbox{...}` (nested braces), "final answer is $...$", "answer is ...",
the last `$...$` span, then the last number.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Extraction(NamedTuple):
    answer: str | None
    rule: str  # which rule fired; "none" when nothing could be extracted


# Few-shot continuations: a base model keeps writing the next exemplar after its answer; the answer is
# always before the first of these.
CONTINUATION_MARKERS = ("\nQuestion:", "\nProblem:", "\nQ:", "<|im_end|>", "<|endoftext|>")

_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_HASHES_RE = re.compile(r"####\s*(.+)")
_ANSWER_IS_RE = re.compile(r"answer\s*(?:is|=|:)\s*:?\s*", re.IGNORECASE)
_A_LINE_RE = re.compile(r"^\s*A\s*:\s*(.+)$", re.MULTILINE)
_FINAL_ANSWER_RE = re.compile(r"final answer is\s*:?\s*", re.IGNORECASE)
_DOLLAR_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)


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
    while pos != -1:
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


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    """The text after the last match of pattern, or None when it does not occur."""
    ends = [m.end() for m in pattern.finditer(text)]
    return text[ends[-1] :] if ends else None


def _first_math_span(text: str) -> str | None:
    m = _DOLLAR_SPAN_RE.match(text)  # only a span that opens the tail: "is $5$.", not a later one
    if not m:
        return None
    return next(g for g in m.groups() if g is not None).strip()


def _clean_tail(answer: str) -> str:
    """Drop sentence punctuation and a trailing line of prose after an inline answer."""
    answer = answer.strip().split("\n")[0].strip()
    return answer.rstrip(".").strip()


def last_number(text: str) -> str | None:
    matches = _NUMBER_RE.findall(text)
    return normalize_number_text(matches[-1]) if matches else None


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


def _number_in(answer: str) -> str | None:
    """The number an answer phrase states: "$18 per day" -> 18, "5 + 3 = 8." -> 8 (the result after the
    last equals sign of its first sentence), or None."""
    sentence = re.split(r"\n|\.\s|\.$", answer.strip(), maxsplit=1)[0]
    if "=" in sentence:
        sentence = sentence.rsplit("=", 1)[1]
    m = _NUMBER_RE.search(sentence) or _NUMBER_RE.search(answer)
    return normalize_number_text(m.group(0)) if m else None


def extract_gsm8k(completion: str) -> Extraction:
    text = truncate_continuation(completion)
    hashes = _HASHES_RE.findall(text)
    if hashes and (number := _number_in(hashes[-1])) is not None:
        return Extraction(number, "hashes")
    answer_is = _after_last(_ANSWER_IS_RE, text)
    if answer_is is not None and (number := _number_in(answer_is.split("\n")[0])) is not None:
        return Extraction(number, "answer_is")
    boxed, _ = last_boxed(text)
    if boxed is not None and (number := _number_in(boxed)) is not None:
        return Extraction(number, "boxed")
    a_lines = _A_LINE_RE.findall(text)
    if a_lines and (number := _number_in(a_lines[-1])) is not None:
        return Extraction(number, "a_line")
    number = last_number(text)
    if number is not None:
        return Extraction(number, "last_number")
    return Extraction(None, "none")


def extract_math(completion: str) -> Extraction:
    text = truncate_continuation(completion)
    boxed, command = last_boxed(text)
    if boxed is not None:
        return Extraction(boxed, command)
    final = _after_last(_FINAL_ANSWER_RE, text)
    if final is not None:
        tail = final.strip()
        span = _first_math_span(tail)
        return Extraction(span if span is not None else _clean_tail(tail), "final_answer_is")
    answer_is = _after_last(_ANSWER_IS_RE, text)
    if answer_is is not None:
        span = _first_math_span(answer_is.strip())
        return Extraction(span if span is not None else _clean_tail(answer_is), "answer_is")
    spans = _DOLLAR_SPAN_RE.findall(text)
    if spans:
        last = next(g for g in spans[-1] if g)
        if "=" in last:  # "$x = 5$" -> "5": the value after the last equals sign
            last = last.rsplit("=", 1)[1]
        return Extraction(last.strip(), "last_math")
    number = last_number(text)
    if number is not None:
        return Extraction(number, "last_number")
    return Extraction(None, "none")


def extract_answer(completion: str, benchmark: str) -> Extraction:
    if benchmark == "gsm8k":
        return extract_gsm8k(completion)
    if benchmark == "math":
        return extract_math(completion)
    raise ValueError(f"unknown benchmark {benchmark!r} (expected gsm8k or math)")
