"""The results loader reads several runs and steps into the expected table.

Run folders are built with real files: metrics.jsonl as the trainer logs it; math evaluations written by the
real evaluator (`python -m eval.math --benchmark gsm8k` on the GSM8K test set with gold and perturbed
answers) when ../shared/data is there; code evaluations (the code evaluator needs compilers) written by
`write_evaluation` from graded rows. The loader's table is checked against an independent reading of the
same files (mean of `passed` in results.jsonl, tokens from the metrics log).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from eval.results import ResultsError, load_metrics, load_results, scan_results
from tests.conftest import SHARED_DATA

TOKENS_PER_STEP = {"code-pretrain": 4096, "math-sft": 1024}
GSM8K_TEST = SHARED_DATA / "gsm8k" / "test.jsonl"


def grade(prediction: str, gold: str) -> bool:
    try:
        from eval.math.grader import is_equiv
    except ImportError:  # the math grader is built in parallel; plain string equality until then
        return prediction.strip() == gold.strip()
    return bool(is_equiv(prediction, gold))


def write_evaluation(out: Path, benchmark: str, language: str | None, n: int, n_right: int) -> None:
    """An evaluation of n problems where n_right samples carry the gold answer and the rest a perturbed one."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        gold = str(7 * i + 3)
        prediction = gold if i < n_right else str(7 * i + 4)
        rows.append({"task_id": str(i), "prediction": prediction, "gold": gold,
                     "passed": grade(prediction, gold), "status": "graded"})
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    score = sum(r["passed"] for r in rows) / len(rows)
    summary = {"benchmark": benchmark, "n_problems": n, "n_samples": n}
    summary.update({"language": language, "pass@1": score} if language else {"accuracy": score})
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")


def gsm8k_evaluation(out: Path, problems: Path, p_right: float, rng: random.Random) -> None:
    """The real math evaluator on the GSM8K test set, each sample the gold answer with probability p_right
    and the gold answer plus one otherwise."""
    from eval.math.__main__ import main as eval_math

    out.mkdir(parents=True, exist_ok=True)
    with open(problems, encoding="utf-8") as src, open(out.parent / f"{out.name}.samples.jsonl", "w") as dst:
        for i, line in enumerate(src):
            gold = json.loads(line)["answer"].split("####")[-1].strip().replace(",", "")
            answer = gold if rng.random() < p_right else str(int(gold) + 1)
            dst.write(json.dumps({"task_id": str(i), "completion": f"So the answer is {answer}."}) + "\n")
    eval_math(["--benchmark", "gsm8k", "--problems", str(problems), "--samples", dst.name, "--out", str(out)])


