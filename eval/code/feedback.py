"""Execution feedback: run sampled solutions against a problem's tests in the sandbox, in any of the six languages.

A feedback problem is a dict with `task_id`, `language` (python, js, java, go, cpp, rust), `style` and `test`
(the tests, never shown to the model), plus what its style needs:
- `function`: complete a function whose `prompt` (signature and docstring, HumanEvalPack fields such as
  `declaration` or `import` where the language's program needs them) the model saw. `test` is the language's
  test code as in HumanEvalPack; for Python a HumanEval-style `def check(candidate)` that nobody calls is called
  on `entry_point`.
- `program`: the model writes a whole program (MBPP); `test` holds statements (asserts) run after it. Python.
- `stdio`: the model writes a whole program reading stdin (APPS, TACO, CodeContests); `test` is a list of
  {"input", "output"} cases, compared on whitespace-separated tokens. Python.

`verify` returns one verdict per sample (status as eval.code's executor: passed, failed, timeout,
compile_error, output_limit, environment_error); a language whose toolchain is missing gives
environment_error for its samples instead of failures.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from functools import partial
from typing import Any

from eval.code import executor
from eval.code.languages import PYTHON_RUNNER, Language, Program, Step, get_language
from eval.code.prompts import generation_prompt, postprocess, strip_fences
from eval.code.sandbox import Limits, Sandbox
from eval.code.toolchains import EnvironmentProblem

log = logging.getLogger(__name__)

STYLES = ("function", "program", "stdio")
WHOLE_PROGRAM = ("Write a complete {language} program for the task below. Reply with the code in one ```{fence} "
                 "code block.\n\n{prompt}")

# Runs the solution once per case with stdin replaced and stdout captured, in one interpreter; prints nothing
# unless a case fails. The solution's source is a string literal here, so it never sees the cases' file.
STDIO_HARNESS = """
import contextlib, io, sys
__qs_cases = {cases}
__qs_source = {source}
for __qs_i, (__qs_in, __qs_out) in enumerate(__qs_cases):
    __qs_buf = io.StringIO()
    sys.stdin = io.StringIO(__qs_in)
    with contextlib.redirect_stdout(__qs_buf):
        try:
            exec(compile(__qs_source, "solution.py", "exec"), {{"__name__": "__main__"}})
        except SystemExit:
            pass
    if __qs_buf.getvalue().split() != __qs_out.split():
        raise AssertionError(f"case {{__qs_i}}: wrong output")
sys.stdin = sys.__stdin__
"""


def check_problem(problem: dict[str, Any]) -> None:
    """A clear error for a problem the machinery cannot run."""
    missing = [k for k in ("task_id", "language", "style", "test") if k not in problem]
    if missing:
        raise ValueError(f"feedback problem {problem.get('task_id', '?')}: missing {missing}")
    if problem["style"] not in STYLES:
        raise ValueError(f"feedback problem {problem['task_id']}: style must be one of {STYLES}")
    if problem["style"] != "function" and get_language(problem["language"]).name != "python":
        raise ValueError(f"feedback problem {problem['task_id']}: {problem['style']} problems are Python only")


def sampling_prompt(problem: dict[str, Any], chat: bool = True) -> str:
    """What the model sees: the function prompt, or the task statement (tests excluded by construction)."""
    lang = get_language(problem["language"])
    if problem["style"] == "function":
        return generation_prompt(problem, lang, chat)
    return WHOLE_PROGRAM.format(language=lang.fence_names[0], fence=lang.fence_names[0], prompt=problem["prompt"])


def completion_of(problem: dict[str, Any], raw: str, chat: bool = True) -> str:
    """The code that is run: the function's completion after the prompt, or the whole program."""
    lang = get_language(problem["language"])
    if problem["style"] == "function":
        return postprocess(raw, problem, lang, chat, benchmark="humanevalpack")
    return strip_fences(raw, lang)


def count_tests(problem: dict[str, Any]) -> int | None:
    """Test cases, where they can be counted (stdio cases, Python asserts); None otherwise."""
    if problem["style"] == "stdio":
        return len(problem["test"])
    if get_language(problem["language"]).name == "python":
        return sum(1 for line in problem["test"].splitlines() if line.strip().startswith("assert")) or None
    return None


def build_program(problem: dict[str, Any], completion: str, timeout_s: float) -> Program:
    lang = get_language(problem["language"])
    if problem["style"] == "stdio":
        harness = STDIO_HARNESS.format(cases=repr([(c["input"], c["output"]) for c in problem["test"]]),
                                       source=repr(completion))
        program = Program(files={"program.py": harness},
                          run=Step([sys.executable, "-I", str(PYTHON_RUNNER), "program.py"], Limits()))
    elif problem["style"] == "program":
        program = lang.build({"prompt": "", "test": problem["test"]}, completion)
    else:
        test = problem["test"]
        if lang.name == "python" and "check(" not in test.replace("def check(", ""):
            test += f"\n\ncheck({problem['entry_point']})\n"
        program = lang.build({**problem, "test": test}, completion)
    program.run.limits = dataclasses.replace(program.run.limits, timeout_s=timeout_s)
    return program


def _environment_errors(langs: set[str]) -> dict[str, str]:
    errors = {}
    for name in sorted(langs):
        lang: Language = get_language(name)
        try:
            lang.check_environment()
        except EnvironmentProblem as e:
            errors[lang.name] = str(e)
            log.error("%s: toolchain missing, its samples are not run: %s", lang.name, e)
    return errors


def verify(problems: dict[str, dict], samples: list[dict], *, timeout_s: float = 5.0, sandbox: Sandbox | None = None,
           workers: int | None = None, progress: bool = True) -> list[dict]:
    """One verdict per sample {task_id, completion}: {status, passed, language, detail}, in order."""
    langs = {s["task_id"]: get_language(problems[s["task_id"]]["language"]).name for s in samples}
    env_errors = _environment_errors(set(langs.values()))
    runnable = [i for i, s in enumerate(samples) if langs[s["task_id"]] not in env_errors]
    builders = [partial(build_program, problems[samples[i]["task_id"]], samples[i]["completion"], timeout_s)
                for i in runnable]
    outcomes = dict(zip(runnable, executor.execute_all(builders, sandbox=sandbox or Sandbox("auto"), workers=workers,
                                                       progress=progress, desc="verifying"), strict=True))
    verdicts = []
    for i, s in enumerate(samples):
        out = outcomes.get(i)
        lang = langs[s["task_id"]]
        if out is None:
            verdicts.append({"status": executor.ENV_ERROR, "passed": False, "language": lang,
                             "detail": env_errors[lang]})
        else:
            verdicts.append({"status": out.status, "passed": out.passed, "language": lang, "detail": out.detail[-300:]})
    return verdicts

