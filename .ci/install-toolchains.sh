#!/usr/bin/env bash
# System packages for the code evaluator's six languages and its sandbox (Debian; run as root).
# Everything works offline once installed: Go tests use testify in GOPATH mode, Rust tests use Debian's
# crates as a local registry, C++ needs Boost and OpenSSL, JavaScript/162 needs the npm package js-md5.
set -euo pipefail
# Debian packages that must be present (libraries and tools whose presence a command cannot show).
pkgs=(bubblewrap golang-go golang-github-stretchr-testify-dev librust-rand-dev librust-regex-dev librust-md5-dev
      libboost-dev libssl-dev)
# Toolchains that may already come from elsewhere (rustup, nodesource): install Debian's only when missing.
declare -A by_cmd=([g++]=g++ [javac]=default-jdk-headless [node]=nodejs [npm]=npm [rustc]=rustc [cargo]=cargo)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
for c in "${!by_cmd[@]}"; do command -v "$c" >/dev/null 2>&1 || missing+=("${by_cmd[$c]}"); done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then echo "install as root: apt-get install ${missing[*]}" >&2; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm package for JavaScript/162, in the evaluator's cache (it adds <cache>/node/node_modules to NODE_PATH).
cache="${QS_CODE_EVAL_CACHE:-$HOME/.cache/qwen_specialists/code-eval}"
if [ ! -d "$cache/node/node_modules/js-md5" ]; then
    mkdir -p "$cache/node"
    npm install --silent --no-audit --no-fund --prefix "$cache/node" js-md5@0.9.2 >/dev/null
fi
# The Rust tests' crates (rand with the old gen_range API, regex, md5) are built from Debian's crate sources
# (/usr/share/cargo/registry, used as a local cargo registry) by the evaluator on first use; build them now.
if [ -x "$(command -v python3)" ] && [ -d .venv ]; then
    .venv/bin/python -c "from eval.code.toolchains import rust_externs; rust_externs()" || true
fi
echo "toolchains: ok"
