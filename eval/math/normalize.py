"""String normalisation of a final answer (LaTeX allowed) before any comparison.

Pure string work, linear-ish in the input and never evaluating anything, so it is safe on any input.
It removes presentation (`\\left`, `\\!`, `\\dfrac`, `\\text{}` units, degrees, percent, dollar signs,
thousands separators, trailing `.0`, `x=` prefixes) and keeps meaning: LaTeX commands such as `\\sec x`
keep their argument, and nothing is scaled (`7.2\\%` is `7.2`, never `0.072`).
"""

from __future__ import annotations

import re
from fractions import Fraction

from eval.math.extract import last_boxed, matching_brace

MAX_ANSWER_CHARS = 4000  # longer "answers" are cut: they are runaway generations, not answers

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00f7": "\\div ", "\u00b0": "^\\circ",
    "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt", "\u2264": "\\leq ", "\u2265": "\\geq ",
    "\u2260": "\\neq ", "\u00b7": "\\cdot ", "\u2009": " ", "\u00a0": " ",
    "\u00b2": "^2", "\u00b3": "^3", "\u27e8": "(", "\u27e9": ")", "\u00b1": "\\pm ", "\u2213": "\\mp ",
}
_RENAMES = [
    (r">=", r"\\geq "), (r"<=", r"\\leq "), (r"!=", r"\\neq "),
    (r"\\[dtc]frac", r"\\frac"), (r"\\geqslant", r"\\geq"), (r"\\leqslant", r"\\leq"), (r"\\[dt]binom", r"\\binom"), (r"\\le(?![a-zA-Z])", r"\\leq"),
    (r"\\ge(?![a-zA-Z])", r"\\geq"), (r"\\ne(?![a-zA-Z])", r"\\neq"), (r"\\lt(?![a-zA-Z])", "<"),
    (r"\\gt(?![a-zA-Z])", ">"), (r"\\bmatrix|\\pmatrix", ""), (r"\{[bpvBV]?matrix\}", "{matrix}"),
    (r"\\infinity|\\inf(?![a-zA-Z])", r"\\infty"), (r"\\emptyset|\\varnothing", r"\\emptyset"),
    (r"\\langle(?![a-zA-Z])", "("), (r"\\rangle(?![a-zA-Z])", ")"), (r"\\varepsilon", r"\\epsilon"), (r"\\varphi", r"\\phi"), (r"\\dots|\\cdots|\\ldots", r"\\dots"),
]
_DROP = re.compile(
    r"\\left(?![a-zA-Z])\.?|\\right(?![a-zA-Z])\.?|\\[bB]ig[glr]?(?![a-zA-Z])|\\displaystyle|\\limits"
    r"|(?<!\\)\\[;: ]|\\quad|\\qquad|\\hspace\{[^}]*\}|\\mathstrut|\\nonumber"
)
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|\^\s*\{\s*o\s*\}")
_PERCENT = re.compile(r"\\%|%|\\text\{\s*percent\s*\}")
_WRAPPERS = ("text", "textnormal", "textbf", "textit", "textrm", "textsf", "texttt", "mbox", "mathrm", "mathbf",
             "mathit", "mathsf", "mathtt", "mathbb", "boldsymbol", "operatorname", "rm", "bf")
_TEXT_COMMANDS = ("text", "textnormal", "textbf", "textit", "textrm", "textsf", "mbox", "mathrm")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
_UNIT_WORDS = re.compile(r"^([-+]?[\d.,/]+(?:\\sqrt\{\d+\}|\\pi)?)\s*([a-zA-Z][a-zA-Z ]*[a-zA-Z])(\^[23])?$")
# A whole number written right before a numeric fraction is a mixed number ("1\\frac{4}{5}" = 9/5), unless the
# digits belong to something else (an exponent, a subscript, a decimal, a name).
_MIXED_NUMBER = re.compile(r"(?<![\^_\w}.])(\d{1,50})\\frac\{(\d{1,50})\}\{(\d{1,50})\}")
_BASE_SUBSCRIPT = re.compile(r"([0-9A-Z]{1,200})_\{?(\d{1,2})\}?")
# Words after a number that are mathematics, not units ("2 pi" is 2*pi).
_MATH_WORDS = {"pi", "sqrt", "ln", "log", "sin", "cos", "tan", "sec", "csc", "cot", "exp", "inf", "infinity"}
# A closing condition is not part of the answer: "\\frac{\\pi}{6} + k\\pi \\text{ for } k \\in \\mathbb{Z}".
_CONDITION = re.compile(r"(?:,|\s)*(?:\\text\{\s*(?:for|where|with|when)\b[^{}]*\}|\\forall(?![a-zA-Z])).*$"
                        r"|(?:,|\s)*[a-zA-Z]\s*\\in\s*\\mathbb\{Z\}\s*$", re.DOTALL)
