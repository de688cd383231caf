"""Sandbox side of the HumanEval(+)/MBPP(+) evaluation, and what of the expected outputs is cached.

Two modes, both `main(MODE)` of this module, run by `python -I -S` from bytecode the parent compiled, in a
folder holding job.marshal (written by the parent; inputs are marshalled, which keeps tuples, sets and big
ints exact and loads at C speed), with the parent's token as the first line of stdin. The token is printed
last, in one write with the result, so an early exit, a crash or a killed parent never reads as success.

- `ground-truth` (canonical solutions only, never sample code): per task and input, the canonical output
  and its CPU time, written to gt-out.marshal. Small outputs are kept as values; large ones (HumanEval/15
  and /130 return megabytes per input) as a digest of their exact types and content, so the cache stays small.
  Computed once per task, cached by the parent, shared by every sample and run.
- `sample`: defines the canonical solution first (before any sample code can touch the interpreter), then
  the sample, and checks each input under max(1 s, 4 x the canonical's time) as evalplus does (CPU time
  here, so limits do not shrink on a loaded machine), with evalplus's comparison rules; then the original
  test (`check(candidate)` or MBPP asserts). An output that matches the cached value, or whose digest
  equals the cached one, passes; any other output is compared with the canonical output recomputed here,
  in this process, so a verdict never rests on the cache alone being right.

Like every in-process harness it trusts that sample code does not go looking for the harness's own
objects. Stdlib only (-S skips site's 15-20 ms per start); numpy is added to the path and imported only
for float tolerance.
"""

from __future__ import annotations

import io
import marshal
import math
import os
import sys
import time

try:  # the C module under `signal`, whose enum wrappers cost 4 ms per start
    import _signal as signal
except ImportError:  # not CPython
    import signal  # type: ignore[no-redef]

# No json (7 ms with its `re`) or pickle (4 ms); hashlib (OpenSSL, 4 ms) and importlib only where used: a
# sample's harness starts once per sample, and most never need them.

# ----------------------------------------------------------------------------- expected values
# The parent caches each canonical output as the value itself (marshal keeps tuples, sets, big ints, floats
# and -0.0 exact and loads at C speed) when it is small and built only of exact builtin types, else as a
# digest when it is a large flat value, else not at all (the sample's harness then recomputes it).

MARSHAL_VERSION = 2  # no back-references: equal values of the same exact types give equal bytes
DIGEST_FORMAT = "marshal2-sha256"  # part of the parent's cache key: digests compare only within a format
_SCALARS = {type(None), bool, int, float, complex, str, bytes}
_CONTAINERS = {list, tuple, set, frozenset, dict}
_FLAT_TYPES = {str, int, float, bool, type(None)}  # no bytes: see sample_digest


