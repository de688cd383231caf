# Task runner. Every user-facing job is a recipe here; each runs its embedded tiny default with no arguments
# and takes a config file and key=value overrides for real runs:  just math-sft math_qwen/configs/sft/7b.yaml train.max_steps=10

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := false

python := ".venv/bin/python"
# CPU=1 pins the CPU torch wheel (constraints-cpu.txt); GPU users run `CPU=0 just setup` and keep their torch.
cpu := env_var_or_default("CPU", "1")

default:
    @just --list

# Create .venv and install everything (idempotent: a no-op when pyproject and constraints are unchanged).
setup:
    bash .ci/setup-venv.sh {{cpu}}

# Compilers, runtimes and test libraries for the code evaluator (Debian, as root): see README.
toolchains:
    bash .ci/install-toolchains.sh

# Run the test suite.
test *ARGS:
    {{python}} -m pytest -q {{ARGS}}

# Check and measure the GPU path on a machine with CUDA (exits 0 with a message without one); writes runs/gpu_check.json.
gpu-check *ARGS:
    {{python}} -m bench.gpu_check {{ARGS}}

# Lint and type-check.
check:
    {{python}} -m ruff check .
    {{python}} -m mypy shared data_recipes code_qwen math_qwen eval bench

# Build the tiny code pretraining corpus (stdlib source -> filtered, deduplicated, decontaminated shards).
code-data *ARGS:
    {{python}} -m data_recipes.pipeline {{ARGS}}

# Build the tiny math SFT data (synthetic arithmetic word problems -> chat JSONL with a held-out split).
math-data *ARGS:
    {{python}} -m data_recipes.math_data {{ARGS}}

# Continued pretraining on code (Qwen report section 4.1).
code-pretrain *ARGS:
    {{python}} -m code_qwen.pretrain {{ARGS}}

# Multi-stage code SFT (section 4.2).
code-sft *ARGS:
    {{python}} -m code_qwen.sft {{ARGS}}

# SFT data by execution feedback: sample k answers per problem from a stage's export, keep those passing the hidden
# tests in the sandbox (deduplicated, decontaminated), with a report per language.
code-feedback *ARGS:
    OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} {{python}} -m code_qwen.feedback {{ARGS}}

# Resource plan for a config and cluster shape: memory per GPU under each ZeRO stage, micro-batch, days to 90B tokens.
code-plan *ARGS:
    {{python}} -m code_qwen.plan {{ARGS}}

# Masked math SFT in ChatML at length 1024 (section 5.1).
math-sft *ARGS:
    OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} {{python}} -m math_qwen.sft {{ARGS}}

# Rejection-sampling fine-tuning rounds (sample k, keep correct distinct paths, masked SFT on original + augmented).
# OMP_WAIT_POLICY=PASSIVE: on a shared CPU, spinning OpenMP threads made tiny-model steps up to 6x slower.
math-rft *ARGS:
    OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} {{python}} -m math_qwen.rft {{ARGS}}

# Evaluate the latest code run's export on a small subset (or pass eval.code arguments).
code-eval *ARGS:
    {{python}} -m eval.code.latest {{ARGS}}

# Evaluate the latest math run's export on its held-out set (or pass eval.math arguments).
math-eval *ARGS:
    {{python}} -m eval.math.latest {{ARGS}}

# Figures (PNG) and a Markdown table of every run's evaluations and loss curves: just report [runs_dir] [--out reports/]
[positional-arguments]
report *ARGS:
    {{python}} -m eval.report "$@"

# Evaluate each finished checkpoint of a run exactly once (safe with several watchers): just watch <run-dir> [--once]
[positional-arguments]
watch *ARGS:
    {{python}} -m eval.watch "$@"

# Render and submit a multi-node sbatch job: just slurm <recipe> [config] [overrides] [--nodes N --gpus-per-node G] [--dry-run]
[positional-arguments]
slurm *ARGS:
    {{python}} -m shared.slurm "$@"