# A matrix inside brackets (`\\left[\\begin{array}{cc}...\\end{array}\\right]`): the brackets are presentation.
_BRACKETED_MATRIX = re.compile(r"^[\[(]\s*(\\begin\{(matrix|array)\}.*\\end\{\2\})\s*[\])]$", re.DOTALL)
_VAR_PREFIX = re.compile(r"^\s*\\?[a-zA-Z]+(?:_\{?[a-zA-Z0-9]+\}?)?(?:\([a-z]\))?\s*(?:=|\\in)\s*(?![=<>])")


def _apply_unicode(text: str) -> str:
    return "".join(_UNICODE.get(ch, ch) for ch in text)


def strip_math_delimiters(text: str) -> str:
    text = text.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            text = text[len(left) : len(text) - len(right)].strip()
    return text


def _unwrap_commands(text: str, names: tuple[str, ...]) -> str:
    """`\\text{abc}` -> `abc` for each named command, innermost content kept, braces matched."""
    pattern = re.compile(r"\\(" + "|".join(names) + r")(?![a-zA-Z])\s*\{")
    for _ in range(50):  # bounded: each pass removes one wrapper
        m = pattern.search(text)
        if not m:
            break
        open_pos = m.end() - 1
        close = matching_brace(text, open_pos)
        if close == -1:
            text = text[: m.start()] + text[open_pos + 1 :]
            continue
        text = text[: m.start()] + text[open_pos + 1 : close] + text[close + 1 :]
    return text


def _drop_trailing_text_units(text: str) -> str:
    """`5\\text{ cm}^2` -> `5`: a trailing text block after some mathematics is a unit or a remark."""
    for _ in range(5):
        m = re.search(r"\\(" + "|".join(_TEXT_COMMANDS) + r")\s*\{", text)
        if not m or m.start() == 0:
            return text
        close = matching_brace(text, m.end() - 1)
        if close == -1:
            return text
        tail = text[close + 1 :].strip()
        if tail and not re.fullmatch(r"\^\{?\d\}?\.?", tail):
            return text  # text in the middle ("1 \text{ or } 2") is content, not a unit
        head = text[: m.start()].rstrip()
        if not head or head[-1] in "=,(+-":
            return text
        text = head
    return text


def _brace_short_arguments(text: str) -> str:
    """`\\frac34` -> `\\frac{3}{4}`, `\\sqrt3` -> `\\sqrt{3}`, `\\frac{1}2` -> `\\frac{1}{2}`."""
    text = re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", text)
    # one digit, letter or argument-free symbol command (\\frac\\pi4); never a partial command name
    token = r"([0-9a-zA-Z]|\\(?:pi|alpha|beta|gamma|theta|phi|infty)(?![a-zA-Z]))"
    text = re.sub(rf"\\frac\s*{token}\s*{token}", r"\\frac{\1}{\2}", text)
    text = re.sub(rf"\\frac\s*{token}\s*\{{", r"\\frac{\1}{", text)
    text = re.sub(rf"\\frac\s*(\{{[^{{}}]*\}})\s*{token}", r"\\frac\1{\2}", text)
    text = re.sub(r"\^\{(-?[0-9a-zA-Z])\}", r"^\1", text)
    return re.sub(r"_\{([0-9a-zA-Z])\}", r"_\1", text)


def _collapse_spaces(text: str) -> str:
    """Remove spaces, except one after a command that is followed by a letter (`\\sec x` stays)."""
    text = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z0-9])", "\\1\x00", text)
    text = re.sub(r"\s+", "", text)
    return text.replace("\x00", " ")


def _canonical_number(text: str) -> str:
    """`+05.50` -> `5.5`, `.5` -> `0.5`, `3.0` -> `3` for a whole-string plain decimal; else unchanged."""
    if not _PLAIN_NUMBER.fullmatch(text) or len(text) > 200:
        return text
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("+-")
    if "." in body:
        body = body.rstrip("0").rstrip(".")
    body = body.lstrip("0") or "0"
    if body.startswith("."):
        body = "0" + body
    return "0" if body == "0" else sign + body


