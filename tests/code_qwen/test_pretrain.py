"""The tiny continued-pretraining recipe end to end: shards built first by data_recipes, the DESIGN.md run folder,
in-training evaluations beside the checkpoints, and resume by re-running the command."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from code_qwen import pretrain
from shared.config import ConfigError, from_dict, load_config

ROOT = Path(__file__).resolve().parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCE_FILES = ["bisect.py", "heapq.py", "textwrap.py", "string.py", "fnmatch.py", "colorsys.py", "json/encoder.py"]
TINY = ["model.tiny.hidden_size=32", "model.tiny.num_hidden_layers=1", "model.tiny.num_attention_heads=2",
        "model.tiny.num_key_value_heads=1", "model.tiny.intermediate_size=64", "train.seq_len=64",
        "train.micro_batch_size=4", "train.log_every=1", "eval.limit=3", "eval.max_new_tokens=8",
        "eval.batch_size=3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run of 4 steps (checkpoints and evaluations at 2 and 4), shards built from a small source tree."""
    root = tmp_path_factory.mktemp("code_pretrain")
    src = root / "src"
    for name in SOURCE_FILES:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STDLIB / name, src / name)
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "base": str(ROOT / "data_recipes" / "recipes" / "code_tiny.yaml"),
        "sources": [{"name": "local", "kind": "tree", "path": str(src)}],
        "decontamination": {"enabled": False}, "workers": 1}))
    args = [f"runs_dir={root / 'runs'}", "run_name=t", f"data.shard_dir={root / 'shards'}",
            f"data.build_recipe={recipe}", "train.max_steps=4", "train.save_every=2", *TINY]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # the local problems file is written under ./data
        result = pretrain.main(args)
    return root, args, result


def test_shards_are_built_first_with_the_model_tokenizer(run):
    root, _, _ = run
    manifest = json.loads((root / "shards" / "manifest.json").read_text())
    assert manifest["n_tokens"] > 0 and manifest["tokenizer"]["name"] == "tiny"


def test_run_folder_follows_design(run):
    root, _, result = run
    run_dir = root / "runs" / pretrain.RECIPE / "t"
    assert Path(result["run_dir"]) == run_dir
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert from_dict(pretrain.Config, saved).train.max_steps == 4
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert {"step", "loss", "lr", "tokens", "tokens_per_s"} <= set(r)
    assert all(b["tokens"] > a["tokens"] for a, b in zip(rows, rows[1:], strict=False))
    for step in (2, 4):
        assert (run_dir / "checkpoints" / f"step-{step}" / "COMPLETE").exists()
    # The export is the last checkpoint's weights, loadable by transformers.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(run_dir / "export")
    last = load_file(run_dir / "checkpoints" / "step-4" / "hf" / "model.safetensors")
    for name, tensor in model.state_dict().items():
        if name in last:
            assert torch.equal(tensor, last[name]), name
    assert AutoTokenizer.from_pretrained(run_dir / "export").chat_template


def test_in_training_eval_writes_results_beside_checkpoints(run):
    root, _, _ = run
    run_dir = root / "runs" / pretrain.RECIPE / "t"
    problems = [json.loads(line) for line in (root / "data" / "code_eval_local" / "heldout-3.jsonl").open()]
    for step in (2, 4):
        out = run_dir / "eval" / "local" / f"step-{step}"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["step"] == step and summary["n_problems"] == 3 and 0.0 <= summary["pass@1"] <= 1.0
        results = [json.loads(line) for line in (out / "results.jsonl").open()]
        assert {r["task_id"] for r in results} == {p["task_id"] for p in problems[:3]}
        beside = run_dir / "checkpoints" / f"step-{step}" / "eval" / "local" / "summary.json"
        assert json.loads(beside.read_text()) == summary
    assert not list((run_dir / "eval" / "local").glob("*.tmp*")), "scratch folders left behind"


def test_live_model_evaluation_equals_evaluating_the_saved_checkpoint(run, tmp_path):
    """The hook evaluates the training model in place; loading the checkpoint's hf/ export must give the same."""
    from code_qwen.in_training_eval import evaluate_into

    root, args, _ = run
    run_dir = root / "runs" / pretrain.RECIPE / "t"
    cfg = load_config(pretrain.Config, pretrain.DEFAULT_CONFIG, args)
    step = max(int(p.name.split("-")[1]) for p in (run_dir / "checkpoints").glob("step-*")
               if (p / "eval" / "local" / "summary.json").exists())
    problems = root / "data" / "code_eval_local" / "heldout-3.jsonl"
    out = tmp_path / f"step-{step}"
    evaluate_into(out, step, cfg.eval, str(problems), str(run_dir / "checkpoints" / f"step-{step}" / "hf"), None,
                  chat=False)

    def completions(folder: Path) -> list[tuple[str, str]]:
        return [(r["task_id"], r["completion"]) for r in map(json.loads, (folder / "samples.jsonl").open())]

    live = run_dir / "eval" / "local" / f"step-{step}"
    assert completions(out) == completions(live)
    assert any(c for _, c in completions(live)), "the model generated nothing to compare"


def test_rerun_resumes_and_evaluates_on_the_configured_schedule(run):
    root, args, _ = run
    run_dir = root / "runs" / pretrain.RECIPE / "t"
    before = (run_dir / "eval" / "local" / "step-4" / "summary.json").stat().st_mtime_ns
    at_init = (run_dir / "eval" / "local" / "step-0" / "summary.json").stat().st_mtime_ns
    more = [a for a in args if not a.startswith("train.max_steps=")] + ["train.max_steps=8", "eval.every=4"]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        result = pretrain.main(more)
    assert result["step"] == 8
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9)), "the resumed run continues at step 5 and repeats nothing"
    evaluated = sorted(int(p.name.split("-")[1]) for p in (run_dir / "eval" / "local").iterdir())
    assert evaluated == [0, 2, 4, 8]  # 0: the random init (eval.baseline); 6 is not a multiple of eval.every=4
    assert (run_dir / "eval" / "local" / "step-4" / "summary.json").stat().st_mtime_ns == before
    assert (run_dir / "eval" / "local" / "step-0" / "summary.json").stat().st_mtime_ns == at_init  # not redone


def test_eval_every_must_fall_on_checkpoints(tmp_path):
    with pytest.raises(ConfigError, match="multiple of train.save_every"):
        pretrain.main([f"runs_dir={tmp_path}", "train.save_every=2", "eval.every=3"])


@pytest.mark.parametrize("key, value", [("sha256", "0" * 64), ("vocab_size", 151646), ("end_of_text_id", 7)])
def test_shards_of_another_tokenizer_are_refused(run, tmp_path, key, value):
    root, _, _ = run
    shards = tmp_path / "shards"
    shutil.copytree(root / "shards", shards)
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["tokenizer"][key] = value
    (shards / "manifest.json").write_text(json.dumps(manifest))
    cfg = load_config(pretrain.Config, pretrain.DEFAULT_CONFIG)
    from shared.modeling import load_tokenizer

    with pytest.raises(SystemExit, match="rebuild the shards"):
        pretrain.check_tokenizer(shards, load_tokenizer(cfg.model), cfg)
    pretrain.check_tokenizer(root / "shards", load_tokenizer(cfg.model), cfg)  # the real ones pass


def test_missing_shards_without_a_build_recipe_say_how_to_build_them(tmp_path):
    with pytest.raises(SystemExit, match="just code-data"):
        pretrain.ensure_shards(pretrain.PretrainDataConfig(shard_dir=str(tmp_path / "none")))
