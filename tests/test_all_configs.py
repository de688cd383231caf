"""Every YAML config in the repo loads and validates with the dataclass of the recipe it belongs to.

Convention: <room>/configs/<stage>/<scale>.yaml belongs to module <room>.<stage>, which defines `Config` and
`DEFAULT_CONFIG` (its tiny YAML). data_recipes/recipes/*.yaml belong to data_recipes.pipeline.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPE_ROOMS = ("code_qwen", "math_qwen")
SKIP_DIRS = {".venv", "runs", "data", "cache", "node_modules", ".git", "notebooks", "reports"}


def recipe_yamls() -> list[tuple[str, Path]]:
    found = []
    for room in RECIPE_ROOMS:
        for path in sorted((ROOT / room / "configs").glob("*/*.yaml")):
            found.append((f"{room}.{path.parent.name}", path))
    return found


def test_every_config_yaml_is_accounted_for():
    known = {p for _, p in recipe_yamls()} | set((ROOT / "data_recipes" / "recipes").glob("*.yaml"))
    stray = [
        p.relative_to(ROOT)
        for p in ROOT.rglob("*.y*ml")
        if p.suffix in {".yaml", ".yml"}
        and {"configs", "recipes"} & set(p.relative_to(ROOT).parts)
        and not SKIP_DIRS & set(p.relative_to(ROOT).parts)
        and p not in known
    ]
    assert not stray, f"YAML files outside the config convention (no test validates them): {stray}"


@pytest.mark.parametrize("module, path", recipe_yamls(), ids=lambda x: str(x).split("/work/main/")[-1])
def test_recipe_yaml_validates(module, path):
    mod = importlib.import_module(module)
    cfg = load_config(mod.Config, path)
    if hasattr(cfg, "train"):  # training recipes (code-feedback is a data recipe)
        assert cfg.train.max_steps >= 1 and cfg.train.optimizer.lr > 0


@pytest.mark.parametrize("module", ["code_qwen.pretrain", "code_qwen.sft", "math_qwen.sft", "math_qwen.rft"])
def test_each_recipe_has_tiny_7b_14b(module):
    room, stage = module.split(".")
    names = {p.stem for p in (ROOT / room / "configs" / stage).glob("*.yaml")}
    assert {"tiny"} <= names, f"{module} lacks configs/{stage}/tiny.yaml"
    if module != "math_qwen.rft":
        assert {"7b", "14b"} <= names, f"{module} lacks 7b/14b configs: {sorted(names)}"
    mod = importlib.import_module(module)
    assert Path(mod.DEFAULT_CONFIG).resolve() == (ROOT / room / "configs" / stage / "tiny.yaml").resolve()


@pytest.mark.parametrize("path", sorted((ROOT / "data_recipes" / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_data_recipe_yaml_validates(path):
    from data_recipes.config import CorpusRecipe

    recipe = load_config(CorpusRecipe, path)
    assert recipe.sources
