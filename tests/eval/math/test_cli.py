"""`python -m eval.math` and `python -m eval.math.latest`: files, summaries, task ids, bad input, generation."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from eval.math.__main__ import main
from eval.math.evaluate import evaluate_samples
from eval.math.problems import ProblemsError, load_problems


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GSM8K_ROWS = [
    {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
    {"question": "A pen costs $2. How much do 500 pens cost?", "answer": "500 * 2 = 1000\n#### 1,000"},
    {"question": "What is 10 - 12?", "answer": "#### -2"},
]


def test_cli_grades_a_samples_file(tmp_path):
    problems = _write_jsonl(tmp_path / "problems.jsonl", GSM8K_ROWS)
    samples = _write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "0", "completion": "3 + 4 = 7. The answer is 7."},
        {"task_id": "0", "completion": "#### 8"},
        {"task_id": "1", "completion": "It costs $1,000.00 in total."},
        {"task_id": "2", "completion": "no idea"},
        {"task_id": "99", "completion": "#### 1"},
    ])
    out = tmp_path / "out"
    assert main(["--benchmark", "gsm8k", "--problems", str(problems), "--samples", str(samples),
                 "--out", str(out)]) == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["task_id"], r["passed"], r["status"]) for r in results] == [
        ("0", True, "correct"), ("0", False, "wrong"), ("1", True, "correct"), ("2", False, "no_answer")]
    assert [r["extraction_rule"] for r in results] == ["answer_is", "hashes", "last_sentence", "none"]
    assert results[2]["prediction"] == "1000" and results[2]["gold"] == "1000"
    assert summary["benchmark"] == "gsm8k" and summary["n_problems"] == 3 and summary["n_samples"] == 4
    assert summary["accuracy"] == pytest.approx(2 / 4)
    assert summary["skipped"] == {"task_id not in problems": 1}


def test_math_summary_breaks_down_by_subject_and_level():
    problems = [
        {"task_id": "a", "problem": "p", "solution": "so \\boxed{\\frac12}", "subject": "Algebra", "level": 1},
        {"task_id": "b", "problem": "p", "solution": "\\boxed{(1,2)}", "answer": "lossy", "subject": "Algebra",
         "level": 2},
        {"task_id": "c", "problem": "p", "solution": "\\boxed{3}", "subject": "Geometry", "level": 2},
    ]
    samples = [{"task_id": "a", "completion": "The answer is $0.5$."},
               {"task_id": "b", "completion": "\\boxed{(2,1)}"},
               {"task_id": "c", "completion": "\\boxed{3}"}]
    results, summary = evaluate_samples("math", problems, samples)
    assert [r["passed"] for r in results] == [True, False, True]
    assert results[1]["gold"] == "(1,2)"  # from the solution's box, not the answer field
    assert summary["per_subject"] == {"Algebra": {"accuracy": 0.5, "n_samples": 2},
                                      "Geometry": {"accuracy": 1.0, "n_samples": 1}}
    assert summary["per_level"] == {"1": {"accuracy": 1.0, "n_samples": 1}, "2": {"accuracy": 0.5, "n_samples": 2}}


def test_task_ids_follow_the_design(tmp_path):
    own = load_problems(_write_jsonl(tmp_path / "own.jsonl", [{"idx": 5, "question": "q", "answer": "#### 1"},
                                                               {"task_id": "t", "question": "q", "answer": "#### 2"}]),
                        "gsm8k")
    assert [p["task_id"] for p in own] == ["5", "t"]
    by_line = load_problems(_write_jsonl(tmp_path / "lines.jsonl", GSM8K_ROWS), "gsm8k")
    assert [p["task_id"] for p in by_line] == ["0", "1", "2"]


def test_bad_input_names_file_and_line(tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps(GSM8K_ROWS[0]) + "\n{not json\n")
    with pytest.raises(ProblemsError, match=r"problems.jsonl:2"):
        load_problems(problems, "gsm8k")
    good = _write_jsonl(tmp_path / "good.jsonl", GSM8K_ROWS)
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "0", "completion": "#### 7"}\n{"task_id": "1"}\n')
    with pytest.raises(ValueError, match=r"samples.jsonl:2"):
        main(["--benchmark", "gsm8k", "--problems", str(good), "--samples", str(samples),
              "--out", str(tmp_path / "o")])


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A random-weight tiny Qwen2 saved like a run's export/ (weights, config, tokenizer with ChatML)."""
    from shared.config import ModelConfig
    from shared.modeling import load_model, load_tokenizer

    cfg = ModelConfig()
    tokenizer = load_tokenizer(cfg)
    model = load_model(cfg, tokenizer, seed=0)
    path = tmp_path_factory.mktemp("export")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_cli_generates_then_grades_and_samples_match_the_generator(tmp_path, tiny_export):
    from eval.math.prompts import build_prompts
    from eval.sharded import GenerationSpec, generate_tasks

    problems = _write_jsonl(tmp_path / "problems.jsonl", GSM8K_ROWS)
    out = tmp_path / "out"
    main(["--benchmark", "gsm8k", "--problems", str(problems), "--model", str(tiny_export), "--out", str(out),
          "--chat", "--max-new-tokens", "6", "--limit", "2"])
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["task_id"] for s in samples] == ["0", "1"]
    prompts, stops = build_prompts("gsm8k", [r["question"] for r in GSM8K_ROWS[:2]], chat=True)
    direct = generate_tasks(str(tiny_export), [("0", prompts[0]), ("1", prompts[1])],
                            GenerationSpec(max_new_tokens=6, stop=tuple(stops), chat=True), progress=False)
    assert [s["completion"] for s in samples] == [direct["0"][0], direct["1"][0]]  # greedy: the same both ways
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_samples"] == 2 and 0.0 <= summary["accuracy"] <= 1.0


