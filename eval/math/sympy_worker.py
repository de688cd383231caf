"""A sympy comparison that cannot hang its caller: a worker subprocess with a hard per-call deadline.

sympy can run for hours (or allocate gigabytes) on a hostile answer such as `2^{10^{10^{10}}}`, and a
signal alarm alone cannot stop C-level big-integer arithmetic, nor can it be used from threads. So each
calling process owns one worker subprocess (JSON lines over pipes): the worker interrupts itself with
an interval timer, and the caller kills it when its deadline passes and starts a fresh one. Calls are
serialised by a lock, so threads may share the client; a forked child (a process pool) notices the pid
change and starts its own worker.

The worker runs `serve()` in a fresh interpreter (what the client starts); it reads requests
`{"kind": "expression"|"equation", "a": ..., "b": ...}` and answers `{"equal": bool, "error": str|None}`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

WORKER_ALARM_S = 2.0  # the worker gives up on its own after this
CALL_DEADLINE_S = 3.0  # the caller kills the worker after this (C code ignores the alarm)
STARTUP_DEADLINE_S = 60.0  # importing sympy on a loaded 2-core machine can take a while, once
MEMORY_LIMIT_BYTES = 2 << 30
# Errors that say nothing about the pair (a verdict after one of these must not be cached).
TRANSIENT_ERRORS = ("busy", "worker died", "worker failed to start")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm()


def serve() -> None:
    """Worker main loop: one JSON request per line on stdin, one JSON answer per line on stdout."""
    import resource
    import signal

    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    except (ValueError, OSError):
        pass  # some platforms refuse; the caller's deadline still holds
    signal.signal(signal.SIGALRM, _on_alarm)
    from eval.math.symbolic import compare

    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict = {"equal": False, "error": None}
        signal.setitimer(signal.ITIMER_REAL, WORKER_ALARM_S)
        try:
            answer["equal"] = bool(compare(request["kind"], request["a"], request["b"]))
        except _Alarm:
            answer["error"] = "timeout"
        except BaseException as exc:  # MemoryError, RecursionError, sympy internals: all mean "not equal"
            answer["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


class SympyWorker:
    """Client side: `compare(kind, a, b)` -> (equal, error); never blocks longer than the deadline."""

    def __init__(self, call_deadline_s: float = CALL_DEADLINE_S) -> None:
        self.call_deadline_s = call_deadline_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._owner_pid = -1
        self._buffer = b""
        self._ready = False
        self.restarts = 0

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            # -c rather than -m: the package imports this module, and runpy warns about running it twice
            [sys.executable, "-c", "from eval.math.sympy_worker import serve; serve()"],
            # stderr inherited: a worker that cannot start (a broken sympy install) says why
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env,
            cwd=str(PROJECT_ROOT),
        )
        self._owner_pid = os.getpid()
        self._buffer = b""
        self._ready = False

    def _kill(self) -> None:
        if self._proc is not None and self._owner_pid == os.getpid():
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
        self._proc = None

    def _read_line(self, deadline: float) -> bytes | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None  # the worker died
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _ensure_ready(self) -> bool:
        if self._proc is None or self._owner_pid != os.getpid() or self._proc.poll() is not None:
            if self._owner_pid == os.getpid():
                self._kill()
            self._proc = None
            self._start()
        if not self._ready:
            self._ready = self._read_line(time.monotonic() + STARTUP_DEADLINE_S) is not None
            if not self._ready:
                log.warning("the sympy worker did not start within %.0fs: symbolic comparisons answer False",
                            STARTUP_DEADLINE_S)
                self._kill()
        return self._ready

    def compare(self, kind: str, a: str, b: str, deadline_s: float | None = None) -> tuple[bool, str | None]:
        """(equal, error): error is None, the worker's own (an exception, "timeout"), "killed at deadline",
        or one of TRANSIENT_ERRORS. deadline_s bounds the whole call, waiting for other threads included."""
        budget = self.call_deadline_s if deadline_s is None else min(deadline_s, self.call_deadline_s)
        start = time.monotonic()
        if not self._lock.acquire(timeout=max(budget, 0.0)):
            return False, "busy"  # other threads held the worker for this call's whole budget
        remaining = budget - (time.monotonic() - start)
        try:
            if not self._ensure_ready():  # a (re)start's imports are not charged to the call
                return False, "worker failed to start"
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write((json.dumps({"kind": kind, "a": a, "b": b}) + "\n").encode())
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                return False, "worker died"
            line = self._read_line(time.monotonic() + remaining)
            if line is None:
                self._kill()
                self.restarts += 1
                self._start()  # warm up the replacement now, so the next call does not wait for imports
                return False, "killed at deadline"
            answer = json.loads(line)
            return bool(answer["equal"]), answer.get("error")
        finally:
            self._lock.release()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's worker (it stays the parent's) and any held lock."""
        self._lock = threading.Lock()
        self._proc = None
        self._owner_pid = -1
        self._buffer = b""
        self._ready = False

    def close(self) -> None:
        with self._lock:
            self._kill()


_WORKER = SympyWorker()
atexit.register(_WORKER.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKER.forget_after_fork)


def shared_worker() -> SympyWorker:
    """The calling process's worker (one per process; forks get their own on first use)."""
    return _WORKER


if __name__ == "__main__":
    serve()
