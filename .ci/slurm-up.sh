#!/usr/bin/env bash
# Single-node Slurm for tests and CI (Debian slurm-wlm + munge), idempotent: installs what is missing, writes
# slurm.conf for this host, starts munged, slurmctld and slurmd unless they already run, and waits until the
# node answers. Needs root. `.ci/slurm-down.sh` stops the daemons.
set -euo pipefail
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)
CPUS=$(nproc)
# Memory as a schedulable resource is off (CR_CPU), so RealMemory only has to be <= the real one.
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q slurm-wlm munge >/dev/null; }
fi

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
NEW_CONF=$(cat <<CONF
# Written by .ci/slurm-up.sh: one node, no accounting, no cgroups.
ClusterName=ci
SlurmctldHost=${HOST}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Tests wait on jobs that begin later (--begin) or were requeued: schedule every few seconds, not every minute.
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
DependencyParameters=kill_invalid_depend
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MinJobAge=600
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
)
restart=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW_CONF" ]; then
    printf '%s\n' "$NEW_CONF" > "$CONF"
    restart=1
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! pgrep -u munge -x munged >/dev/null; then
    install -d -o munge -g munge -m 0755 /run/munge
    [ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    runuser -u munge -- /usr/sbin/munged
fi
if [ "$restart" = 1 ]; then
    running /run/slurmd.pid && kill "$(cat /run/slurmd.pid)" && sleep 1
    running /run/slurmctld.pid && kill "$(cat /run/slurmctld.pid)" && sleep 1
fi
running /run/slurmctld.pid || slurmctld -i
running /run/slurmd.pid || slurmd

for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
    case "$state" in idle*|mix*|alloc*) echo "slurm up: node $HOST ($CPUS CPUs) $state"; exit 0;; esac
    [ "$state" = "down" ] || [ "$state" = "drain" ] && scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
    sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
exit 1
