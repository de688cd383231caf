"""`just code-feedback` (code_qwen/feedback.py) on hand-made samples: passing, failing, timing out, duplicate after
normalisation and contaminated answers give exactly the expected kept set and report; a run killed after its first
chunk resumes without sampling those problems again and writes what an uninterrupted run writes; hidden tests
never reach a prompt. Answers come from a hand-made sampler in place of the model (load_sampler); execution,
filtering and decontamination (against the real HumanEval and HumanEvalPack files) are the real ones."""

from __future__ import annotations

import gzip
import json
import re

import pytest

import code_qwen.feedback as fb
from data_recipes.code_problems import build_problems, write_jsonl_atomic
from eval.code.feedback import sampling_prompt
from eval.code.languages import get_language
from eval.code.toolchains import EnvironmentProblem

ADD = build_problems("train", 1, seed=11)[0]


def fence(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}\n```"


def _signature(problem: dict) -> str:
    return problem["prompt"].split("\n", 1)[0]


def hand_made(humaneval: dict, java: dict) -> dict[str, list[str]]:
    """task_id -> the raw answers the 'model' gives, in sample order."""
    body = ADD["canonical_solution"].rstrip()
    sig = _signature(ADD)
    return {
        ADD["task_id"]: [
            fence(f"{sig}\n{body}"),  # 0 passes: kept
            fence(f"{sig}\n    # the same, commented and spaced\n\n{body.replace('return ', 'return  ')}"),  # 1 dup
            fence(f"{sig}\n    return None"),  # 2 fails
            fence(f"{sig}\n    while True:\n        pass"),  # 3 times out
            fence(f"{sig}\n    result = {body.strip()[len('return '):]}\n    return result"),  # 4 passes, distinct
        ],
        # passes, contaminated (the signature line, then HumanEval/0's canonical body)
        humaneval["task_id"]: [fence(humaneval["prompt"].split("\n")[2] + "\n" + humaneval["canonical_solution"])],
        java["task_id"]: [fence(java["declaration"] + java["canonical_solution"], "java"),  # passes, contaminated
                          fence(java["declaration"] + "        return false;\n    }\n}", "java")],  # fails
    }


@pytest.fixture
def setup(tmp_path, shared_data, monkeypatch):
    with gzip.open(shared_data("humaneval", "HumanEval.jsonl.gz"), "rt") as f:
        humaneval = json.loads(f.readline())
    java = json.loads(shared_data("humanevalpack", "java.jsonl").open().readline())
    shared_data("humanevalpack", "python.jsonl")
    try:
        get_language("java").check_environment()
    except EnvironmentProblem as e:
        pytest.skip(f"no Java toolchain: {e}")
    answers = hand_made(humaneval, java)
    files = {"gen": write_jsonl_atomic(tmp_path / "gen.jsonl", [ADD]),
             "he": write_jsonl_atomic(tmp_path / "he.jsonl", [humaneval]),
             "java": write_jsonl_atomic(tmp_path / "java.jsonl", [java])}
    calls: list[list[str]] = []

    def sampler_for(cfg):
        def sample(prompts: list[str], seed: int) -> list[list[str]]:
            calls.append(prompts)
            by_prompt = {sampling_prompt(p): answers[p["task_id"]] for p in fb.load_problems(cfg)[0]}
            return [by_prompt[p] for p in prompts]
        return sample

    monkeypatch.setattr(fb, "load_sampler", sampler_for)
    args = ["model=hand-made", f"out_dir={tmp_path / 'out'}", "problem_data.out_dir=", "sampling.chunk_problems=1",
            "timeout_s=2", f"decontamination.data_dir={shared_data('humaneval', 'HumanEval.jsonl.gz').parents[1]}",
            "sources=[" + ", ".join(f"{{kind: humaneval, name: {name}, path: {path}, language: {lang}}}" for name, path, lang
                                    in (("gen", files["gen"], "python"), ("he", files["he"], "python"),
                                        ("java", files["java"], "java"))) + "]"]
    return args, calls, tmp_path / "out"


def test_hand_made_samples_give_exactly_the_expected_kept_set_and_report(setup):
    args, calls, out = setup
    report = fb.main(args)
    kept = [json.loads(line) for line in (out / "sft.jsonl").open()]
    assert [(c["provenance"]["problem"], c["provenance"]["sample_index"]) for c in kept] == [
        (ADD["task_id"], 0), (ADD["task_id"], 4)]
    assert kept[0]["provenance"] | {"source": "gen"} == {
        "problem": ADD["task_id"], "source": "gen", "language": "python", "model": "hand-made", "sample_index": 0,
        "tests_passed": 5, "status": "passed"}
    assert kept[0]["messages"][0]["content"] == sampling_prompt(ADD | {"language": "python",
                                                                           "style": "function"})
    assert report["languages"] == {
        "python": {"problems": 2, "samples": 6, "passed": 4, "pass_rate": round(4 / 6, 4), "problems_solved": 2,
                   "kept": 2, "dropped": {"contaminated:humaneval": 1, "duplicate": 1, "failed": 1, "timeout": 1}},
        "java": {"problems": 1, "samples": 2, "passed": 1, "pass_rate": 0.5, "problems_solved": 1, "kept": 0,
                 "dropped": {"contaminated:humaneval": 1, "failed": 1}}}  # its docstring is HumanEval's
    assert json.loads((out / "report.json").read_text()) == report
    assert report["run"] == {"resumed_problems": 0, "sampled_problems": 3}


def test_a_killed_run_resumes_without_resampling_finished_problems(setup, monkeypatch):
    args, calls, out = setup
    original = fb.run_chunk

    def dies_on_the_second_chunk(problems, sampler, cfg, chunk):
        if chunk == 1:
            raise KeyboardInterrupt("killed")
        return original(problems, sampler, cfg, chunk)

    monkeypatch.setattr(fb, "run_chunk", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        fb.main(args)
    first = (out / "samples.jsonl").read_text()
    assert len(first.splitlines()) == 1 and not (out / "report.json").exists()
    monkeypatch.setattr(fb, "run_chunk", original)
    # a torn last line, as a kill in the middle of a write leaves, is dropped and its chunk re-done
    (out / "samples.jsonl").write_text(first + first[:40])
    calls.clear()
    resumed = fb.main(args)
    assert resumed["run"] == {"resumed_problems": 1, "sampled_problems": 2}
    assert ADD["task_id"] not in json.dumps(calls)  # the finished problem was not sampled again
    assert (out / "samples.jsonl").read_text().startswith(first)
    uninterrupted_dir = out.parent / "uninterrupted"
    fb.main([a if not a.startswith("out_dir=") else f"out_dir={uninterrupted_dir}" for a in args])
    for name in ("samples.jsonl", "sft.jsonl"):
        assert (out / name).read_text() == (uninterrupted_dir / name).read_text()


def test_a_malformed_line_inside_the_state_is_an_error_not_a_silent_restart(tmp_path):
    state = tmp_path / "samples.jsonl"
    state.write_text('{"problem": {"task_id": "a"}}\nnot json\n{"problem": {"task_id": "b"}}\n')
    with pytest.raises(SystemExit, match=r"samples.jsonl:2"):
        fb.read_done(state)


def test_hidden_tests_never_reach_the_prompt(shared_data, tmp_path):
    from data_recipes.feedback_sources import FeedbackSourceConfig, load_feedback_problems

    mbpp = load_feedback_problems(FeedbackSourceConfig(kind="mbpp", path=str(shared_data("mbpp", "mbpp.jsonl")),
                                                       split="train,validation,prompt")).problems
    assert len(mbpp) == 974 - 500 and not any(10 < int(p["task_id"].split("/")[1]) <= 510 for p in mbpp)
    gen = load_feedback_problems(FeedbackSourceConfig(
        path=str(write_jsonl_atomic(tmp_path / "g.jsonl", build_problems("train", 200))))).problems
    for p in mbpp + gen:
        prompt = sampling_prompt(p)
        hidden = [line.strip() for line in p["test"].splitlines() if line.strip().startswith("assert")]
        if p["style"] == "program":  # MBPP shows its first assert (it names the function); the rest is hidden
            shown = p["prompt"].splitlines()[-1].strip()
            hidden = [h for h in hidden if h != shown]
        else:
            hidden = [re.sub(r"^assert candidate", p["entry_point"], h).split(" == ")[0] for h in hidden]
        assert not [h for h in hidden if h in prompt], p["task_id"]
    with pytest.raises(ValueError, match="evaluation set"):
        FeedbackSourceConfig(kind="mbpp", path="x", split="train,test").validate()