def write_metrics(run_dir: Path, steps: list[int], tokens_per_step: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as f:
        for step in steps:
            f.write(json.dumps({"step": step, "loss": 8.0 / math.sqrt(step), "lr": 3e-4,
                                "tokens": step * tokens_per_step, "tokens_per_s": 1000.0 + step}) + "\n")


def build_runs(root: Path, seed: int = 0) -> Path:
    """Two code runs (HumanEvalPack python + rust) and one math run (gsm8k, logged every 2 steps)."""
    rng = random.Random(seed)
    runs = root / "runs"
    for recipe, run, log_steps, eval_steps in [
        ("code-pretrain", "tiny", [1, 2, 3, 4, 5, 6], [2, 4, 6]),
        ("code-pretrain", "tiny-lr2", [1, 2, 3, 4], [2, 4]),
        ("math-sft", "tiny", [2, 4, 6, 8], [3, 6]),
    ]:
        run_dir = runs / recipe / run
        write_metrics(run_dir, log_steps, TOKENS_PER_STEP[recipe])
        for step in eval_steps:
            if recipe.startswith("code"):
                for language in ("python", "rust"):
                    out = run_dir / "eval" / f"humanevalpack-{language}" / f"step-{step}"
                    write_evaluation(out, "humanevalpack", language, 10, rng.randint(0, 10))
            elif GSM8K_TEST.exists():
                gsm8k_evaluation(run_dir / "eval" / "gsm8k" / f"step-{step}", GSM8K_TEST, step / 10, rng)
            else:
                write_evaluation(run_dir / "eval" / "gsm8k" / f"step-{step}", "gsm8k", None, 12, rng.randint(0, 12))
    return runs


def expected_rows(runs: Path) -> set[tuple]:
    """The table read independently: every summary's score recomputed as the mean of results.jsonl."""
    rows = set()
    for results_file in runs.glob("*/*/eval/*/step-*/results.jsonl"):
        step_dir = results_file.parent
        run_dir = step_dir.parents[2]
        lines = [json.loads(line) for line in results_file.read_text().splitlines()]
        score = sum(r["passed"] for r in lines) / len(lines)
        folder = step_dir.parent.name
        benchmark, _, language = folder.partition("-")
        step = int(step_dir.name.split("-")[1])
        metric = "pass@1" if language else "accuracy"
        tokens = step * TOKENS_PER_STEP[run_dir.parent.name]
        n_problems = len({r["task_id"] for r in lines})
        rows.add((run_dir.name, run_dir.parent.name, step, tokens, benchmark, language, metric, round(score, 9),
                  n_problems))
    return rows


def test_loader_reads_runs_and_steps_into_expected_table(tmp_path):
    runs = build_runs(tmp_path)
    table = load_results(runs)
    assert list(table.columns) == ["run", "recipe", "step", "tokens", "benchmark", "language", "metric", "value",
                                   "n_problems"]
    got = {(r.run, r.recipe, r.step, r.tokens, r.benchmark, r.language, r.metric, round(r.value, 9), r.n_problems)
           for r in table.itertuples(index=False)}
    assert got == expected_rows(runs)
    assert len(table) == 3 * 2 + 2 * 2 + 2  # no duplicated rows either
    # math run logged every 2 steps: step 3 sits between logs and gets its tokens interpolated (3 * 1024)
    math_row = table[(table["recipe"] == "math-sft") & (table["step"] == 3)]
    assert math_row["tokens"].tolist() == [3 * TOKENS_PER_STEP["math-sft"]]


def test_loss_curves_loader(tmp_path):
    runs = build_runs(tmp_path)
    metrics = load_metrics(runs)
    per_run = metrics.groupby(["recipe", "run"])["step"].apply(list).to_dict()
    assert per_run == {("code-pretrain", "tiny"): [1, 2, 3, 4, 5, 6],
                       ("code-pretrain", "tiny-lr2"): [1, 2, 3, 4],
                       ("math-sft", "tiny"): [2, 4, 6, 8]}
    for (recipe, run), curve in metrics.groupby(["recipe", "run"]):
        logged = [json.loads(line) for line in (runs / recipe / run / "metrics.jsonl").read_text().splitlines()]
        assert curve["loss"].tolist() == [r["loss"] for r in logged]
        assert curve["tokens"].tolist() == [r["tokens"] for r in logged]


def test_resumed_run_relogging_a_step_keeps_the_last_record(tmp_path):
    runs = build_runs(tmp_path)
    metrics_file = runs / "math-sft" / "tiny" / "metrics.jsonl"
    first = json.loads(metrics_file.read_text().splitlines()[0])
    with open(metrics_file, "a") as f:  # a resumed run logs step 2 again after the crash
        f.write(json.dumps({**first, "loss": first["loss"] / 2}) + "\n")
    curve = load_metrics(runs).query("recipe == 'math-sft'")
    assert curve["step"].tolist() == [2, 4, 6, 8]
    assert curve["loss"].iloc[0] == first["loss"] / 2


def test_in_progress_and_heldout_evaluations(tmp_path):
    runs = build_runs(tmp_path)
    math_run = runs / "math-sft" / "tiny"
    (math_run / "eval" / "gsm8k" / "step-8").mkdir()  # being evaluated: no summary yet
    (math_run / "eval" / "gsm8k" / "step-8.tmp-123").mkdir()  # a watcher's scratch folder
    write_evaluation(math_run / "eval", "gsm8k", None, 5, 4)  # the tiny run's final held-out evaluation
    no_metrics = runs / "math-sft" / "no-metrics"
    write_evaluation(no_metrics / "eval" / "gsm8k" / "step-final", "gsm8k", None, 5, 2)  # `just math-eval`
    write_evaluation(math_run / "eval" / "gsm8k" / "step-final", "gsm8k", None, 5, 3)
    scan = scan_results(runs)
    assert scan.skipped == {"step folder without summary.json": 1,
                            "final evaluation of a run with no step (no metrics.jsonl)": 1}
    table = scan.frame()
    heldout = table[table["benchmark"] == "heldout"]
    assert heldout[["step", "value"]].values.tolist() == [[8, 4 / 5]]  # last logged step of the run
    final = table[(table["benchmark"] == "gsm8k") & (table["value"] == 3 / 5)]
    assert final["step"].tolist() == [8]


def test_malformed_files_name_file_and_line(tmp_path):
    runs = build_runs(tmp_path)
    metrics_file = runs / "math-sft" / "tiny" / "metrics.jsonl"
    metrics_file.write_text(metrics_file.read_text() + "{not json\n")
    with pytest.raises(ResultsError, match=r"metrics\.jsonl:5: malformed JSON"):
        load_results(runs)
    metrics_file.write_text("")
    summary = runs / "code-pretrain" / "tiny" / "eval" / "humanevalpack-rust" / "step-2" / "summary.json"
    summary.write_text(json.dumps({"benchmark": "humanevalpack", "pass@1": "high"}))
    with pytest.raises(ResultsError, match="summary.json: score 'pass@1' is not a number"):
        load_results(runs)
