"""Find the six languages' toolchains and prepare what their tests need offline, once, in a cache folder.

Cache folder: $QS_CODE_EVAL_CACHE or ~/.cache/qwen_specialists/code-eval. In it:
  rust-deps-v4/ the crates the HumanEvalPack Rust tests import (rand, regex, md5), built once from Debian's
               crate sources (/usr/share/cargo/registry) used as a local cargo registry; samples then link
               them with plain `rustc --extern`, so no sample ever runs cargo.
  go-build/    Go's build cache (testify and the standard library compile once, not per sample).
  node/        node_modules with js-md5 (JavaScript/162), installed by .ci/install-toolchains.sh.
  cpp-pch/     precompiled headers of the standard includes each C++ problem declares.
  evalplus-expected/ HumanEval+/MBPP+ canonical outputs and CPU times per task (evalplus_runner.py), keyed
               by content, Python version and CPU model; hidden from samples.
A missing toolchain is an EnvironmentProblem for that language, never a failed sample.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

GO_PATH = Path("/usr/share/gocode")  # Debian's golang-github-stretchr-testify-dev lives here
DEBIAN_CRATES = Path("/usr/share/cargo/registry")
RUST_CRATES = {"rand08": '{ package = "rand", version = "0.8" }', "regex": '{ version = "1", default-features = false, features = ["std", "unicode"] }',
               "md5": '"0.7"'}


class EnvironmentProblem(RuntimeError):
    """A toolchain or library that a language's tests need is missing: not the sample's fault."""


def cache_root() -> Path:
    root = Path(os.environ.get("QS_CODE_EVAL_CACHE", Path.home() / ".cache" / "qwen_specialists" / "code-eval"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def _locked(name: str):
    """Serialise one-time preparation across processes (parallel test workers, two evaluations at once)."""
    with open(cache_root() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def require(*commands: str) -> dict[str, str]:
    found = {c: shutil.which(c) for c in commands}
    missing = [c for c, p in found.items() if p is None]
    if missing:
        raise EnvironmentProblem(f"missing {', '.join(missing)} (run .ci/install-toolchains.sh as root)")
    return {c: str(p) for c, p in found.items()}


@lru_cache(maxsize=1)
def go_env() -> dict[str, str]:
    require("go")
    if not (GO_PATH / "src/github.com/stretchr/testify/assert").is_dir():
        raise EnvironmentProblem("Go tests import testify: apt-get install golang-github-stretchr-testify-dev")
    cache = cache_root() / "go-build"
    cache.mkdir(exist_ok=True)
    return {"GOPATH": str(GO_PATH), "GO111MODULE": "off", "GOCACHE": str(cache), "CGO_ENABLED": "0",
            "GOFLAGS": "", "GOTOOLCHAIN": "local"}


@lru_cache(maxsize=1)
def node_path() -> str:
    require("node")
    dirs = [cache_root() / "node" / "node_modules"]
    if os.environ.get("NODE_PATH"):
        dirs += [Path(p) for p in os.environ["NODE_PATH"].split(os.pathsep) if p]
    return os.pathsep.join(str(d) for d in dirs if d.is_dir())


def js_md5_available() -> bool:
    return any((Path(d) / "js-md5").is_dir() for d in node_path().split(os.pathsep) if d)


CPP_FLAGS = ["-std=c++17", "-O0", "-w"]


@lru_cache(maxsize=64)
def cpp_precompiled_header(includes: tuple[str, ...]) -> Path | None:
    """A precompiled header of exactly these standard includes (the problem's own), for `g++ -include`.

    Parsing <algorithm>, <vector> and <string> is most of a HumanEvalPack compile; the programs include
    these headers anyway, so precompiling them changes no program's meaning. None when g++ cannot build it.
    """
    require("g++")
    text = "".join(f"{line}\n" for line in includes)
    key = hashlib.sha256((text + " ".join(CPP_FLAGS)).encode()).hexdigest()[:16]
    folder = cache_root() / "cpp-pch" / key
    header = folder / "qs_pch.h"
    with _locked("cpp-pch"):
        if not (folder / "qs_pch.h.gch").exists():
            folder.mkdir(parents=True, exist_ok=True)
            header.write_text(text)
            proc = subprocess.run(["g++", *CPP_FLAGS, "-x", "c++-header", str(header), "-o", str(header) + ".gch"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                return None
    return header


@lru_cache(maxsize=1)
def rustc_binary() -> str:
    """The real rustc, not rustup's proxy (the proxy looks for ~/.rustup, and HOME is the sample's folder)."""
    require("rustc")
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    real = Path(sysroot) / "bin" / "rustc"
    return str(real) if real.is_file() else str(shutil.which("rustc"))


# HumanEvalPack's Rust tests were written against the old rand API (`rng.gen_range(low, high)`, Rust/32 and
# Rust/50); Debian ships rand 0.8 (`gen_range(low..high)`). The crate the samples see as `rand` is this thin
# layer over rand 0.8 with the old two-argument calls, and a seeded thread_rng for repeatable verdicts.
RAND_COMPAT = """pub use rand08::{distributions, random, rngs, seq, CryptoRng, Error, RngCore, SeedableRng};
/// Seeded (42, the seed of the Python HumanEval/32 test), so a verdict is the same on every run: Rust/32's
/// test draws random polynomials, on some of which the canonical Newton iteration diverges or never ends.
pub fn thread_rng() -> rand08::rngs::StdRng { <rand08::rngs::StdRng as rand08::SeedableRng>::seed_from_u64(42) }
pub trait Rng: rand08::RngCore + Sized {
    fn gen<T>(&mut self) -> T where rand08::distributions::Standard: rand08::distributions::Distribution<T> {
        rand08::Rng::gen(self)
    }
    fn gen_range<T: rand08::distributions::uniform::SampleUniform + PartialOrd>(&mut self, low: T, high: T) -> T {
        rand08::Rng::gen_range(self, low..high)
    }
    fn gen_bool(&mut self, p: f64) -> bool { rand08::Rng::gen_bool(self, p) }
}
impl<R: rand08::RngCore + Sized> Rng for R {}
"""


@lru_cache(maxsize=1)
def rust_externs() -> list[str]:
    """rustc arguments that link the prebuilt rand (old API)/regex/md5, built once from Debian's crate sources."""
    require("rustc", "cargo")
    out = cache_root() / "rust-deps-v4"
    with _locked("rust-deps"):
        if not (out / "externs.json").exists():
            _build_rust_deps(out)
    externs = json.loads((out / "externs.json").read_text())
    args = ["-L", f"dependency={out / 'target' / 'debug' / 'deps'}"]
    for crate, path in sorted(externs.items()):
        args += ["--extern", f"{crate}={path}"]
    return args


