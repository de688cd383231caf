"""Run a module as a plain process or under torchrun (gloo on CPU), as users do; used by the multi-rank tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def command(module: str, args: list[str], ranks: int) -> list[str]:
    if ranks == 1:
        return [sys.executable, "-m", module, *args]
    # --standalone: torchrun binds a free port itself (no window for another job to take one we picked)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", "-m", module,
            *args]


def extensions_dir() -> str:
    """A torch-extensions cache of this interpreter's own: DeepSpeed JIT-builds its CPU shared-memory comm op
    (at every process-group start) with include paths spelled through the venv's path, so checkouts whose venvs
    are different paths to one install rebuild it (minutes of CPU) each time they share one cache directory."""
    import hashlib

    import torch

    given = os.environ.get("TORCH_EXTENSIONS_DIR")
    key = hashlib.sha256(str(Path(torch.__file__).parent).encode()).hexdigest()[:12]
    return given or str(Path.home() / ".cache" / "torch_extensions" / f"venv-{key}")


def environment() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TORCH_EXTENSIONS_DIR": extensions_dir()}
    for key in LAUNCHER_VARS:
        env.pop(key, None)  # torchrun sets its own
    return env


def run(module: str, args: list[str], ranks: int, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run to the end; a failure shows the output."""
    proc = subprocess.run(command(module, args, ranks), cwd=ROOT, env=environment(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{module} on {ranks} rank(s) failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def run_here(module: str, args: list[str]) -> None:
    """The same command as one plain process, in this (already warm) interpreter: no start-up cost."""
    import importlib

    import torch

    package = importlib.import_module(module)
    main = getattr(package, "main", None) or importlib.import_module(module + ".__main__").main
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ["TORCH_EXTENSIONS_DIR"] = extensions_dir()
    try:
        assert main(args) in (0, None)
    finally:
        torch.set_num_threads(threads)


def start(module: str, args: list[str], ranks: int, log: Path) -> subprocess.Popen:
    """Start in the background (its own process group), output to `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(command(module, args, ranks), cwd=ROOT, env=environment(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def children(pid: int) -> list[int]:
    """Direct children of a process (the rank processes of a torchrun agent)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []
