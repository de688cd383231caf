"""The sandbox's resource limits reach the sample, whether set by util-linux `prlimit` (the fast path) or by a
preexec_fn where prlimit is missing; with or without bubblewrap."""

from __future__ import annotations

import pytest

from eval.code import sandbox
from eval.code.sandbox import Limits, Sandbox, bubblewrap_works

LIMITS = Limits(timeout_s=7.0, memory_mb=1024, file_size_mb=3)
# ulimit -t (CPU s), -v (KiB of address space), -f (512-byte blocks), -c (core), -Ht (hard CPU s)
EXPECTED = ["9", str(1024 * 1024), str(3 * 2048), "0", "10"]


@pytest.mark.parametrize("mode", ["auto", "none"])
@pytest.mark.parametrize("prlimit", [True, False], ids=["prlimit", "preexec_fn"])
def test_limits_reach_the_sample(tmp_path, monkeypatch, mode, prlimit):
    if mode == "auto" and not bubblewrap_works():
        pytest.skip("bubblewrap unavailable")
    if not prlimit:
        monkeypatch.setattr(sandbox, "_prlimit_tool", lambda: None)
    elif sandbox._prlimit_tool() is None:
        pytest.skip("util-linux prlimit unavailable")
    result = Sandbox(mode).run(["/bin/sh", "-c", "ulimit -t; ulimit -v; ulimit -f; ulimit -c; ulimit -Ht"], tmp_path,
                               limits=LIMITS)
    assert result.ok, result
    assert result.stdout.split() == EXPECTED
