#!/usr/bin/env bash
# Create .venv and install the project. Idempotent: skips the install when nothing it depends on changed.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu="${1:-1}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=.venv/.installed
want=$(cat pyproject.toml constraints-cpu.txt .ci/setup-venv.sh | sha256sum | cut -d' ' -f1)-$cpu
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "setup: .venv is up to date"; exit 0
fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
cons=()
if [ "$cpu" = "1" ]; then cons=(-c constraints-cpu.txt); "${pip[@]}" "${cons[@]}" torch; fi
# DeepSpeed ships only an sdist whose setup.py imports torch: build it against the torch just installed,
# not in an isolated build environment (which would download a CUDA torch).
"${pip[@]}" "${cons[@]}" --no-build-isolation deepspeed
"${pip[@]}" "${cons[@]}" -e ".[dev,bench,tensorboard]"
echo "$want" > "$stamp"
echo "setup: done"
