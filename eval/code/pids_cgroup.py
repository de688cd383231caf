"""The process-count limit for root, whom the kernel exempts from RLIMIT_NPROC: a cgroup pids controller.

The evaluator often runs as root (containers, CI). There RLIMIT_NPROC does nothing, and a fork bomb inside
bubblewrap filled its PID namespace (32,446 processes, measured here) before its time limit ended it. When a
writable pids controller exists (the cgroup v1 `pids` hierarchy, or cgroup v2 with pids enabled below our
cgroup), each sample runs in a child cgroup of its own whose pids.max is its limit (processes and threads of
the sample and all it starts). Everything the sample starts stays in that cgroup, so `remove` also kills
leftovers that escaped the process group (which the fallback without bubblewrap needs). Other users get the
RLIMIT_NPROC the sandbox sets; see `process_limit_enforced`.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import queue
import signal
import threading
import time
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_names = itertools.count()


def _own_cgroups() -> dict[str, str]:
    """{controllers ("pids", "" for v2): our cgroup path} from /proc/self/cgroup."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    return own


def _candidate_roots() -> list[Path]:
    """Our own cgroup in each mounted hierarchy that has the pids controller."""
    own, found = _own_cgroups(), []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, fs = line.partition(" - ")
        mount_root, mount_point = fields.split()[3:5]
        fstype, _, options = (fs.split() + ["", "", ""])[:3]
        if fstype == "cgroup" and "pids" in options.split(","):
            path = next((p for c, p in own.items() if "pids" in c.split(",")), None)
        elif fstype == "cgroup2":
            path = own.get("")
        else:
            continue
        if path is not None and path.startswith(mount_root):
            found.append(Path(mount_point) / path[len(mount_root):].lstrip("/"))
    return found


def _usable(root: Path) -> bool:
    """Whether a child cgroup can be made here with a pids.max we may write (v2: pids enabled below root)."""
    probe = root / f"qs-code-eval-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        if not (probe / "pids.max").exists():
            (root / "cgroup.subtree_control").write_text("+pids")  # v2 only; refused where root holds processes
        (probe / "pids.max").write_text("16")
        return True
    except OSError:
        return False
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


@lru_cache(maxsize=1)
def pids_cgroup_root() -> Path | None:
    """Where per-sample cgroups go, or None: not root (RLIMIT_NPROC works), or no writable pids controller."""
    if os.geteuid() != 0:
        return None
    try:
        roots = _candidate_roots()
    except OSError:
        return None
    root = next((root for root in roots if _usable(root)), None)
    if root is not None:
        _remove_stale(root)
    return root


def _remove_stale(root: Path) -> None:
    """Empty sample cgroups of evaluators that died before removing them (killed, or out of time at exit)."""
    for path in root.glob("qs-code-eval-*-*"):
        pid = path.name.split("-")[3]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            try:
                path.rmdir()
            except OSError:
                pass


def process_limit_enforced() -> bool:
    """Whether a sample's process count is really limited here: RLIMIT_NPROC for users, a pids cgroup for root."""
    return os.geteuid() != 0 or pids_cgroup_root() is not None


class SampleCgroup:
    """One sample's cgroup: its command enters it before anything else runs, and `remove` ends what is left."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, max_processes: int) -> SampleCgroup | None:
        root = pids_cgroup_root()
        if root is None:
            return None
        path = root / f"qs-code-eval-{os.getpid()}-{next(_names)}"
        path.mkdir()
        (path / "pids.max").write_text(str(max_processes))
        return cls(path)

    def command_prefix(self) -> list[str]:
        """A shell that moves itself into the cgroup (pid 0 = the writer) and execs the rest of the command, so
        not even the sandbox's own setup runs outside it. On cgroup v1 it writes `tasks` (one thread: the shell
        has no other), which skips the kernel's global threadgroup lock and its RCU grace period: writing
        cgroup.procs there cost 4-8 ms of waiting per sample."""
        members = "tasks" if (self.path / "tasks").exists() else "cgroup.procs"
        return ["/bin/sh", "-c", f'echo 0 > "$0/{members}" && exec "$@"', str(self.path)]

    def remove(self) -> None:
        """Kill whatever is still in the cgroup, then remove it. Killed processes take a few ms to leave, so
        where the cgroup is still busy a background thread retries: the worker does not wait for it."""
        self._kill_members()
        if not self._try_rmdir():
            with _reaper_lock:
                _pending.add(self)
            _start_reaper()
            _busy.put(self)

    def _kill_members(self) -> bool:
        """SIGKILL every process in the cgroup; False when the cgroup is gone."""
        try:
            pids = (self.path / "cgroup.procs").read_text().split()
        except OSError:
            return False
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return True

    def _try_rmdir(self) -> bool:
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    def remove_waiting(self, seconds: float = 2.0) -> bool:
        deadline = time.monotonic() + seconds
        while self._kill_members() and not self._try_rmdir():
            if time.monotonic() > deadline:
                log.warning("could not remove the sample cgroup %s: processes are still leaving it", self.path)
                return False
            time.sleep(0.002)
        return True


_busy: queue.SimpleQueue[SampleCgroup] = queue.SimpleQueue()
_pending: set[SampleCgroup] = set()  # handed to the reaper and not removed yet
_reaper_lock = threading.Lock()
_reaper: threading.Thread | None = None


def _reap_forever() -> None:
    while True:
        cgroup = _busy.get()
        cgroup.remove_waiting()
        with _reaper_lock:
            _pending.discard(cgroup)


def _start_reaper() -> None:
    global _reaper
    with _reaper_lock:
        if _reaper is None:
            _reaper = threading.Thread(target=_reap_forever, name="sample-cgroup-reaper", daemon=True)
            _reaper.start()
            atexit.register(_reap_pending)


def _reap_pending() -> None:
    """At exit: every cgroup the reaper has not finished, including the one it may be working on."""
    with _reaper_lock:
        left = list(_pending)
    for cgroup in left:
        cgroup.remove_waiting()
