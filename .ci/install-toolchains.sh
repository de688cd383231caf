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
echo "toolchains: ok"
