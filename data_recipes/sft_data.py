"""SFT data as chat JSONL (`{"messages": [...]}`): converters from GSM8K-style, MATH-style and code
instruction records, decontaminated against the evaluation sets, and a builder of small code instruction
data from the standard library's documented functions (the tiny code SFT default).

Math answers keep the format the evaluator extracts: GSM8K-style solutions end with `#### <n>`, MATH-style
ones contain `\\boxed{...}` (appended from an `answer` field when a solution lacks it).
"""

from __future__ import annotations

import ast
import json
import os
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from data_recipes.decontaminate import ContaminationIndex

GSM8K_SYSTEM = ("You are a helpful assistant. Solve the math word problem step by step, then give the final "
                "numeric answer on its own line as '#### <answer>'.")  # fmt: skip
MATH_SYSTEM = ("You are a helpful assistant. Solve the math problem step by step and put the final answer "
               "in \\boxed{}.")  # fmt: skip
CODE_SYSTEM = "You are a helpful coding assistant. Answer with the complete code in a fenced code block."

INSTRUCTION_FIELDS = ("instruction", "prompt", "question", "query", "problem")
RESPONSE_FIELDS = ("response", "output", "completion", "answer", "solution", "code")


@dataclass
class ConversionStats:
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped_where: list[str] = field(default_factory=list)  # file:line or row of each skipped record
    decontaminated: list[dict] = field(default_factory=list)  # {"where", "benchmark"}

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.skipped_where.append(f"{where}: {reason}")

    def to_dict(self) -> dict:
        return {"written": self.written, "skipped": dict(sorted(self.skipped.items())),
                "skipped_where": self.skipped_where, "decontaminated": self.decontaminated}  # fmt: skip


def chat(system: str, user: str, assistant: str) -> dict:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]}  # fmt: skip


def gsm8k_to_chat(record: dict, system: str = GSM8K_SYSTEM) -> dict:
    answer = record["answer"].strip()
    if not re.search(r"^####\s*\S", answer, re.M):
        raise ValueError("GSM8K-style answer has no '#### <answer>' line")
    return chat(system, record["question"].strip(), answer)


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (balanced braces), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def math_to_chat(record: dict, system: str = MATH_SYSTEM) -> dict:
    solution = record["solution"].strip()
    if last_boxed(solution) is None:
        answer = record.get("answer")
        if not answer:
            raise ValueError("MATH-style solution has no \\boxed{} and the record no answer")
        solution += f"\n\nThe final answer is $\\boxed{{{answer}}}$."
    return chat(system, record["problem"].strip(), solution)


