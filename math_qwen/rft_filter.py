"""Which sampled solutions rejection sampling keeps (RFT, Yuan et al. 2023), and why the others go.

Per problem, in a fixed order (the gold solution first, then samples by index), a sample is kept when
- its final answer is in the trained format (`#### n` for GSM8K-style, `\\boxed{}` for MATH-style) and
  equals the gold answer by `eval.math.grader.is_equiv`,
- every calculator annotation `<<a*b=c>>` in it computes (math_qwen.calculator), and
- it is a new reasoning path: its equation list (non-empty) and its normalised text differ from every
  solution kept before it (the gold included, which is always kept).
The order makes the result deterministic: the same samples give the same kept set, whatever else runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from eval.math.extract import extract_answer
from eval.math.grader import is_equiv
from math_qwen.calculator import check_annotations

# Extraction rules of eval.math.extract that mean "the answer in the format the model is trained to write".
ANSWER_FORMAT_RULES = {"gsm8k": {"hashes"}, "math": {"boxed", "fbox"}}
REASONS = ("kept", "no_answer", "wrong_answer", "bad_calculator", "duplicate_equations", "duplicate_text")


@dataclass(frozen=True)
class Verdict:
    sample_index: int
    reason: str  # one of REASONS
    prediction: str | None
    equations: tuple[str, ...]

    @property
    def kept(self) -> bool:
        return self.reason == "kept"


def normalize_text(solution: str) -> str:
    """Case, whitespace and trailing punctuation do not make a new path."""
    return re.sub(r"\s+", " ", solution).strip().rstrip(".").lower()


def judge(completion: str, gold: str, benchmark: str) -> tuple[str, str | None, tuple[str, ...]]:
    """(reason before dedup: kept / no_answer / wrong_answer / bad_calculator, prediction, equation list)."""
    extraction = extract_answer(completion, benchmark)
    check = check_annotations(completion)
    if extraction.answer is None or extraction.rule not in ANSWER_FORMAT_RULES[benchmark]:
        return "no_answer", extraction.answer, check.equations
    if not is_equiv(extraction.answer, gold):
        return "wrong_answer", extraction.answer, check.equations
    if not check.valid:
        return "bad_calculator", extraction.answer, check.equations
    return "kept", extraction.answer, check.equations


class PathSet:
    """Reasoning paths kept so far for one problem: equation lists and normalised texts."""

    def __init__(self) -> None:
        self.equations: set[tuple[str, ...]] = set()
        self.texts: set[str] = set()

    def duplicate_reason(self, solution: str, equations: tuple[str, ...]) -> str | None:
        if equations and equations in self.equations:
            return "duplicate_equations"
        if normalize_text(solution) in self.texts:
            return "duplicate_text"
        return None

    def add(self, solution: str, equations: tuple[str, ...]) -> None:
        if equations:
            self.equations.add(equations)
        self.texts.add(normalize_text(solution))


def filter_samples(completions: list[str], gold_solution: str, gold: str, benchmark: str) -> list[Verdict]:
    """A verdict for each completion (same order); the gold solution is the first path and always kept."""
    paths = PathSet()
    paths.add(gold_solution, check_annotations(gold_solution).equations)
    verdicts = []
    for index, completion in enumerate(completions):
        reason, prediction, equations = judge(completion, gold, benchmark)
        if reason == "kept":
            reason = paths.duplicate_reason(completion, equations) or "kept"
            if reason == "kept":
                paths.add(completion, equations)
        verdicts.append(Verdict(index, reason, prediction, equations))
    return verdicts


def count_reasons(verdicts: list[Verdict]) -> dict[str, int]:
    counts = Counter(v.reason for v in verdicts)
    return {r: counts.get(r, 0) for r in REASONS}