def _mixed_number(text: str) -> str:
    """`1\\frac{4}{5}` -> `\\frac{9}{5}`: a mixed number is a sum, not a product."""

    def improper(m: re.Match[str]) -> str:
        whole, num, den = int(m.group(1)), int(m.group(2)), int(m.group(3))
        return m.group(0) if den == 0 else f"\\frac{{{whole * den + num}}}{{{den}}}"

    return _MIXED_NUMBER.sub(improper, text)


_REPEATING = re.compile(r"(-?)(\d{0,50})\.(\d{0,50})\\(?:overline|bar)\{(\d{1,50})\}")


def _repeating_decimal(text: str) -> str:
    """`0.1\\overline{6}` -> `\\frac{1}{6}`: a repeating decimal is an exact rational."""

    def exact(m: re.Match[str]) -> str:
        whole, fixed, repeat = m.group(2) or "0", m.group(3), m.group(4)
        value = Fraction(int(whole)) + Fraction(int(fixed or "0"), 10 ** len(fixed))
        value += Fraction(int(repeat), 10 ** len(fixed) * (10 ** len(repeat) - 1))
        value = -value if m.group(1) else value
        return f"\\frac{{{value.numerator}}}{{{value.denominator}}}" if value.denominator != 1 else str(value)

    return _REPEATING.sub(exact, text)


def strip_variable_prefix(text: str) -> str:
    """`x=5` -> `5`, `f(x) = 2x` -> `2x`, `x \\in [1,2]` -> `[1,2]`; equations with more structure stay."""
    m = _VAR_PREFIX.match(text)
    if not m:
        return text
    rest = text[m.end() :]
    if not rest or "=" in rest:
        return text
    return rest


def normalize_answer(answer: str) -> str:
    """Canonical string of one final answer: equal strings here mean equal answers."""
    text = _apply_unicode(str(answer)[:MAX_ANSWER_CHARS]).strip()
    boxed, _ = last_boxed(text)
    if boxed is not None and text.lstrip("$ ").startswith(("\\boxed", "\\fbox")):
        text = boxed
    text = strip_math_delimiters(text)
    text = re.sub(r"\{\s*,\s*\}", ",", text.replace("\\$", "").replace("$", ""))
    if "\\begin" not in text:
        text = re.sub(r"\\\\(?=[a-zA-Z])", r"\\", text)  # "\\\\frac": LaTeX escaped once more (JSON, code)
    if re.fullmatch(r"\s*-?\d{1,3}(?:,\s+\d{3})+\s*", text):
        text = text.replace(",", ";")  # "32, 349" lists two numbers; "32,349" and "32,\\!349" are one
    for pattern, repl in _RENAMES:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"(?<!\\)\\[,!]", "", _DROP.sub(" ", text))  # thin spaces: "11,\\!111", "1\\,000"
    text = _CONDITION.sub("", text.strip())
    text = re.sub(r"(?<!\\)\\(?=\d)", "", text)  # "\\15": a currency sign that lost its dollar
    text = _DEGREES.sub("", text)
    text = _PERCENT.sub("", text)
    text = _drop_trailing_text_units(text.strip())
    text = _unwrap_commands(text, _WRAPPERS)
    text = text.replace("~", " ").strip()
    if text.startswith("{") and matching_brace(text, 0) == len(text) - 1:
        text = text[1:-1].strip()  # a bare group around the whole answer is presentation
    # "1 or 2", "19\\text{and}43", "7, -2, and -5": the list "1,2" (a word "and" only between numbers)
    text = re.sub(r"\s+(?:or|and)\s+|(?<=[\d}),])\s*(?:or|and)\s*(?=[-+\d\\(])", ",", text)
    text = re.sub(r"\s*\.$", "", text).strip()  # sentence full stop
    unit_match = _UNIT_WORDS.match(text)
    if unit_match and unit_match.group(2).strip().lower() not in _MATH_WORDS:  # "10 inches" -> "10"
        text = unit_match.group(1)
    text = _collapse_spaces(text)
    text = _BRACKETED_MATRIX.sub(r"\1", text)
    text = _brace_short_arguments(text)
    text = _mixed_number(_repeating_decimal(text))
    base = _BASE_SUBSCRIPT.fullmatch(text)
    if base:  # "52_8": the base is given by the question; the digits are the answer
        text = base.group(1)
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if re.fullmatch(r"\(([A-Ea-e])\)", text):  # multiple-choice "(C)" -> "C"
        text = text[1]
    return _canonical_number(text)