def _first_field(record: dict, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def code_to_chat(record: dict, system: str = CODE_SYSTEM) -> dict:
    instruction = _first_field(record, INSTRUCTION_FIELDS)
    response = _first_field(record, RESPONSE_FIELDS)
    if instruction is None or response is None:
        raise ValueError("record has no instruction-like or no response-like field")
    return chat(system, instruction.strip(), response.strip())


CONVERTERS = {"gsm8k": gsm8k_to_chat, "math": math_to_chat, "code": code_to_chat}


def read_jsonl_records(path: Path, stats: ConversionStats) -> Iterator[tuple[str, dict]]:
    """(where, record) for each good line; malformed lines are counted with file:line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                stats.skip("malformed_jsonl", where)
                continue
            if not isinstance(record, dict):
                stats.skip("not_an_object", where)
                continue
            yield where, record


def read_records(source: str, stats: ConversionStats, split: str = "train",
                 config: str | None = None) -> Iterator[tuple[str, dict]]:  # fmt: skip
    """A local JSONL file, or a hub dataset name (streamed)."""
    path = Path(os.path.expanduser(source))
    if path.exists():
        yield from read_jsonl_records(path, stats)
        return
    import datasets

    for row, record in enumerate(datasets.load_dataset(source, config, split=split, streaming=True)):
        yield f"{source}[{row}]", dict(record)


def contamination_text(conversation: dict) -> str:
    return "\n".join(m["content"] for m in conversation["messages"] if m["role"] != "system")


def convert(kind: str, sources: list[str], out_path: str | Path, index: ContaminationIndex | None = None,
            system: str | None = None, split: str = "train") -> ConversionStats:  # fmt: skip
    """Convert records of `kind` (gsm8k, math, code) from files/hub sets into one chat JSONL file."""
    converter = CONVERTERS[kind]
    stats = ConversionStats()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w") as out:
        for source in sources:
            for where, record in read_records(source, stats, split):
                try:
                    conversation = converter(record, system) if system else converter(record)
                except (KeyError, TypeError, ValueError) as e:
                    stats.skip(f"unconvertible ({type(e).__name__})", where)
                    continue
                hit = index.matches(contamination_text(conversation)) if index is not None else None
                if hit is not None:
                    stats.decontaminated.append({"where": where, "benchmark": hit[0], "shared_ngrams": hit[1]})
                    continue
                out.write(json.dumps(conversation, ensure_ascii=False) + "\n")
                stats.written += 1
    tmp.replace(out_path)
    return stats


# ----------------------------------------------------------------------------- code SFT from the stdlib


def documented_functions(path: Path, max_lines: int = 40) -> Iterator[tuple[str, str, str, str]]:
    """(name, signature, docstring summary, source) of public top-level functions with a docstring."""
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node)
        code = ast.get_source_segment(source, node)
        if not doc or not code or node.decorator_list or code.count("\n") + 1 > max_lines:
            continue
        summary = doc.strip().split("\n\n")[0].strip()
        if len(summary) < 20:
            continue
        yield node.name, f"({ast.unparse(node.args)})", summary, code


def stdlib_code_instructions(max_examples: int, index: ContaminationIndex | None = None,
                             exclude_names: set[str] | None = None) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """Instruction records from stdlib functions: (kept, removed-with-reason). Sorted walk: deterministic."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip_parts = {"test", "tests", "site-packages", "idlelib", "lib2to3", "__pycache__", "ensurepip"}
    kept, removed = [], []
    for path in sorted(root.rglob("*.py")):
        if skip_parts & set(path.relative_to(root).parts):
            continue
        for name, sig, summary, code in documented_functions(path):
            record = {"instruction": f"Write a Python function `{name}{sig}` that: {summary}",
                      "response": f"```python\n{code}\n```", "origin": f"{path.relative_to(root)}:{name}"}  # fmt: skip
            if exclude_names and name in exclude_names:
                removed.append({"origin": record["origin"], "reason": "name_of_an_evaluation_problem"})
                continue
            hit = index.matches(record["instruction"] + "\n" + code) if index is not None else None
            if hit is not None:
                removed.append({"origin": record["origin"], "reason": f"overlap:{hit[0]}"})
                continue
            kept.append(record)
            if len(kept) >= max_examples:
                return kept, removed
    return kept, removed


def split_code_stages(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """Two distinct mixtures: stage 2 = short functions (at most 12 lines, HumanEval-sized tasks), stage 1 =
    the longer rest (broad)."""
    stage1: list[dict] = []
    stage2: list[dict] = []
    for r in records:
        (stage2 if r["response"].count("\n") - 1 <= 12 else stage1).append(r)
    return stage1, stage2


def write_chat_jsonl(records: list[dict], path: Path, system: str = CODE_SYSTEM) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        for r in records:
            f.write(json.dumps(chat(system, r["instruction"], r["response"]), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return len(records)


def build_code_sft_tiny(out_dir: str | Path, max_examples: int = 3000, index: ContaminationIndex | None = None,
                        exclude_names: set[str] | None = None) -> dict[str, Path]:  # fmt: skip
    """stage1.jsonl / stage2.jsonl chat files of stdlib function-writing tasks, plus removed.jsonl."""
    out = Path(out_dir)
    records, removed = stdlib_code_instructions(max_examples, index, exclude_names)
    stage1, stage2 = split_code_stages(records)
    paths = {"stage1": out / "stage1.jsonl", "stage2": out / "stage2.jsonl", "removed": out / "removed.jsonl"}
    write_chat_jsonl(stage1, paths["stage1"])
    write_chat_jsonl(stage2, paths["stage2"])
    paths["removed"].write_text("".join(json.dumps(r) + "\n" for r in removed))
    return paths


def main(argv: list[str] | None = None) -> None:
    import argparse

    from data_recipes.config import DecontaminationConfig
    from data_recipes.decontaminate import build_index
    from shared.config import load_config

    parser = argparse.ArgumentParser(description="Convert records into chat JSONL for SFT")
    parser.add_argument("kind", choices=[*CONVERTERS, "stdlib-code"])
    parser.add_argument("--input", nargs="*", default=[], help="JSONL files or hub dataset names")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", required=True, help="output JSONL (stdlib-code: a folder)")
    parser.add_argument("--decontamination", default=None,
                        help="YAML of a DecontaminationConfig (default: the standard benchmarks, files under "
                             "$QS_EVAL_DATA, else the hub)")  # fmt: skip
    args = parser.parse_args(argv)
    index = build_index(load_config(DecontaminationConfig, args.decontamination))
    if args.kind == "stdlib-code":
        print(json.dumps({k: str(v) for k, v in build_code_sft_tiny(args.out, index=index).items()}, indent=1))
        return
    stats = convert(args.kind, args.input, args.out, index, split=args.split)
    print(json.dumps({**stats.to_dict(), "skipped_where": stats.skipped_where[:20]}, indent=1))


if __name__ == "__main__":
    main()
