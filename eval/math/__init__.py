"""GSM8K and MATH evaluation: answer extraction, an equivalence grader that never hangs, and the CLI.

Importable pieces (light: sympy is only ever imported by the grader's worker process):
    from eval.math import evaluate_samples, load_problems, gold_answer, grade, is_equiv
"""

from eval.math.evaluate import evaluate_samples
from eval.math.grader import grade, is_equiv
from eval.math.problems import gold_answer, load_problems

__all__ = ["evaluate_samples", "gold_answer", "grade", "is_equiv", "load_problems"]
