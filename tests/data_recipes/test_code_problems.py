"""The tiny code problem generator is sound: through the real evaluator (sandboxed execution) every canonical
solution passes its hidden tests and wrong ones fail; held-out problems are unseen (family, k) combinations; hidden
tests never reach the prompt; the set is deterministic and the data seed changes only the training problems."""

from __future__ import annotations

import json
import re

from data_recipes.code_problems import FAMILIES, K_VALUES, build_problems, is_heldout, write_jsonl_atomic
from eval.code.run import EvalOptions, run_evaluation


def _evaluate(tmp_path, problems: list[dict], completions: dict[str, str], name: str) -> list[dict]:
    problems_file = write_jsonl_atomic(tmp_path / f"{name}-problems.jsonl", problems)
    samples = tmp_path / f"{name}.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in completions.items()))
    summary = run_evaluation(EvalOptions(benchmark="humaneval", problems=str(problems_file), out=tmp_path / name,
                                         samples=str(samples), progress=False))
    assert summary["n_problems"] == len(problems)
    return [json.loads(line) for line in (tmp_path / name / "results.jsonl").open()]


def _near_miss(problem: dict, delta: int) -> str:
    """The canonical body with its constant k replaced by k + delta."""
    k = problem["k"]
    return re.sub(rf"(?<![\w.]){k}(?!\w)", str(k + delta), problem["canonical_solution"])


def test_canonical_solutions_pass_and_wrong_constants_fail(tmp_path):
    problems = build_problems("heldout", len(FAMILIES) * 2) + build_problems("train", len(FAMILIES) * 2, seed=5)
    good = _evaluate(tmp_path, problems, {p["task_id"]: p["canonical_solution"] for p in problems}, "good")
    assert all(r["passed"] for r in good), [r for r in good if not r["passed"]][:2]
    for delta in (-1, 1):  # the hidden tests tell k from its neighbours
        wrong = {p["task_id"]: _near_miss(p, delta) for p in problems}
        assert all(wrong[p["task_id"]] != p["canonical_solution"] for p in problems)
        assert not [r["task_id"] for r in _evaluate(tmp_path, problems, wrong, f"bad{delta}") if r["passed"]]


def test_heldout_combinations_never_appear_in_training():
    held = {(p["family"], p["k"]) for p in build_problems("heldout", 300)}
    train = {(p["family"], p["k"]) for seed in (0, 1) for p in build_problems("train", 3000, seed)}
    assert held and train and not held & train
    assert {f for f, _ in held} == {f.stem for f in FAMILIES}  # every operation is held out with some k ...
    assert {k for _, k in held} == set(K_VALUES)  # ... and every constant with some operation
    assert all(is_heldout([f.stem for f in FAMILIES].index(f), k) for f, k in held)


def test_hidden_tests_never_reach_the_prompt():
    for p in build_problems("heldout", 120) + build_problems("train", 500):
        calls = re.findall(r"assert candidate\((.*)\) == ", p["test"])
        assert len(calls) == 5
        shown = re.findall(rf">>> {p['entry_point']}\((.*)\)\n", p["prompt"])
        assert len(shown) == 1 and shown[0] not in calls


def test_deterministic_and_the_data_seed_moves_only_training_problems(tmp_path):
    assert build_problems("train", 50, seed=1) == build_problems("train", 50, seed=1)
    assert build_problems("train", 50, seed=1) != build_problems("train", 50, seed=2)
    path = write_jsonl_atomic(tmp_path / "p.jsonl", build_problems("heldout", 20))
    stamp = path.stat().st_mtime_ns
    write_jsonl_atomic(path, build_problems("heldout", 20))
    assert path.stat().st_mtime_ns == stamp  # an identical file is not rewritten
    ids = [p["task_id"] for p in build_problems("heldout", 150)]
    assert len(set(ids)) == 150 and all(t.startswith("SynthFn/heldout/") for t in ids)


def test_the_code_problems_source_puts_every_module_into_the_corpus_with_no_heldout_function(tmp_path):
    """The pipeline's code_problems source: modules of solved training functions, none lost to near-dedup (the
    templated functions are grouped 16 to a module), none of a held-out combination, the stream decodes back."""
    from data_recipes.code_problems import pretrain_documents
    from data_recipes.pipeline import build_corpus

    from .helpers import recipe

    n = 160
    out = build_corpus(recipe(tmp_path / "out", [{"name": "gen", "kind": "code_problems", "problems": n,
                                                  "problems_seed": 3}]), keep_work=False)
    kept = [json.loads(line) for p in sorted(out.glob("shard-*.docs.jsonl")) for line in p.read_text().splitlines()]
    expected = [f"gen:{path}" for path, _ in pretrain_documents(n, 3)]
    assert [d["doc_id"] for d in kept] == expected
    text = "\n".join(t for _, t in pretrain_documents(n, 3))
    held = {(p["family"], p["k"]) for p in build_problems("heldout", 300)}
    train = {(p["family"], p["k"]) for p in build_problems("train", n, 3)}
    assert not held & train and all(p["prompt"] in text for p in build_problems("train", n, 3))
