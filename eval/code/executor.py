"""Execute many sample programs in parallel: each in its own folder, compiled and run in the sandbox.

Threads are enough for the parallelism: every step is a sandboxed child process, so the GIL is not the
bottleneck, and the evaluator itself never runs model-written code in its own process.
"""

from __future__ import annotations

import heapq
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from eval.code.javac_server import JavacServerPool
from eval.code.languages import Program
from eval.code.sandbox import Sandbox, SandboxResult

log = logging.getLogger(__name__)

PASSED, FAILED, TIMEOUT, COMPILE_ERROR, OUTPUT_LIMIT, ENV_ERROR = (
    "passed", "failed", "timeout", "compile_error", "output_limit", "environment_error")


@dataclass
class Outcome:
    status: str
    detail: str = ""  # the tail of the compiler's or the program's stderr, to see why it failed
    compile_s: float = 0.0
    run_s: float = 0.0
    files: dict[str, bytes] | None = None  # the program's `collect` files, when it passed
    stdout_tail: str = ""  # the end of stdout, when it passed (the token is its last line)

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _tail(text: str, n: int = 400) -> str:
    return text[-n:].strip()


def _failure_status(result: SandboxResult) -> str:
    if result.timed_out:
        return TIMEOUT
    if result.output_limited:
        return OUTPUT_LIMIT
    return FAILED


def _compile(program: Program, sandbox: Sandbox, workdir: Path, javac: JavacServerPool | None
             ) -> tuple[str | None, str, float]:
    """(failure status or None, detail, seconds): a warm compile server when the program allows one."""
    step = program.compile
    assert step is not None
    start = time.monotonic()
    if program.server_compile and javac is not None:
        ok, message = javac.compile(workdir / program.server_compile, workdir, step.limits.timeout_s)
        if ok is not None:  # None: the server hung or died; compile the plain way below
            return (None if ok else COMPILE_ERROR), _tail(message), time.monotonic() - start
    result = sandbox.run(step.argv, workdir, limits=step.limits, env=step.env, writable=step.writable)
    if result.ok:
        return None, "", result.wall_s
    status = COMPILE_ERROR if not (result.timed_out or result.output_limited) else _failure_status(result)
    return status, _tail(result.stderr or result.stdout), result.wall_s


def execute_program(program: Program, sandbox: Sandbox, workroot: Path,
                    javac: JavacServerPool | None = None) -> Outcome:
    """Compile (when the language needs it) and run one program; its folder is removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="s-", dir=workroot))
    try:
        program.write_files(workdir)
        compile_s = 0.0
        if program.compile is not None:
            failure, detail, compile_s = _compile(program, sandbox, workdir, javac)
            if failure:
                return Outcome(failure, detail, compile_s)
        token = secrets.token_hex(16)
        step = program.run
        result = sandbox.run(step.argv, workdir, limits=step.limits, env=step.env, stdin=(token + "\n").encode(),
                             hidden=step.hidden)
        if program.verdict(result, token):
            return Outcome(PASSED, "", compile_s, result.wall_s, _collect(program, workdir), result.stdout[-2000:])
        return Outcome(_failure_status(result), _tail(result.stderr or result.stdout), compile_s, result.wall_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _collect(program: Program, workdir: Path) -> dict[str, bytes]:
    files = {}
    for name in program.collect:
        path = workdir / name
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= program.collect_max_bytes:
            files[name] = path.read_bytes()
    return files


@dataclass(order=True)
class Job:
    """A program to run; smaller priorities run first (ties in submission order)."""

    priority: tuple
    build: Callable[[], Program] = field(compare=False)
    key: Hashable = field(compare=False)


def execute_queue(jobs: Iterable[Job], *, total: int, follow_up: Callable[[Hashable, Outcome], Iterable[Job]]
                  | None = None, sandbox: Sandbox | None = None, workers: int | None = None,
                  progress: bool = True, desc: str = "executing") -> dict[Hashable, Outcome]:
    """Run jobs by priority over worker threads; `follow_up(key, outcome)` may queue jobs that needed that one
    (a task's samples after its ground truth), so later stages fill the workers while earlier ones finish.
    An exception in a build or follow-up stops the queue and is raised here."""
    sandbox = sandbox or Sandbox()
    workers = workers or default_workers()
    workroot = Path(tempfile.mkdtemp(prefix="qs-code-eval-"))
    started = time.monotonic()
    javac = JavacServerPool(sandbox, workroot)
    heap = list(jobs)
    heapq.heapify(heap)
    cond = threading.Condition()
    results: dict[Hashable, Outcome] = {}
    errors: list[BaseException] = []
    running = 0
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="program", mininterval=2.0)

    def worker() -> None:
        nonlocal running
        while True:
            with cond:
                while not heap and running and not errors:
                    cond.wait()
                if errors or not heap:
                    cond.notify_all()
                    return
                job = heapq.heappop(heap)
                running += 1
            try:
                outcome = execute_program(job.build(), sandbox, workroot, javac)
                more = list(follow_up(job.key, outcome)) if follow_up else []
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                with cond:
                    running -= 1
                    errors.append(e)
                    cond.notify_all()
                return
            with cond:
                running -= 1
                results[job.key] = outcome
                for j in more:
                    heapq.heappush(heap, j)
                cond.notify_all()
            bar.update(1)

    try:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        bar.close()
        javac.close()
        shutil.rmtree(workroot, ignore_errors=True)
    if errors:
        raise errors[0]
    log.info("%s: %d programs in %.1fs with %d workers (%s sandbox)", desc, len(results),
             time.monotonic() - started, workers, sandbox.name)
    return results


def execute_all(builders: Sequence[Callable[[], Program]], *, sandbox: Sandbox | None = None,
                workers: int | None = None, progress: bool = True, desc: str = "executing") -> list[Outcome]:
    """Run every program (built lazily in the worker), in order of the input; progress bar with rate and ETA."""
    jobs = [Job((i,), build, i) for i, build in enumerate(builders)]
    results = execute_queue(jobs, total=len(jobs), sandbox=sandbox, workers=workers, progress=progress, desc=desc)
    return [results[i] for i in range(len(jobs))]
