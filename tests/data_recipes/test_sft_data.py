import gzip
import json

from data_recipes.config import DecontaminationConfig, standard_benchmarks
from data_recipes.decontaminate import build_index
from data_recipes.sft_data import (
    build_code_sft_tiny,
    convert,
    last_boxed,
    split_code_stages,
    stdlib_code_instructions,
)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_gsm8k_conversion_counts_bad_lines(tmp_path):
    src = tmp_path / "qa.jsonl"
    src.write_text(
        json.dumps({"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"}) + "\n"
        + "{broken\n"
        + json.dumps({"question": "No final line?", "answer": "it is 4"}) + "\n"
    )  # fmt: skip
    stats = convert("gsm8k", [str(src)], tmp_path / "chat.jsonl")
    (row,) = read(tmp_path / "chat.jsonl")
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][2]["content"].endswith("#### 5") and "####" in row["messages"][0]["content"]
    assert stats.written == 1 and stats.skipped == {"malformed_jsonl": 1, "unconvertible (ValueError)": 1}
    assert stats.skipped_where[0].startswith(f"{src}:2")


def test_math_conversion_keeps_or_adds_boxed(tmp_path):
    src = tmp_path / "math.jsonl"
    src.write_text(json.dumps({"problem": "1+1?", "solution": "So $\\boxed{\\frac{2}{1}}$."}) + "\n"
                   + json.dumps({"problem": "2+2?", "solution": "Add them.", "answer": "4"}) + "\n")  # fmt: skip
    convert("math", [str(src)], tmp_path / "out.jsonl")
    answers = [r["messages"][2]["content"] for r in read(tmp_path / "out.jsonl")]
    assert [last_boxed(a) for a in answers] == ["\\frac{2}{1}", "4"]


def test_code_conversion_field_names(tmp_path):
    src = tmp_path / "code.jsonl"
    src.write_text(json.dumps({"instruction": "Reverse a string.", "output": "def r(s):\n    return s[::-1]"}) + "\n"
                   + json.dumps({"prompt": "Add.", "completion": "def add(a, b):\n    return a + b"}) + "\n"
                   + json.dumps({"title": "nothing usable"}) + "\n")  # fmt: skip
    stats = convert("code", [str(src)], tmp_path / "out.jsonl")
    assert stats.written == 2 and sum(stats.skipped.values()) == 1


def test_conversion_decontaminates_against_gsm8k_test(tmp_path, shared_data):
    gsm8k = shared_data("gsm8k", "test.jsonl")
    cfg = DecontaminationConfig(data_dir=str(gsm8k.parents[1]), allow_hub=False,
                                benchmarks=[b for b in standard_benchmarks() if b.name == "gsm8k-test"])  # fmt: skip
    index = build_index(cfg)
    leaked = json.loads(gsm8k.read_text().splitlines()[0])
    src = tmp_path / "train.jsonl"
    src.write_text(json.dumps(leaked) + "\n" + json.dumps({"question": "What is 2 + 3?", "answer": "#### 5"}) + "\n")
    stats = convert("gsm8k", [str(src)], tmp_path / "out.jsonl", index)
    assert stats.written == 1 and stats.decontaminated[0]["benchmark"] == "gsm8k-test"
    assert read(tmp_path / "out.jsonl")[0]["messages"][1]["content"] == "What is 2 + 3?"


def test_stdlib_code_instructions_exclude_evaluation_problems(shared_data, tmp_path):
    humaneval = shared_data("humaneval", "HumanEval.jsonl.gz")
    names = {json.loads(line)["entry_point"] for line in gzip.open(humaneval, "rt")}
    kept, removed = stdlib_code_instructions(60, exclude_names=names | {"getcontext"})
    assert len(kept) == 60 and not any(r["instruction"].split("`")[1].split("(")[0] in names for r in kept)
    assert any(r["reason"] == "name_of_an_evaluation_problem" for r in removed)
    stage1, stage2 = split_code_stages(kept)
    assert stage1 and stage2 and not {r["origin"] for r in stage1} & {r["origin"] for r in stage2}
    paths = build_code_sft_tiny(tmp_path, max_examples=30)
    rows = read(paths["stage1"]) + read(paths["stage2"])
    assert len(rows) == 30 and rows[0]["messages"][1]["content"].startswith("Write a Python function `")
    assert rows[0]["messages"][2]["content"].startswith("```python\ndef ")
