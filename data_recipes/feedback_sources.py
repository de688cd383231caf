"""Problems with tests for execution feedback, from their own schemas to one shape (eval/code/feedback.py).

Kinds (each reads a local JSONL / JSON / parquet file or a hub dataset of that schema):
- `humaneval`: HumanEval-format records (task_id, prompt, entry_point, test with check(candidate)); the tiny
  generator's problems and HumanEvalPack-format sets in any of the six languages (`language`).
- `mbpp`: Google's MBPP (text, code, test_list, challenge_test_list, task_id). Its splits are task-id ranges
  (prompt 1-10, test 11-510, validation 511-600, train 601-974); `test` is refused: it is an evaluation set.
  The prompt shows the task and the first assert (it names the function); the other asserts stay hidden.
- `apps` (codeparrot/apps, MIT) and `taco` (BAAI/TACO, Apache-2.0): question, starter_code, input_output (a
  JSON string: inputs, outputs, and fn_name for call-based problems). Standard-input problems become `stdio`
  problems; call-based ones are counted as skipped (their harness is not implemented here).
- `code_contests` (deepmind/code_contests, CC-BY-4.0): description, public_tests, private_tests, generated_tests
  ({input: [...], output: [...]}). The statement already shows the public examples; private and generated tests
  are hidden.

The prompt a problem carries is only what the model may see; tests live in `test` and never enter the prompt.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
KINDS = ("humaneval", "mbpp", "apps", "taco", "code_contests")


@dataclass
class FeedbackSourceConfig:
    kind: str = "humaneval"
    name: str = ""  # provenance label (default: kind)
    path: str = ""  # local file (JSONL, JSON array, parquet) ...
    hub_name: str = ""  # ... or a hub dataset, read when path is empty
    hub_config: str | None = None
    split: str = "train"  # hub split; for mbpp the task-id ranges above (several: "train,validation,prompt")
    language: str = "python"  # humaneval kind: the language of the records
    max_problems: int = 0  # 0 = all
    max_tests: int = 50  # stdio problems: at most this many cases (public first)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"feedback source kind must be one of {KINDS}, not {self.kind!r}")
        if not self.path and not self.hub_name:
            raise ValueError(f"feedback source {self.name or self.kind}: set path or hub_name")
        if self.kind == "mbpp" and "test" in self.split.split(","):
            raise ValueError("MBPP's test split is an evaluation set: use train, validation and prompt")


@dataclass
class LoadedProblems:
    problems: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count


def read_rows(cfg: FeedbackSourceConfig) -> Iterable[dict[str, Any]]:
    if cfg.path:
        path = Path(cfg.path)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            yield from pq.read_table(path).to_pylist()
            return
        from shared.jsonl import read_jsonl_objects

        if path.suffix == ".json":
            yield from json.loads(path.read_text(encoding="utf-8"))
            return
        yield from read_jsonl_objects(path, error=ValueError)
        return
    import datasets

    # MBPP's split names are task-id ranges of the full set: read the hub splits of those names
    for split in cfg.split.split(",") if cfg.kind == "mbpp" else [cfg.split]:
        yield from datasets.load_dataset(cfg.hub_name, cfg.hub_config, split=split.strip(), streaming=True)


def _json_field(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value.strip() else value


def from_humaneval(row: dict, cfg: FeedbackSourceConfig, i: int) -> dict | None:
    return {**row, "task_id": str(row["task_id"]), "language": row.get("language", cfg.language), "style": "function"}


def from_mbpp(row: dict, cfg: FeedbackSourceConfig, i: int) -> dict | None:
    tid = int(row["task_id"])
    if not any(lo <= tid <= hi for s in cfg.split.split(",") for lo, hi in [MBPP_SPLITS[s.strip()]]):
        return None
    tests = list(row["test_list"]) + list(row.get("challenge_test_list") or [])
    setup = row.get("test_setup_code") or ""
    prompt = f"{row['text']}\nYour code should pass this test:\n{row['test_list'][0]}"
    return {"task_id": f"Mbpp/{tid}", "language": "python", "style": "program", "prompt": prompt,
            "test": "\n".join([setup, *tests]).strip() + "\n"}


def _stdio_cases(inputs: list, outputs: list, limit: int) -> list[dict[str, str]]:
    def text(v: Any) -> str:
        return "\n".join(map(str, v)) if isinstance(v, list) else str(v)

    return [{"input": text(a), "output": text(b)} for a, b in zip(inputs, outputs, strict=False)][:limit]


def from_apps(row: dict, cfg: FeedbackSourceConfig, i: int) -> dict | str:
    io = _json_field(row.get("input_output")) or {}
    if not io.get("inputs"):
        return "no_tests"
    if io.get("fn_name"):
        return "call_based_not_supported"
    statement = row["question"] + (f"\n\n{row['starter_code']}" if row.get("starter_code") else "")
    tid = row.get("problem_id", row.get("name", i))
    return {"task_id": f"{cfg.name or cfg.kind}/{tid}", "language": "python", "style": "stdio", "prompt": statement,
            "test": _stdio_cases(io["inputs"], io["outputs"], cfg.max_tests)}


def from_code_contests(row: dict, cfg: FeedbackSourceConfig, i: int) -> dict | str:
    inputs: list = []
    outputs: list = []
    for key in ("public_tests", "private_tests", "generated_tests"):
        tests = row.get(key) or {}
        inputs += list(tests.get("input") or [])
        outputs += list(tests.get("output") or [])
    if not inputs:
        return "no_tests"
    return {"task_id": f"{cfg.name or cfg.kind}/{row.get('name', i)}", "language": "python", "style": "stdio",
            "prompt": row["description"], "test": _stdio_cases(inputs, outputs, cfg.max_tests)}


CONVERTERS = {"humaneval": from_humaneval, "mbpp": from_mbpp, "apps": from_apps, "taco": from_apps,
              "code_contests": from_code_contests}


def load_feedback_problems(cfg: FeedbackSourceConfig) -> LoadedProblems:
    """The source's problems in file order (at most max_problems), with skip counts by reason."""
    cfg.validate()
    out = LoadedProblems()
    convert = CONVERTERS[cfg.kind]
    for i, row in enumerate(read_rows(cfg)):
        if cfg.max_problems and len(out.problems) >= cfg.max_problems:
            break
        try:
            problem = convert(dict(row), cfg, i)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            out.skipped[f"malformed ({type(e).__name__})"] += 1
            continue
        if problem is None:
            continue  # not in the selected split
        if isinstance(problem, str):
            out.skipped[problem] += 1
            continue
        problem["source"] = cfg.name or cfg.kind
        out.problems.append(problem)
    return out
