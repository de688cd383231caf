"""Compile caching for Java: one warm javac per worker thread instead of a cold JVM per sample.

A cold `javac` costs about half a second of JVM start and JIT warm-up per sample; a long-lived compiler
(java/QsJavacServer.java, run inside the sandbox with only the run's work folder writable) compiles a
HumanEvalPack program in tens of milliseconds once warm. Compiling runs no code from the source
(annotation processing is off). A compile that hangs past its timeout kills that server; the next
request starts a fresh one.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from functools import lru_cache
from pathlib import Path

from eval.code import toolchains
from eval.code.sandbox import Limits, Sandbox, kill_group

SOURCE = Path(__file__).with_name("java") / "QsJavacServer.java"
SERVER_JVM_FLAGS = ["-XX:+UseSerialGC", "-Xshare:auto", "-XX:-UsePerfData", "-Xmx768m"]


@lru_cache(maxsize=1)
def server_classes() -> Path:
    """Compile the server once into the cache (keyed by its source's mtime and size)."""
    toolchains.require("javac", "java")
    stat = SOURCE.stat()
    out = toolchains.cache_root() / f"javac-server-{int(stat.st_mtime)}-{stat.st_size}"
    if not (out / "QsJavacServer.class").exists():
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        subprocess.run(["javac", "-d", str(tmp), str(SOURCE)], check=True, capture_output=True)
        try:
            tmp.rename(out)
        except OSError:  # another process won the race: use its copy
            pass
    return out


class JavacServer:
    def __init__(self, sandbox: Sandbox, workroot: Path):
        self.proc = sandbox.start(["java", *SERVER_JVM_FLAGS, "-cp", str(server_classes()), "QsJavacServer"],
                                  workroot, limits=Limits(timeout_s=24 * 3600, memory_mb=None),
                                  stderr=subprocess.DEVNULL)
        self.buffer = b""

    def compile(self, source: Path, outdir: Path, timeout_s: float) -> tuple[bool | None, str]:
        """(True, "") compiled; (False, diagnostics) compile error; (None, why) the server hung or died."""
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(f"{source}\t{outdir}\n".encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None, "javac server died"
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None, "javac server timed out"
            chunk = os.read(fd, 65536)
            if not chunk:
                return None, "javac server died"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        reply = line.decode("utf-8", "replace")
        if reply == "ok":
            return True, ""
        return False, reply.removeprefix("error ").replace("\\n", "\n").replace("\\\\", "\\")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        kill_group(self.proc)


class JavacServerPool:
    """One server per executor thread, started on first use, all closed by close()."""

    def __init__(self, sandbox: Sandbox, workroot: Path):
        self.sandbox, self.workroot = sandbox, workroot
        self.local = threading.local()
        self.all: list[JavacServer] = []
        self.lock = threading.Lock()

    def compile(self, source: Path, outdir: Path, timeout_s: float) -> tuple[bool | None, str]:
        server = getattr(self.local, "server", None)
        if server is None or not server.alive():
            server = JavacServer(self.sandbox, self.workroot)
            self.local.server = server
            with self.lock:
                self.all.append(server)
        ok, message = server.compile(source, outdir, timeout_s)
        if ok is None:
            server.close()
            self.local.server = None
        return ok, message

    def close(self) -> None:
        with self.lock:
            for server in self.all:
                server.close()
            self.all.clear()
