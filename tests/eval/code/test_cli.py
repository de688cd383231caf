"""The contract commands: python -m eval.code with --samples and with --model; python -m eval.code.latest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.code.problems import read_records

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(600)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_humanevalpack_samples_file_to_results_and_summary(shared_data, tmp_path):
    rows = read_records(shared_data("humanevalpack", "javascript.jsonl"))[:3]
    problems = write_jsonl(tmp_path / "p.jsonl", rows)
    samples = [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in rows]
    samples += [{"task_id": rows[0]["task_id"], "completion": "  return null\n}\n"}]  # a second, wrong sample
    samples_file = write_jsonl(tmp_path / "s.jsonl", samples)
    out = tmp_path / "out"
    proc = run("eval.code", "--benchmark", "humanevalpack", "--language", "js", "--problems", str(problems),
               "--samples", str(samples_file), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in results] == [True, True, True, False]
    assert {"task_id", "passed", "status"} <= set(results[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "humanevalpack" and summary["n_problems"] == 3 and summary["n_samples"] == 4
    # JavaScript/0 has 1 of 2 right, the others 1 of 1: pass@1 = (0.5 + 1 + 1) / 3, and k <= 1 only
    assert summary["pass@1"] == pytest.approx(2.5 / 3)
    assert "pass@2" not in summary


def test_malformed_samples_line_is_named(shared_data, tmp_path):
    rows = read_records(shared_data("humanevalpack", "python.jsonl"))[:1]
    problems = write_jsonl(tmp_path / "p.jsonl", rows)
    bad = tmp_path / "s.jsonl"
    bad.write_text('{"task_id": "Python/0", "completion": ""}\n{not json\n')
    proc = run("eval.code", "--benchmark", "humanevalpack", "--problems", str(problems), "--samples", str(bad),
               "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and f"{bad}:2" in proc.stderr


def test_model_generates_then_evaluates(shared_data, tmp_path):
    """--model: the tiny random model writes samples.jsonl, which is then executed (and fails honestly)."""
    from shared.config import ModelConfig, TinyModelConfig
    from shared.modeling import load_model, load_tokenizer

    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           num_key_value_heads=1, intermediate_size=64))
    tok = load_tokenizer(cfg)
    model_dir = tmp_path / "model"
    load_model(cfg, tok, precision="fp32", seed=0).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    problems = shared_data("humaneval", "HumanEval.jsonl.gz")
    out = tmp_path / "out"
    # in-process: a second import of torch in a subprocess costs more than the rest of the test
    from eval.code.__main__ import main as cli_main

    rc = cli_main(["--benchmark", "humaneval", "--problems", str(problems), "--model", str(model_dir),
                   "--limit", "2", "--max-new-tokens", "16", "--out", str(out), "--quiet"])
    assert rc == 0
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["task_id"] for s in samples] == ["HumanEval/0", "HumanEval/1"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_samples"] == 2 and summary["pass@1"] == 0.0  # a random model solves nothing


def test_latest_without_runs_says_what_to_do(tmp_path):
    proc = run("eval.code.latest", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "no code run with an export/" in proc.stderr


def test_latest_evaluates_the_newest_export_into_the_run(shared_data, tmp_path):
    from shared.config import ModelConfig, TinyModelConfig
    from shared.modeling import load_model, load_tokenizer

    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                           num_key_value_heads=1, intermediate_size=64))
    tok = load_tokenizer(cfg)
    run_dir = tmp_path / "runs" / "code-pretrain" / "r1"
    load_model(cfg, tok, precision="fp32", seed=0).save_pretrained(run_dir / "export")
    tok.save_pretrained(run_dir / "export")
    (run_dir / "checkpoints" / "step-7").mkdir(parents=True)
    from eval.code.latest import main as latest_main  # in-process: the subprocess import of torch is slow

    rc = latest_main(["--runs-dir", str(tmp_path / "runs"), "--limit", "2", "--max-new-tokens", "8",
                      "--problems", str(shared_data("humaneval", "HumanEval.jsonl.gz"))])
    assert rc == 0
    summary = json.loads((run_dir / "eval" / "humaneval" / "step-7" / "summary.json").read_text())
    assert summary["n_problems"] == 2
