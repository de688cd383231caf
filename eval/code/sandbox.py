"""Run one command of model-written code in a sandbox: bubblewrap when it works, process groups otherwise.

bubblewrap (Debian `bubblewrap`) gives, in one step: a read-only view of the root file system, a private
/tmp, only the sample's folder (and folders the caller names) writable, new PID/network/IPC/UTS/user
namespaces (`--unshare-all`: no network, and every process the sample starts, daemonised or in its own
session, dies with the namespace), `--die-with-parent` (killing our process group ends the namespace) and
`--new-session` (no terminal injection). Resource limits are set by `prlimit` before bwrap starts
(setrlimit in a preexec_fn where it is missing): CPU time, address space (where the runtime allows it),
file size, process count, core dumps off; for root, whom RLIMIT_NPROC does not bind, the process count is a
cgroup pids.max where one can be made (see pids_cgroup.py). Output is read with a cap; a sample that floods
it is killed. Where bubblewrap is missing or cannot create namespaces, the fallback runs the command under
`timeout` in its own process group, with the same limits and a scrubbed environment, and warns once that
files and network are not isolated there.
"""

from __future__ import annotations

import logging
import os
import resource
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from eval.code.pids_cgroup import SampleCgroup, process_limit_enforced

log = logging.getLogger(__name__)

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    # RLIMIT_AS; None for runtimes that reserve far more address space than they use (JVM, V8, Go),
    # which get their heap cap from their own flags instead.
    memory_mb: int | None = 2048
    file_size_mb: int = 64
    max_output_bytes: int = 1 << 20
    # Processes and threads of the sample and everything it starts: RLIMIT_NPROC, and for root (whom the
    # kernel exempts from it) a cgroup pids.max. Generous, and more on big machines: rustc, V8 and the Go and
    # JVM runtimes start threads in proportion to the cores.
    max_processes: int = field(default_factory=lambda: max(1024, 16 * (os.cpu_count() or 1)))


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    output_limited: bool
    wall_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_limited


def _rlimits(limits: Limits) -> list[tuple[int, str, int, int]]:
    """(resource, prlimit option, soft, hard): limits inherited by everything the sample starts."""
    cpu = int(limits.timeout_s) + 2
    fsize = limits.file_size_mb << 20
    nproc = limits.max_processes
    out = [(resource.RLIMIT_CPU, "cpu", cpu, cpu + 1), (resource.RLIMIT_FSIZE, "fsize", fsize, fsize),
           (resource.RLIMIT_CORE, "core", 0, 0), (resource.RLIMIT_NPROC, "nproc", nproc, nproc)]
    if limits.memory_mb is not None:
        out.append((resource.RLIMIT_AS, "as", limits.memory_mb << 20, limits.memory_mb << 20))
    return out


def _prlimit_prefix(limits: Limits) -> list[str] | None:
    """util-linux's `prlimit` sets the limits and execs the command. Preferred to a preexec_fn, which forces
    a full fork() of this process: with every problem loaded (hundreds of MB) that fork alone took 27 ms
    per sample, more than the sandbox and the interpreter start together."""
    tool = _prlimit_tool()
    if tool is None:
        return None
    return [tool, *(f"--{name}={soft}:{hard}" for _, name, soft, hard in _rlimits(limits)), "--"]


@lru_cache(maxsize=1)
def _prlimit_tool() -> str | None:
    return shutil.which("prlimit")


def _set_limits(limits: Limits) -> None:
    """Runs in the child between fork and exec, where `prlimit` is missing."""
    for res, _, soft, hard in _rlimits(limits):
        resource.setrlimit(res, (soft, hard))


