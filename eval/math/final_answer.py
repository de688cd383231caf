"""The final answer of a whole model response, by rules in order of trust; the result names the rule.

Rules follow what models write (issue 16): `#### n` (GSM8K format), boxed answers (`\\boxed{}`, `\\fbox{}`;
every box of the closing paragraph when the gold has several parts), a bold `**6**` near the end, an
"Answer:" / "the final answer is" line, the trailing conclusion sentence, and only then the last number.
A phrase ("Verna received $7.00 in change", "is \\(x = 5\\) and \\(x = -2\\)") is reduced to the answer it
states; a boxed `lhs = value` stays whole here and is compared by its value in eval/math/response.py.
"""

from __future__ import annotations

import re

from eval.math.extract import (
    NUMBER_RE,
    Extraction,
    matching_brace,
    normalize_number_text,
    truncate_continuation,
)
from eval.math.structure import split_top_level

_HASHES = re.compile(r"^\s*####\s*(-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+)\s*\.?\s*$", re.MULTILINE)
_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*")
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
_FINAL_ANSWER = re.compile(r"final answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_ANSWER = re.compile(r"\banswer\s*(?:is|:|=)\s*:?\s*", re.IGNORECASE)
_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_COPULA = re.compile(r"\s(?:is|are|was|were|equals|equal to|becomes|be)(?:\s*\((?:is|are)\))?\s*:?\s+|:\s+|=\s*")
_LEADING_WORDS = re.compile(r"^(?:(?:approximately|exactly|about|precisely|simply|then|therefore|thus|just|"
                            r"given by|equal to|the value|the answer)\s+)+", re.IGNORECASE)
_CONCLUSION = re.compile(r"\b(?:therefore|thus|hence|so|in conclusion|conclusion|final|answer|in summary|"
                         r"consequently|the result)\b", re.IGNORECASE)
_PLEASANTRY = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_LABEL_ONLY = re.compile(r"^\s*(?:final\s+)?(?:answer|solution|conclusion|summary|result|step\s*\d*)\b.*:\s*$|"
                         r".*:\s*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*\\(])|(?<=\\\])\s+(?=[A-Z])|\n+(?!\s*(?:\\\[|\$\$))")
_NEGATED = re.compile(r"^\s*(?:not|never|no longer)\b", re.IGNORECASE)
MAX_BOXES = 50  # the last boxes of a response: enough for any multi-part answer
MAX_RESPONSE_CHARS = 20_000  # the final answer is at the end: longer responses are read from their tail
_TAIL_PARAGRAPHS = 3  # bold and conclusion sentences are looked for in the last few paragraphs only


def boxes(text: str) -> list[tuple[int, str]]:
    """(position, content) of every `\\boxed{...}` / `\\fbox{...}` (also `\\boxed 5`), in order."""
    found = []
    for m in list(_BOX_START.finditer(text))[-MAX_BOXES:]:  # each unbalanced box scans to the end
        rest = m.end()
        if rest < len(text) and text[rest] == "{":
            end = matching_brace(text, rest)
            if end != -1:
                found.append((m.start(), text[rest + 1 : end].strip()))
        elif m.end() > m.start() + len("\\boxed") and (arg := re.match(r"[^\s$]+", text[rest:])):
            found.append((m.start(), arg.group(0).rstrip(".,")))
    return [(pos, content) for pos, content in found if content]


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _boxed(text: str, n_parts: int) -> str | None:
    found = boxes(text)
    if not found:
        return None
    if n_parts > 1:
        # the closing paragraph's boxes: "\\boxed{3} and \\boxed{4}" for a two-part answer
        last_para_start = max(text.rfind("\n\n", 0, found[-1][0]), 0)
        closing = [content for pos, content in found if pos >= last_para_start][-n_parts:]
        if len(closing) > 1:
            return ", ".join(closing)
    return found[-1][1]


def _spans(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None).strip() for m in _SPAN.finditer(text)]


def _clean(phrase: str) -> str:
    phrase = _PLEASANTRY.sub("", phrase.replace("**", "")).strip()
    return phrase.rstrip(" .;,!").strip()


def _join(spans: list[str], n_parts: int) -> str:
    return ", ".join(spans[-n_parts:]) if n_parts > 1 and len(spans) > 1 else spans[-1]


