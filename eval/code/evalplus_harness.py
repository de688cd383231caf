"""Sandbox side of the HumanEval(+)/MBPP(+) evaluation, and the value codec both sides share.

In the sandbox: `python -I evalplus_harness.py` in a folder holding task.json, with the parent's token as
the first line of stdin. It defines the solution, calls the entry point on every input (each under its own
time limit, printing swallowed), writes the encoded outputs to outputs.jsonl, runs the original test
(`check(candidate)` or MBPP assertions) if given, and prints the token last. The parent compares outputs
with the expected ones itself: expected outputs never enter the sandbox, so code that rewrites this
harness's comparison cannot make a wrong answer pass. Stdlib only: it must start fast.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sys
import time
from contextlib import redirect_stderr, redirect_stdout

# ----------------------------------------------------------------------------- codec
# JSON cannot tell a tuple from a list, has no sets, complex numbers or non-string keys: tag them.


class Opaque:
    """A value the codec cannot carry (a regex match, a generator...): equal to nothing, but not None."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.text}>"


def encode(value, depth: int = 0):
    if depth > 200:
        raise ValueError("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 1 << 53 else {"__t": "int", "v": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__t": "float", "v": repr(value)}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"__t": "tuple", "v": [encode(v, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__t": type(value).__name__, "v": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__t": "dict", "v": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, complex):
        return {"__t": "complex", "v": [encode(value.real), encode(value.imag)]}
    if isinstance(value, bytes):
        return {"__t": "bytes", "v": value.hex()}
    if hasattr(value, "item") and type(value).__module__ == "numpy":  # numpy scalars: compare as Python ones
        return encode(value.item(), depth + 1)
    return {"__t": "opaque", "type": type(value).__name__, "v": repr(value)[:200]}


def decode(value):
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag, v = value["__t"], value.get("v")
    if tag == "int":
        return int(v)
    if tag == "float":
        return float(v)
    if tag == "tuple":
        return tuple(decode(x) for x in v)
    if tag == "set":
        return {decode(x) for x in v}
    if tag == "frozenset":
        return frozenset(decode(x) for x in v)
    if tag == "dict":
        return {decode(k): decode(x) for k, x in v}
    if tag == "complex":
        return complex(decode(v[0]), decode(v[1]))
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "opaque":
        return Opaque(value.get("type", "?"), v)
    raise ValueError(f"unknown tag {tag!r}")


# ----------------------------------------------------------------------------- sandbox side


class _TimeLimit(BaseException):
    """BaseException so that a sample's `except Exception` cannot swallow it."""


def _on_alarm(signum, frame):
    raise _TimeLimit()


def _call(fn, args, limit: float):
    sink = io.StringIO()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        with redirect_stdout(sink), redirect_stderr(sink):
            start = time.perf_counter()
            out = fn(*args)
            return out, time.perf_counter() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _write(f, record: dict) -> None:
    f.write(json.dumps(record) + "\n")
    f.flush()


def main() -> None:
    token = sys.stdin.readline().strip()
    sys.stdin.close()
    with open("task.json", encoding="utf-8") as f:
        task = json.load(f)
    signal.signal(signal.SIGALRM, _on_alarm)
    out = open("outputs.jsonl", "w", encoding="utf-8")
    namespace: dict = {"__name__": "__main__"}
    fn = None
    try:
        _call(lambda: exec(task["code"], namespace), (), task["load_limit"])
        fn = namespace[task["entry_point"]]
    except BaseException as e:  # noqa: BLE001 - any failure to define the function fails every input
        _write(out, {"load_error": type(e).__name__})
    if fn is not None:
        for i, raw in enumerate(task["inputs"]):
            try:
                value, seconds = _call(fn, decode(raw), task["time_limits"][i])
                _write(out, {"i": i, "out": encode(value), "t": seconds})
            except BaseException as e:  # noqa: BLE001
                _write(out, {"i": i, "error": type(e).__name__})
                if task["stop_on_error"]:
                    break
    if task.get("test") and fn is not None:
        try:
            _call(lambda: exec(task["test"], namespace), (), task["load_limit"])
            _call(namespace["check"], (fn,), task["test_limit"]) if task["test_calls_check"] else None
            _write(out, {"original": True})
        except BaseException as e:  # noqa: BLE001
            _write(out, {"original": False, "error": type(e).__name__})
    out.close()
    sys.stdout.flush()
    os.write(1, ("\n" + token + "\n").encode())
    os._exit(0)


if __name__ == "__main__":
    main()
