"""Every option of every evaluator and tool keeps a spelling that survives torchrun's and DeepSpeed's launchers.

Both launchers parse their own options with argparse, which also accepts unambiguous prefixes and rejects
ambiguous ones anywhere on the command line, even after the module: `torchrun ... -m eval.math --n 3` fails
before our parser runs. Recipes take only `key=value` (nothing for a launcher to match). The launchers'
parsers are the real ones; the options are read from each module's own parser.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

MODULES = ["eval.math", "eval.math.latest", "eval.code", "eval.code.latest", "eval.watch", "eval.report",
           "shared.slurm", "code_qwen.plan", "data_recipes.sft_data"]


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    """The module's argument parser, caught when main() first parses (nothing runs past that point)."""
    def capture(self, args=None, namespace=None):
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    package = importlib.import_module(module)
    main = getattr(package, "main", None) or importlib.import_module(module + ".__main__").main
    with pytest.raises(_Captured) as caught:
        main([])
    monkeypatch.undo()
    return caught.value.parser


def launchers():
    from deepspeed.launcher.runner import parse_args as deepspeed_parse
    from torch.distributed.run import get_args_parser

    torchrun = get_args_parser()
    yield "torchrun", lambda rest: torchrun.parse_args(["--nproc_per_node", "2", "-m", "mod", *rest]).training_script_args
    yield "deepspeed", lambda rest: deepspeed_parse(["--num_gpus", "2", "--module", "mod", *rest]).user_args


def survives(launch, option: str) -> bool:
    for rest in ([option, "1"], [f"{option}=1"]):
        try:
            if launch(rest) != rest:
                return False
        except SystemExit:
            return False
    return True


@pytest.mark.parametrize("module", MODULES)
def test_every_option_has_a_spelling_launchers_pass_through(module, monkeypatch, capsys):
    parser = parser_of(module, monkeypatch)
    for name, launch in launchers():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert any(survives(launch, o) for o in action.option_strings), (module, name, action.option_strings)
    capsys.readouterr()  # the launchers' usage messages for the spellings that fail


def test_bare_n_is_swallowed_and_num_samples_is_not(monkeypatch, capsys):
    """Why --num-samples exists: the launchers take --n for an ambiguous abbreviation of their own options."""
    for module in ("eval.math", "eval.code", "eval.code.latest"):
        n = next(a for a in parser_of(module, monkeypatch)._actions if "--n" in a.option_strings)
        assert "--num-samples" in n.option_strings
    for _, launch in launchers():
        assert not survives(launch, "--n") and survives(launch, "--num-samples")
    capsys.readouterr()