def _fake_run(root: Path, name: str, export: Path, steps: list[int]) -> Path:
    run = root / "math-sft" / name
    (run / "data").mkdir(parents=True)
    os.symlink(export, run / "export")
    _write_jsonl(run / "data" / "heldout.jsonl", GSM8K_ROWS[:2])
    _write_jsonl(run / "metrics.jsonl", [{"step": s, "loss": 1.0, "lr": 0.1, "tokens": s, "tokens_per_s": 1.0}
                                         for s in steps])
    return run


def test_latest_evaluates_the_newest_export_on_its_heldout_set(tmp_path, tiny_export):
    from eval.math.latest import main as latest_main

    runs = tmp_path / "runs"
    old = _fake_run(runs, "old", tiny_export, [1, 2])
    time.sleep(0.01)
    new = _fake_run(runs, "new", tiny_export, [1, 2, 3])
    os.utime(old / "export", (1, 1), follow_symlinks=False)
    os.utime(new / "export", (2, 2), follow_symlinks=False)
    assert latest_main(["--runs-dir", str(runs), "--max-new-tokens", "4"]) == 0
    summary = json.loads((new / "eval" / "heldout" / "step-3" / "summary.json").read_text())
    assert summary["n_problems"] == 2 and summary["n_samples"] == 2
    assert summary["benchmark"] == "gsm8k"  # graded by the gsm8k grader
    assert not (old / "eval").exists()
    # A full benchmark run lands in its own folder, never beside the held-out score.
    problems = _write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS[:1])
    assert latest_main(["--runs-dir", str(runs), "--problems", str(problems), "--max-new-tokens", "4"]) == 0
    assert (new / "eval" / "gsm8k" / "step-3" / "results.jsonl").exists()


def test_latest_without_runs_says_what_to_do(tmp_path):
    from eval.math.latest import main as latest_main

    with pytest.raises(SystemExit, match="just math-sft"):
        latest_main(["--runs-dir", str(tmp_path / "none")])


def test_dataset_folders_and_hub_names_go_through_datasets(tmp_path):
    # The hub code path, offline: `datasets` reads a local folder the way it reads a hub repository
    # (split from the file name), with the same name[:config][@split] syntax.
    folder = tmp_path / "gsm8k_like"
    folder.mkdir()
    _write_jsonl(folder / "test.jsonl", GSM8K_ROWS)
    _write_jsonl(folder / "train.jsonl", GSM8K_ROWS[:1])
    from_hub_path = load_problems(str(folder), "gsm8k")
    from_file = load_problems(folder / "test.jsonl", "gsm8k")
    assert from_hub_path == from_file
    assert len(load_problems(f"{folder}@train", "gsm8k")) == 1
