"""Training problems for rejection sampling, read from the SFT chat JSONL the model was trained on.

A problem is a conversation's prompt (every turn before its last assistant turn, so sampling sees exactly the
training prompt), its gold solution (that assistant turn) and the gold final answer parsed from it
(`#### n` GSM8K-style, else the last `\\boxed{}` MATH-style). A conversation without a parsable gold answer
cannot be graded: it is reported (file:line and reason) and not sampled.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from eval.math.extract import last_boxed, normalize_number_text
from shared.chat import ChatFormatError, read_jsonl, validate_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    task_id: str  # "<file name>:<line>": stable across runs of the same files
    prompt: list[dict[str, str]]
    gold_solution: str
    gold: str
    benchmark: str  # gsm8k or math: which extraction and answer format apply


@dataclass
class ProblemSet:
    problems: list[Problem] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    skipped_where: list[str] = field(default_factory=list)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.skipped_where.append(f"{where}: {reason}")


def gold_of(solution: str) -> tuple[str, str] | None:
    """(gold answer, benchmark) of a reference solution, or None when it has no parsable final answer."""
    if "####" in solution:
        answer = normalize_number_text(solution.rsplit("####", 1)[1].strip())
        return (answer, "gsm8k") if answer else None
    boxed, _ = last_boxed(solution)
    if boxed is not None and boxed.strip():
        return boxed.strip(), "math"
    return None


def read_problems(files: list[Path], limit: int | None = None) -> ProblemSet:
    """Problems of chat JSONL files, in file order (the first `limit` gradable ones)."""
    found = ProblemSet()
    for path in files:
        for line, obj in read_jsonl(path, skip_malformed=True):
            where = f"{path}:{line}"
            if limit is not None and len(found.problems) >= limit:
                return found
            try:
                if isinstance(obj, ChatFormatError):
                    raise obj
                messages = validate_messages(obj, where)
            except ChatFormatError as e:
                found.skip("invalid_conversation", str(e))
                continue
            last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
            gold = gold_of(messages[last]["content"])
            if gold is None:
                found.skip("no_parsable_gold_answer", where)
                continue
            found.problems.append(Problem(f"{Path(path).name}:{line}", messages[:last], messages[last]["content"], *gold))
    if found.skipped:
        log.warning("rejection sampling skips %s; first: %s", dict(found.skipped), found.skipped_where[:3])
    return found