def leading_answer(text: str, n_parts: int = 1) -> str | None:
    """The math span or number that opens text ("$5$.", "18, which is ...", "\\(x = 5\\) and \\(x = -2\\)")."""
    text = _LEADING_WORDS.sub("", _clean(text))
    span = _SPAN.match(text)
    # "$18 and then $20" is two amounts of money, not a math span
    currency = span is not None and span.group(0).startswith("$") and re.search(
        r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", re.sub(r"\\[a-zA-Z]+", "", span.group(0))) is not None
    if span and not currency:
        spans = _spans(_first_sentence(text))
        if spans:
            return _join(spans, n_parts) if n_parts > 1 else spans[0]
    number = NUMBER_RE.match(text)
    if number and re.match(r"\s*[-+*×÷=]\s*[\d(\\]", text[number.end() :]):
        # an expression: "-12+15i", or "5 + 3 = 8" whose value follows its last "="
        expression = re.match(r"[-+$]?[\w.\\{}^()/]+(?:\s*[-+*×÷=]\s*[\w.\\{}^()/]+)*", text)
        return expression.group(0).rsplit("=", 1)[-1].strip() if expression else None
    if number and not re.match(r"\s*[a-zA-Z]*\s*[\\^/(]", text[number.end() :]):  # "18 apples", "$7.00"
        return normalize_number_text(number.group(0))
    token = re.match(r"\S+", text)  # "3/4", "2\\sqrt{3}"
    return token.group(0).rstrip(".,;:") if number and token else None


def answer_in_phrase(phrase: str, n_parts: int = 1, first: bool = False) -> str | None:
    """The answer a phrase states: what follows its last copula ("is", "are", ":", "=") outside math, else
    its last math span, else its last number, else the phrase itself when it is one short word answer."""
    phrase = _clean(phrase)
    if not phrase:
        return None
    masked = _SPAN.sub(lambda m: "\x01" * len(m.group(0)), phrase)
    copulas = list(_COPULA.finditer(masked))
    if copulas:
        if _NEGATED.match(phrase[copulas[-1].end() :]):
            return ""  # "x = 14 and y = 15 is not a solution": a statement, not an answer
        answer = leading_answer(phrase[copulas[-1].end() :], n_parts)
        if answer is not None:
            return answer
    # no copula: a conclusion's first value ("so Lara read 128 pages on day 1"), else the last one
    found = [(m.start(), next(g for g in m.groups() if g is not None).strip()) for m in _SPAN.finditer(phrase)]
    found = [(pos, span) for pos, span in found if not re.fullmatch(r"\\?[a-zA-Z]+", span)]
    masked = _SPAN.sub(lambda m: "\x01" * len(m.group(0)), phrase)
    found += [(m.start(), normalize_number_text(m.group(0))) for m in NUMBER_RE.finditer(masked)]
    if found:
        values = [v for _, v in sorted(found)]
        if n_parts > 1 and len(values) >= n_parts:
            return ", ".join(values[:n_parts] if first else values[-n_parts:])
        return values[0] if first else values[-1]
    return phrase if re.fullmatch(r"[A-Za-z][A-Za-z ]{0,30}", phrase) else None


def _first_sentence(text: str) -> str:
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return parts[0] if parts else ""


def _bold(text: str, n_parts: int) -> str | None:
    for paragraph in reversed(_paragraphs(text)[-_TAIL_PARAGRAPHS:]):
        for m in reversed(list(_BOLD.finditer(paragraph))):
            content = m.group(1).strip()
            if _LABEL_ONLY.match(content) or len(content) > 120 or not re.search(r"[\d\\$]", content):
                continue  # a label ("**Answer:**"), a heading, or prose without an answer in it
            return answer_in_phrase(content, n_parts)
    return None


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    ends = [m.end() for m in pattern.finditer(text)]
    return text[ends[-1] :] if ends else None


def _answer_line(text: str, pattern: re.Pattern[str], n_parts: int) -> str | None:
    tail = _after_last(pattern, text)
    if tail is None:
        return None
    sentence = _first_sentence(tail.lstrip("* ").strip())
    return leading_answer(sentence, n_parts) or answer_in_phrase(sentence, n_parts)


def _sentences(paragraph: str) -> list[str]:
    """Sentences of a paragraph; a display `\\[...\\]` stays inside the sentence that introduces it."""
    masked = _SPAN.sub(lambda m: m.group(0).replace(".", "\x00").replace("\n", " "), paragraph)
    # a display that ends its sentence with a full stop inside: "$$ ... \\geq 2.$$ Therefore, ..."
    masked = re.sub(r"(\x00\s*(?:\$\$|\$|\\\]|\\\)))\s+(?=[A-Z])", "\\1\n", masked)
    return [s.replace("\x00", ".") for s in _SENTENCE_END.split(masked) if s.strip()]


def _states_value(sentence: str, n_parts: int) -> str | None:
    """The answer when the sentence ends by stating one ("... is \\(1/3\\)."), else None."""
    masked = _SPAN.sub(lambda m: "\x01" * len(m.group(0)), _clean(sentence))
    copulas = list(_COPULA.finditer(masked))
    if not copulas or _NEGATED.match(_clean(sentence)[copulas[-1].end() :]):
        return None
    return leading_answer(_clean(sentence)[copulas[-1].end() :], n_parts)


def _summary(paragraph: str, n_parts: int) -> str | None:
    """The last n_parts answers in a closing paragraph's math ("- \\(d(6) = 1/3\\) ... - \\(d(72) = 1/9\\)")."""
    spans = [s.strip(" ,") for s in _spans(paragraph) if not re.fullmatch(r"\s*\\?[a-zA-Z]+\s*", s)]
    items = [item for span in spans for item in split_top_level(span, ",") if item.strip()]
    return ", ".join(item.strip() for item in items[-n_parts:]) if len(items) >= n_parts else None


def _last_sentence(text: str, n_parts: int) -> str | None:
    """The conclusion, read backwards from the end: the last sentence that states a value ("the area is
    \\(30\\)") or concludes ("Therefore, Lara read 128 pages"); sentences with neither ("This estimate is
    based on \\(C\\)") are passed over. Several parts: the math of a closing summary first."""
    paragraphs = _paragraphs(text)[-_TAIL_PARAGRAPHS:]
    if n_parts > 1 and paragraphs and (summary := _summary(paragraphs[-1], n_parts)):
        return summary
    sentences = [s for p in paragraphs[-2:] for s in _sentences(p)]
    with_answer = [s for s in sentences if _SPAN.search(s) or NUMBER_RE.search(s)]
    for sentence in reversed(with_answer):
        stated = _states_value(sentence, n_parts)
        if stated:
            return stated
        conclusions = list(_CONCLUSION.finditer(sentence))
        if conclusions:  # the value named after "so", "therefore": "3 apples, then 5 more, so 8 in total"
            return answer_in_phrase(sentence[conclusions[-1].end() :], n_parts, first=True) or answer_in_phrase(
                sentence, n_parts, first=True)
    return answer_in_phrase(with_answer[-1], n_parts) if with_answer else None


def extract_final_answer(response: str, n_parts: int = 1) -> Extraction:
    """The response's final answer and the rule that found it; n_parts > 1 when the gold has several parts."""
    text = truncate_continuation(str(response))[-MAX_RESPONSE_CHARS:]
    hashes = _HASHES.findall(text)
    if hashes:
        return Extraction(normalize_number_text(hashes[-1]), "hashes")
    rules = (
        ("boxed", lambda: _boxed(text, n_parts)),
        ("bold", lambda: _bold(text, n_parts)),
        ("final_answer_is", lambda: _answer_line(text, _FINAL_ANSWER, n_parts)),
        ("answer_is", lambda: _answer_line(text, _ANSWER, n_parts)),
        ("whole", lambda: _bare_answer(text)),
        ("last_sentence", lambda: _last_sentence(text, n_parts)),
    )
    for rule, find in rules:
        answer = find()
        if answer == "":
            return Extraction(None, "none")  # the conclusion says what is not the answer, and nothing else
        if answer:
            return Extraction(answer, rule)
    numbers = NUMBER_RE.findall(_paragraphs(text)[-1]) if text.strip() else []
    if numbers:  # only the closing paragraph: a number from the middle of the work is no answer
        return Extraction(normalize_number_text(numbers[-1]), "last_number")
    return Extraction(None, "none")


def _bare_answer(text: str) -> str | None:
    """A response that is only a final answer ("\\frac{1}{2}", "$x = 5$", "(1, 2)", "even"), not prose."""
    text = text.strip()
    words = re.sub(r"\\[a-zA-Z]+(?:\{[^{}]*\})?", " ", text)  # LaTeX commands and \\text{...} are no prose
    if not text or len(text) > 150 or "\n" in text:
        return None
    if re.search(r"[A-Za-z]{3,}", words) and re.search(r"\s", text.strip("$ ")):
        return None  # a word beside the answer ("Answer \\( 9 \\)"): the sentence rules read it
    return text