def _build_rust_deps(out: Path) -> None:
    if not DEBIAN_CRATES.is_dir():
        raise EnvironmentProblem("Rust tests import rand/regex/md5: apt-get install librust-rand-dev "
                                 "librust-regex-dev librust-md5-dev")
    (out / "src").mkdir(parents=True, exist_ok=True)
    (out / ".cargo").mkdir(exist_ok=True)
    deps = "\n".join(f"{name} = {spec}" for name, spec in RUST_CRATES.items())
    (out / "Cargo.toml").write_text(
        '[package]\nname = "qs_rand_compat"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[lib]\nname = "rand"\npath = "src/lib.rs"\n\n[dependencies]\n{deps}\n')
    (out / "src" / "lib.rs").write_text(RAND_COMPAT)
    # Debian's crate sources as a directory registry: the way Debian builds Rust offline.
    (out / ".cargo" / "config.toml").write_text(
        f'[source.crates-io]\nreplace-with = "debian"\n\n[source.debian]\ndirectory = "{DEBIAN_CRATES}"\n')
    proc = subprocess.run(["cargo", "build", "--offline", "-q", "--message-format=json"], cwd=out,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"building Rust test crates failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    externs = {}
    for line in proc.stdout.splitlines():
        msg = json.loads(line) if line.startswith("{") else {}
        if msg.get("reason") != "compiler-artifact":
            continue
        name, rlibs = msg["target"]["name"], [f for f in msg["filenames"] if f.endswith(".rlib")]
        if rlibs and (name in ("regex", "md5") or (name == "rand" and "qs_rand_compat" in msg["package_id"])):
            externs[name] = rlibs[0]
    if set(externs) != {"rand", "regex", "md5"}:
        raise EnvironmentProblem(f"Rust test crates incomplete: built {sorted(externs)}")
    (out / "externs.json").write_text(json.dumps(externs))
