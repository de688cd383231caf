#!/usr/bin/env bash
# Stop the single-node Slurm started by .ci/slurm-up.sh (by pid file, never by name). Idempotent.
set -uo pipefail
stop() {
    local pidfile=$1
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}
command -v scancel >/dev/null && scancel --full --user="$(id -un)" 2>/dev/null
stop /run/slurmd.pid
stop /run/slurmctld.pid
stop /run/munge/munged.pid
echo "slurm down"