@lru_cache(maxsize=1)
def bubblewrap_works() -> bool:
    """True when bwrap exists and can create the namespaces we ask for (user namespaces may be disabled)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [bwrap, *_bwrap_base_args(), "--", "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _bwrap_base_args() -> list[str]:
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in _needed_under_tmp():  # the private /tmp would hide them
        args += ["--ro-bind", str(path), str(path)]
    return [*args, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]


def _needed_under_tmp() -> tuple[Path, ...]:
    """Folders that samples must read (the interpreter, its venv, our runner scripts, the toolchain cache with
    the compiled harness) and that lie under /tmp, as they do in a CI clone there: re-exposed read-only inside
    the private /tmp. The cache is looked up each time: QS_CODE_EVAL_CACHE may change within a process."""
    from eval.code import toolchains

    tmp = Path("/tmp").resolve()
    found: list[Path] = []
    for path in (*_installation_folders(), toolchains.cache_root().resolve()):
        if path.is_relative_to(tmp) and path != tmp and not any(path.is_relative_to(f) for f in found):
            found.append(path)
    return tuple(found)


@lru_cache(maxsize=1)
def _installation_folders() -> tuple[Path, ...]:
    import sys

    candidates: list[str | Path] = [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable),
                                    Path(__file__).resolve().parents[2]]
    paths = [Path(c).resolve() for c in candidates]
    return tuple(path.parent if path.is_file() else path for path in paths if path.exists())


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


class Sandbox:
    """Runs commands in a sample folder. mode: "auto" (bwrap if it works), "bwrap", or "none" (fallback)."""

    def __init__(self, mode: str = "auto", hidden: Sequence[Path] = ()):
        if mode not in ("auto", "bwrap", "none"):
            raise ValueError(f"sandbox mode must be auto, bwrap or none, not {mode!r}")
        if mode == "bwrap" and not bubblewrap_works():
            raise RuntimeError("sandbox mode 'bwrap' requested but bubblewrap is missing or cannot run here")
        self.uses_bwrap = mode == "bwrap" or (mode == "auto" and bubblewrap_works())
        self.hidden = [Path(p) for p in hidden]  # folders samples must not read (expected outputs)
        if not self.uses_bwrap:
            _warn_once("fallback", "sandbox: not using bubblewrap (mode 'none', or bwrap missing or unable to create "
                       "namespaces); running samples in their own process group under `timeout` with rlimits only. "
                       "Files outside the sample's folder and the network are NOT isolated and daemonised children "
                       "may outlive a sample (unless a pids cgroup holds them). Install Debian's `bubblewrap`.")
        if not process_limit_enforced():
            _warn_once("no-process-limit", "sandbox: running as root, whom the kernel exempts from RLIMIT_NPROC, and no "
                       "writable cgroup pids controller was found: a sample's process count is bounded only by its "
                       "PID namespace and time limit. Run as a normal user, or give this process a pids cgroup.")

    @property
    def name(self) -> str:
        return "bubblewrap" if self.uses_bwrap else "process-group (no bubblewrap)"

    def command(self, argv: Sequence[str], workdir: Path, env: Mapping[str, str],
                writable: Sequence[Path] = (), hidden: Sequence[Path] = ()) -> list[str]:
        if not self.uses_bwrap:
            return ["timeout", "-s", "KILL", "3600", *argv]  # `timeout` stands between us and the sample
        args = ["bwrap", *_bwrap_base_args()]
        for path in hidden:
            args += ["--tmpfs", str(path)]
        for path in (workdir, *writable):
            args += ["--bind", str(path), str(path)]
        for key, value in env.items():
            args += ["--setenv", key, value]
        return [*args, "--chdir", str(workdir), "--", *argv]

    def start(self, argv: Sequence[str], workdir: Path, *, limits: Limits, env: Mapping[str, str] | None = None,
              writable: Sequence[Path] = (), hidden: Sequence[Path] = (), stderr=subprocess.PIPE) -> subprocess.Popen:
        """Start the sandboxed command in its own session with piped stdin/stdout; the caller must kill_group()."""
        workdir = Path(workdir).resolve()
        argv = [_resolve(argv[0]), *argv[1:]]
        full_env = {"PATH": SAFE_PATH, "HOME": str(workdir), "LANG": "C.UTF-8", "TMPDIR": str(workdir),
                    **(env or {})}
        cmd = self.command(argv, workdir, full_env, writable, [*self.hidden, *hidden])
        prefix = _prlimit_prefix(limits)
        cgroup = SampleCgroup.create(limits.max_processes)
        try:
            proc = _SandboxedProcess(
                [*(cgroup.command_prefix() if cgroup else []), *(prefix or []), *cmd], cwd=workdir, env=full_env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
                preexec_fn=None if prefix else lambda: _set_limits(limits),
            )
        except BaseException:
            if cgroup:
                cgroup.remove()
            raise
        proc.cgroup = cgroup
        return proc

    def run(self, argv: Sequence[str], workdir: Path, *, limits: Limits, stdin: bytes = b"",
            env: Mapping[str, str] | None = None, writable: Sequence[Path] = (),
            hidden: Sequence[Path] = ()) -> SandboxResult:
        start = time.monotonic()
        proc = self.start(argv, workdir, limits=limits, env=env, writable=writable, hidden=hidden)
        out, err, timed_out, limited = _communicate(proc, stdin, start + limits.timeout_s, limits.max_output_bytes)
        kill_group(proc)
        return SandboxResult(
            returncode=None if timed_out or limited else proc.returncode,
            stdout=out.decode("utf-8", "replace"), stderr=err.decode("utf-8", "replace"),
            timed_out=timed_out, output_limited=limited, wall_s=time.monotonic() - start,
        )


class _SandboxedProcess(subprocess.Popen):
    cgroup: SampleCgroup | None = None  # removed by kill_group


def _resolve(program: str) -> str:
    """Absolute path of a command from the evaluator's PATH (the sandbox's PATH is a short, safe one)."""
    if "/" in program:
        return program
    return shutil.which(program) or program


def _communicate(proc: subprocess.Popen, stdin: bytes, deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin, read both pipes up to `cap` bytes in total, stop at the deadline."""
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    timed_out = limited = False
    exited_at: float | None = None
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            timed_out = proc.poll() is None
            break
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > 0.5:
            break  # only a leftover child (fallback mode) still holds the pipes open
        for key, _ in sel.select(timeout=min(0.1, deadline - now)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buffers[key.fd] += chunk
            if sum(len(b) for b in buffers.values()) > cap:
                limited = True
                break
        if limited:
            break
    sel.close()
    if not timed_out and not limited:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    return bytes(buffers[proc.stdout.fileno()]), bytes(buffers[proc.stderr.fileno()]), timed_out, limited


def kill_group(proc: subprocess.Popen) -> None:
    """Kill the whole process group (with bwrap this also ends the PID namespace and all inside it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    cgroup = getattr(proc, "cgroup", None)
    if cgroup is not None:
        cgroup.remove()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream and not stream.closed:
            try:
                stream.close()
            except OSError:
                pass
