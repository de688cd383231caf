"""Execution-feedback SFT data: from verified samples to chat JSONL with provenance and a report per language.

Input: per problem, the sampled answers with their sandbox verdicts (eval/code/feedback.py ran them). Kept: a
passing sample whose normalised code is new for its problem (comments, blank lines and layout do not make a
solution new) and whose conversation shares no n-gram with an evaluation set (decontaminate.py). Every other
sample is dropped with one reason: its verdict status (failed, timeout, compile_error, ...), `duplicate` or
`contaminated`. The report counts, per language: problems, samples, passed, pass rate, problems solved, kept
and dropped by reason.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_recipes.decontaminate import ContaminationIndex

_C_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_HASH_COMMENTS = re.compile(r"#[^\n]*")
_FENCED = re.compile(r"```[^\n]*\n.*?```", re.S)


def normalise_code(code: str, language: str) -> str:
    """A form in which two solutions that differ only in comments, blank lines or layout are equal: Python's
    AST dump (docstrings and comments gone, names and constants kept), else the code without comments and with
    all whitespace runs collapsed."""
    if language == "python":
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError):
            return " ".join(_HASH_COMMENTS.sub("", code).split())
        for node in ast.walk(tree):  # a docstring is documentation, not a different solution
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return ast.dump(tree, annotate_fields=False)
    return " ".join(_C_COMMENTS.sub(" ", code).split())


def answer_text(raw: str) -> str:
    """The model's answer up to the end of its first code block (what follows it is not trained on)."""
    block = _FENCED.search(raw)
    return raw[:block.end()].strip() if block else raw.strip()


@dataclass
class LanguageReport:
    problems: int = 0
    samples: int = 0
    passed: int = 0
    problems_solved: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"problems": self.problems, "samples": self.samples, "passed": self.passed,
                "pass_rate": round(self.passed / self.samples, 4) if self.samples else None,
                "problems_solved": self.problems_solved, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}


def select_verified(records: list[dict[str, Any]], index: ContaminationIndex | None, model: str
                    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(chat conversations, report) from per-problem records {problem, prompt, samples: [{index, raw, completion,
    status, passed}], n_tests}; deterministic in the order of `records` and of each problem's samples."""
    per_lang: dict[str, LanguageReport] = defaultdict(LanguageReport)
    kept: list[dict[str, Any]] = []
    for rec in records:
        problem, lang = rec["problem"], rec["problem"]["language"]
        rep = per_lang[lang]
        rep.problems += 1
        seen: set[str] = set()
        solved = False
        for s in rec["samples"]:
            rep.samples += 1
            if not s["passed"]:
                rep.dropped[s["status"]] += 1
                continue
            rep.passed += 1
            solved = True
            key = normalise_code(s["completion"], lang)
            if key in seen:
                rep.dropped["duplicate"] += 1
                continue
            seen.add(key)
            answer = answer_text(s["raw"])
            hit = index.matches(rec["prompt"] + "\n" + answer) if index is not None else None
            if hit is not None:
                rep.dropped[f"contaminated:{hit[0]}"] += 1
                continue
            rep.kept += 1
            kept.append({"messages": [{"role": "user", "content": rec["prompt"]},
                                      {"role": "assistant", "content": answer}],
                         "provenance": {"problem": problem["task_id"], "source": problem.get("source", ""),
                                        "language": lang, "model": model, "sample_index": s["index"],
                                        "tests_passed": rec.get("n_tests"), "status": s["status"]}})
        rep.problems_solved += solved
    total = LanguageReport()
    for r in per_lang.values():
        for name in ("problems", "samples", "passed", "problems_solved", "kept"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
        total.dropped.update(r.dropped)
    report = {"model": model, "languages": {k: v.to_dict() for k, v in sorted(per_lang.items())},
              "total": total.to_dict()}
    return kept, report


def write_outputs(out_dir: Path, kept: list[dict[str, Any]], report: dict[str, Any]) -> None:
    """sft.jsonl and report.json, each written whole and renamed (never seen half-written)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("sft.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in kept)),
                       ("report.json", json.dumps(report, indent=2) + "\n")):
        tmp = out_dir / f"{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_dir / name)
