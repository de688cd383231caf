import gzip
import json

import pytest

from data_recipes.config import BenchmarkConfig, DecontaminationConfig, standard_benchmarks
from data_recipes.decontaminate import build_index


def index_from(files: dict[str, tuple[str, list[str]]], data_dir: str = ""):
    specs = [BenchmarkConfig(name=n, path=p, fields=f) for n, (p, f) in files.items()]
    return build_index(DecontaminationConfig(data_dir=data_dir, allow_hub=False, benchmarks=specs))


def test_real_humaneval_prompt_and_gsm8k_question_removed(shared_data):
    humaneval, gsm8k = shared_data("humaneval", "HumanEval.jsonl.gz"), shared_data("gsm8k", "test.jsonl")
    data_dir = str(humaneval.parents[1])
    names = {"humaneval", "gsm8k-test"}
    cfg = DecontaminationConfig(data_dir=data_dir, allow_hub=False,
                                benchmarks=[b for b in standard_benchmarks() if b.name in names])  # fmt: skip
    index = build_index(cfg)
    assert set(index.loaded) == names and not index.missing
    prompt = json.loads(gzip.open(humaneval, "rt").readline())["prompt"]
    question = json.loads(gsm8k.open().readlines()[7])["question"]
    contaminated_code = "import os\n\n" + prompt + "    return True\n\n\ndef other():\n    pass\n"
    contaminated_text = "Some homework for today.\n" + question + "\nAnswer below."
    clean = "def add(a, b):\n    '''Sum of two numbers.'''\n    return a + b\n\n\nprint(add(2, 3))\n"
    assert index.matches(contaminated_code)[0] == "humaneval"
    assert index.matches(contaminated_text)[0] == "gsm8k-test"
    assert index.matches(clean) is None
    # A 12-token fragment of a benchmark is not an overlap at n=13.
    assert index.matches(" ".join(question.split()[:6])) is None


def test_local_files_jsonl_gz_and_json_array(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"q": "one two three four five six seven eight nine ten eleven twelve thirteen"}\n'))
    (tmp_path / "b.json").write_text(json.dumps([{"q": "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu"}]))
    index = index_from({"A": ("a.jsonl.gz", ["q"]), "B": ("b.json", ["q"])}, str(tmp_path))
    assert index.matches("x one two three four five six seven eight nine ten eleven twelve thirteen y") == ("A", 1)
    assert index.matches("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu")[0] == "B"
    assert index.matches("one two three four five six seven eight nine ten eleven twelve fourteen") is None


def test_missing_benchmark_is_recorded_or_fatal(tmp_path):
    specs = [BenchmarkConfig(name="gone", path="nope.jsonl", fields=["q"])]
    index = build_index(DecontaminationConfig(data_dir=str(tmp_path), allow_hub=False, benchmarks=specs))
    assert "gone" in index.missing and index.matches("anything at all") is None
    with pytest.raises(RuntimeError):
        build_index(DecontaminationConfig(data_dir=str(tmp_path), allow_hub=False, require_all=True, benchmarks=specs))


def test_all_standard_benchmarks_load_and_each_language_of_humanevalpack_is_caught(shared_data):
    data_dir = shared_data("humanevalpack", "rust.jsonl").parents[1]
    index = build_index(DecontaminationConfig(data_dir=str(data_dir), allow_hub=False, require_all=True))
    assert len(index.loaded) == 11 and not index.missing
    # MBPP+ problems outside MBPP's test split (sanitized MBPP draws on every split) are evaluation data too
    sanitized = json.loads((data_dir / "mbpp" / "sanitized-mbpp.json").read_text())
    outside = [r for r in sanitized if not 11 <= r["task_id"] <= 510]
    assert len(outside) == 170
    assert all(index.matches("# exercise\n" + r["prompt"] + "\n" + r["code"]) is not None for r in outside)
    for lang in ("python", "javascript", "java", "go", "cpp", "rust"):
        rows = [json.loads(line) for line in (data_dir / "humanevalpack" / f"{lang}.jsonl").read_text().splitlines()]
        leaked = "// vendored helper\n" + rows[12]["prompt"] + rows[12]["canonical_solution"]
        assert index.matches(leaked) is not None, lang
    math_problem = json.loads((data_dir / "math" / "test5000.jsonl").read_text().splitlines()[3])["problem"]
    assert index.matches("Exercise 4. " + math_problem)[0] == "math-test"
