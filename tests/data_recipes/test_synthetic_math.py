import re

import pytest

from data_recipes.math_data import build_math_tiny
from data_recipes.synthetic_math import TEMPLATES, distinct_paths, generate_problems, solution_text

ANNOTATION = re.compile(r"<<([^=<>]+)=(-?\d+)>>(-?\d+)")


def test_deterministic_from_seed():
    assert generate_problems(50, seed=3) == generate_problems(50, seed=3)
    assert generate_problems(50, seed=3) != generate_problems(50, seed=4)


def test_train_and_heldout_disjoint_by_template_and_numbers():
    train = generate_problems(3000, seed=0, split="train", with_keys=True)
    heldout = generate_problems(400, seed=0, split="heldout", with_keys=True)
    key = lambda p: (p["template"], tuple(p["numbers"]))  # noqa: E731
    assert len({key(p) for p in train}) == 3000 and len({key(p) for p in heldout}) == 400
    assert not {key(p) for p in train} & {key(p) for p in heldout}
    assert not {p["question"] for p in train} & {p["question"] for p in heldout}
    # Varied: every template shows up on both sides.
    assert {p["template"] for p in heldout} == {t.name for t in TEMPLATES} == {p["template"] for p in train}


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_solutions_are_gsm8k_style_and_correct(split):
    for p in generate_problems(500, seed=1, split=split):
        steps = ANNOTATION.findall(p["answer"])
        assert 1 <= len(steps) <= 3
        for expr, value, shown in steps:
            assert eval(expr, {"__builtins__": {}}) == int(value) == int(shown)  # noqa: S307 - our own arithmetic
        final = p["answer"].splitlines()[-1]
        assert final == f"#### {steps[-1][1]}"
        assert int(steps[-1][1]) >= 0 and len(p["question"]) < 200


def test_too_many_requested_is_an_error():
    with pytest.raises(ValueError):
        generate_problems(100_000, seed=0, split="heldout")


def test_build_math_tiny_files(tmp_path):
    paths = build_math_tiny(tmp_path, n_train=200, n_heldout=50, seed=0)
    train = paths["train"].read_text().splitlines()
    heldout = paths["heldout"].read_text().splitlines()
    assert len(train) == 200 and len(heldout) == 50
    import json

    conv = json.loads(train[0])["messages"]
    assert [m["role"] for m in conv] == ["system", "user", "assistant"] and "####" in conv[2]["content"]
    assert set(json.loads(heldout[0])) == {"question", "answer"}


def test_gold_is_one_of_several_paths_and_every_path_is_shown_somewhere():
    problems = generate_problems(2000, seed=2, split="train", with_keys=True)
    by_name = {t.name: t for t in TEMPLATES}
    shown: dict[str, set[int]] = {t.name: set() for t in TEMPLATES}
    for p in problems:
        t, numbers = by_name[p["template"]], tuple(p["numbers"])
        texts = [solution_text(path) for path in distinct_paths(t, numbers)]
        assert p["n_paths"] == len(texts) >= 2 and len(set(texts)) == len(texts)
        assert p["answer"] in texts  # the gold shows one path
        if len(texts) == len(t.paths(*numbers)):
            shown[t.name].add(texts.index(p["answer"]))
    # Across the training set every path of every template is the gold somewhere: the model sees each way.
    assert all(shown[t.name] == set(range(len(t.paths(*(lo + 1 + i for i, (lo, _) in enumerate(t.ranges))))))
               for t in TEMPLATES if t.name != "lose_find")  # fmt: skip
    assert shown["lose_find"] == {0, 1, 2}