def _is_plain(value, depth: int = 0) -> bool:
    """Built only of exact builtin types: no subclass with an __eq__ of its own, no buffer object (a numpy
    array, a bytearray) that marshal would quietly turn into bytes."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind not in _CONTAINERS or depth > 100:
        return False
    items = (x for pair in value.items() for x in pair) if kind is dict else value
    return all(_is_plain(x, depth + 1) for x in items)


def small_plain_value(value, max_bytes: int) -> bool:
    """Whether the canonical output is cached as itself: plain and at most max_bytes marshalled. Sized before
    the walk, since the outputs worth a digest are megabytes (a million-float list, a 10 MB string)."""
    if isinstance(value, (str, bytes, list, tuple, set, frozenset, dict)) and len(value) > max_bytes:
        return False
    if isinstance(value, int) and value.bit_length() > 8 * max_bytes:
        return False
    return _is_plain(value) and len(marshal.dumps(value, MARSHAL_VERSION)) <= max_bytes


def _has_nan(values, kinds: set) -> bool:
    if kinds <= {int, float, bool}:  # math.isnan takes ints too: one C loop (HumanEval/130 mixes them)
        try:
            return any(map(math.isnan, values))
        except OverflowError:  # an int beyond float range: no NaN there, but ask the slow way
            pass
    return any(x != x for x in values if type(x) is float)


def expected_digest(value) -> str | None:
    """Digest of a canonical output that is a flat value: a str or int, or a list or tuple of str, int, float,
    bool and None, by exact type, without NaN (unequal to itself); else None (not cached as a digest)."""
    kind = type(value)
    if kind in (list, tuple):
        kinds = set(map(type, value))
        if not kinds <= _FLAT_TYPES:
            return None
        if float in kinds and _has_nan(value, kinds):
            return None
    elif kind not in (str, int):
        return None
    return _digest_marshal(value)


def sample_digest(value) -> str | None:
    """Digest of a sample's output, comparable with expected_digest, without scanning it: marshal writes only
    exact builtin types, each with its own type code (int vs float vs bool, list vs tuple), refuses subclasses
    and other objects, and is self-delimiting. The one exception, buffer objects (bytearray, numpy arrays)
    written as bytes, cannot match because expected digests hold no bytes. So an equal digest means the same
    exact types and values: `out == exp`, which passes every rule. Equal values may still differ here (-0.0
    vs 0.0, interned strings): those only take the slower exact path."""
    try:
        return _digest_marshal(value)
    except (ValueError, RecursionError):  # unmarshallable, or nested too deeply
        return None


def _digest_marshal(value) -> str:
    import hashlib  # only for outputs large enough to digest: OpenSSL's SHA-256 (SHA-NI) hashes twice as fast as blake2b

    return hashlib.sha256(marshal.dumps(value, MARSHAL_VERSION)).hexdigest()


# ----------------------------------------------------------------------------- comparison (evalplus's rules)


def _is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


_EXTRA_PATH: list[str] = []  # where numpy lives: the harness runs without site-packages (-S)


def _allclose(out, exp, atol: float) -> bool:
    sys.path.extend(p for p in _EXTRA_PATH if p not in sys.path)
    import numpy as np  # only on the tolerance path: most samples never pay for the import

    return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))


def outputs_match(dataset: str, entry_point: str, inp: list, out, exp, atol: float, oracles) -> bool:
    """evalplus 0.3.1's differential check with its special oracles, and HumanEval/32 fixed (PR #201)."""
    try:
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":  # Mbpp/164
                exact = True
            elif entry_point == "sum_div":  # Mbpp/295
                exact = exact or out == 0
            elif entry_point == "surface_Area":  # Mbpp/581
                exact = exact or abs(out - oracles._surface_Area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":  # Mbpp/558
                exact = exact or out == oracles._digit_distance_nums(*inp)
            elif entry_point in oracles.MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(exp)
            elif entry_point in oracles.MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":
            # evalplus asserts this, then `continue`s without marking the input passed: 163/164 canonical
            return abs(oracles._poly(*inp, out)) <= atol
        if atol == 0 and _is_floats(exp):
            atol = 1e-6
        if exact is True or (exact and not atol):
            return bool(exact)
        if atol == 0 or type(out) is not type(exp):
            return False
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False
        return _allclose(out, exp, atol)
    except BaseException:  # noqa: BLE001 - an output that cannot even be compared is wrong
        return False


# ----------------------------------------------------------------------------- sandbox side


class _TimeLimit(BaseException):
    """BaseException so that a sample's `except Exception` cannot swallow it."""


def _on_alarm(signum, frame):
    raise _TimeLimit()


def _call(fn, args, limit: float):
    """fn(*args) under a CPU-time limit: CPU seconds, unlike wall seconds, do not stretch when the machine is
    busy, so neither the reference timing nor the limit drifts with load (a sample that sleeps is caught
    by the sandbox's wall-clock limit instead). Timed with the thread's CPU clock: under the sandbox's
    RLIMIT_CPU the process clock only advances in 4 ms ticks (most canonical inputs read 0.0)."""
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _DISCARD
    signal.setitimer(signal.ITIMER_PROF, limit)
    try:
        start = time.thread_time()
        out = fn(*args)
        return out, time.thread_time() - start
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        sys.stdout, sys.stderr = saved


class _Discard(io.TextIOBase):
    """Where the code under test prints: nothing is kept, so printing in a loop cannot grow memory."""

    def write(self, s: str) -> int:
        return len(s)


_DISCARD = _Discard()


def _define(code: str, entry_point: str, limit: float):
    namespace: dict = {"__name__": "__main__"}
    _call(lambda: exec(code, namespace), (), limit)
    return namespace, namespace[entry_point]


class _LazyOracles:
    """evalplus's special oracles, loaded on first use (only a few entry points ever need them)."""

    def __init__(self, path: str):
        self._path, self._module = path, None

    def __getattr__(self, name: str):
        if self._module is None:
            self._module = load_oracles(self._path)
        return getattr(self._module, name)


def load_oracles(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("evalplus_special_oracle", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load evalplus oracles from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ORACLES_NEEDING_INPUTS = {"surface_Area", "digit_distance_nums", "find_zero"}


class ReferenceFailed(Exception):
    """The canonical solution failed on its own input: the problems file is broken, not the sample."""


def _reference_output(task: dict, reference, raw: bytes):
    """(expected output, CPU seconds) of the canonical solution on one marshalled input."""
    try:
        exp, seconds = _call(reference, marshal.loads(raw), task["reference_limit"])
    except BaseException as e:  # noqa: BLE001 - a broken reference is the parent's error to report
        raise ReferenceFailed(f"reference solution failed: {type(e).__name__}") from None
    return (exp is not None if task["output_not_none"] else exp), seconds


def _ground_truth_entry(task: dict, reference, raw: bytes) -> dict:
    """{"s": seconds} plus "v" (the output itself) when small and plain, else "d" (its digest) where one
    exists; with neither, the sample's harness recomputes this input's output."""
    exp, seconds = _reference_output(task, reference, raw)
    entry: dict = {"s": seconds}
    if small_plain_value(exp, task["max_value_bytes"]):
        entry["v"] = exp
    elif task["digest_ok"]:
        digest = expected_digest(exp)
        if digest is not None:
            entry["d"] = digest
    return entry


def ground_truth(job: dict) -> dict:
    """Per task of the batch: its entries, or the error that makes its problems file unusable."""
    out: dict = {}
    for task in job["tasks"]:
        try:
            reference = _define(task["reference"], task["entry_point"], task["load_limit"])[1]
            out[task["key"]] = {"entries": [_ground_truth_entry(task, reference, raw) for raw in task["inputs"]]}
        except BaseException as e:  # noqa: BLE001
            out[task["key"]] = {"error": str(e) if isinstance(e, ReferenceFailed) else type(e).__name__}
    return out


def _sample_output_matches(task: dict, entry: dict, raw: bytes, fn, reference, oracles) -> bool:
    """Against the cached expected output first; a mismatch (or an input cached without a value) is decided
    against the canonical output recomputed here, in the sample's own process, so a verdict never rests on
    a cache made in another process (string hashing, hence set order, differs between processes)."""
    args = marshal.loads(raw)  # a fresh copy: samples may mutate their arguments
    out, _ = _call(fn, args, max(task["min_time_limit"], task["time_limit_factor"] * entry["s"]))
    entry_point = task["entry_point"]
    # the inputs again, unmutated, only for the few oracles that look at them
    inp = marshal.loads(raw) if entry_point in _ORACLES_NEEDING_INPUTS else args
    if "v" in entry and outputs_match(task["dataset"], entry_point, inp, out, entry["v"], task["atol"], oracles):
        return True
    if "d" in entry and sample_digest(out) == entry["d"]:
        return True  # same exact types and content: `out == exp`, which every rule passes
    exp, _ = _reference_output(task, reference, raw)
    return outputs_match(task["dataset"], entry_point, inp, out, exp, task["atol"], oracles)


def _check_inputs(task: dict, fn, reference, oracles) -> list[bool]:
    """Per input, in order, until the first failure (the verdicts that count need every input)."""
    verdicts = []
    for raw, entry in zip(task["inputs"], task["expected"], strict=True):
        try:
            ok = _sample_output_matches(task, entry, raw, fn, reference, oracles)
        except ReferenceFailed:
            raise  # not the sample's fault
        except BaseException:  # noqa: BLE001
            ok = False
        verdicts.append(ok)
        if not ok:
            break
    return verdicts


def check_sample(task: dict) -> dict:
    oracles = _LazyOracles(task["oracles"])
    # The reference is defined first, before any sample code can touch the interpreter's state.
    reference = _define(task["reference"], task["entry_point"], task["load_limit"])[1] if task["inputs"] else None
    verdict: dict = {"base": None, "plus": None, "original": None, "n": len(task["inputs"])}
    fn = None
    try:
        namespace, fn = _define(task["code"], task["entry_point"], task["load_limit"])
    except BaseException:  # noqa: BLE001 - a sample that does not define its function fails everything
        namespace = {}
    if task["inputs"]:
        try:
            ok = _check_inputs(task, fn, reference, oracles) if fn is not None else []
        except ReferenceFailed as e:
            ok, verdict["reference_error"] = [], str(e)
        nb = task["n_base"]
        verdict["base"] = len(ok) >= nb and all(ok[:nb])
        verdict["plus"] = len(ok) == len(task["inputs"]) and all(ok)
    if task.get("test"):
        verdict["original"] = False
        try:
            if fn is not None or (namespace and not task["test_calls_check"]):
                _call(lambda: exec(task["test"], namespace), (), task["load_limit"])
                if task["test_calls_check"]:
                    _call(namespace["check"], (fn,), task["test_limit"])
                verdict["original"] = True
        except BaseException:  # noqa: BLE001
            verdict["original"] = False
    return verdict


def _flat_json(record: dict) -> str:
    """JSON of a flat dict of None/bool/int/ASCII str (the verdict), without importing json."""
    def scalar(v) -> str:
        if v is None or isinstance(v, bool):
            return {None: "null", True: "true", False: "false"}[v]
        if isinstance(v, int):
            return str(v)
        return '"' + "".join(c if c.isprintable() and c.isascii() and c not in '"\\' else "?" for c in str(v)) + '"'
    return "{" + ", ".join(f'"{k}": {scalar(v)}' for k, v in record.items()) + "}"


def main(mode: str) -> None:
    exit_now, write = os._exit, os.write  # bound before sample code runs (it may patch os)
    token = sys.stdin.readline().strip()
    sys.stdin.close()
    with open("job.marshal", "rb") as f:  # written by the parent: only our own data, never sample output
        job = marshal.load(f)
    os.remove("job.marshal")
    _EXTRA_PATH[:] = job.get("python_path", [])
    signal.signal(signal.SIGPROF, _on_alarm)
    if mode == "ground-truth":
        with open("gt-out.marshal", "wb") as out:
            marshal.dump(ground_truth(job), out, MARSHAL_VERSION)
        result: dict = {"ok": True}
    else:
        result = check_sample(job)
    sys.stdout.flush()
    # Result and token in one write after the last sample code ran: nothing the sample printed can follow.
    write(1, ("\n" + _flat_json(result) + "\n" + token + "\n").encode())
    exit_now(0)


if __name__ == "__main__":
    main(sys.argv[1])
