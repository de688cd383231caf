"""Code evaluation: HumanEval(+), MBPP(+) via evalplus's tests, HumanEvalPack synthesize in six languages.

Command line: python -m eval.code (see __main__.py). In training: evaluate_model_on_subset.
"""


def evaluate_model_on_subset(*args, **kwargs):
    """See eval.code.run.evaluate_model_on_subset (imported lazily: `python -m eval.code` needs no torch)."""
    from eval.code.run import evaluate_model_on_subset as run

    return run(*args, **kwargs)
