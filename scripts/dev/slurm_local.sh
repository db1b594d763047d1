#!/usr/bin/env bash
# A one-node SLURM cluster (slurmctld + slurmd + munge) on this machine, for `make test-slurm`.
#
#   sudo scripts/dev/slurm_local.sh start    # installs slurm-wlm and munge (Debian/Ubuntu) if missing
#   sudo scripts/dev/slurm_local.sh status
#   sudo scripts/dev/slurm_local.sh stop
#
# `start` is idempotent: daemons already running are left alone. The node gets this machine's
# CPUs and memory (`slurmd -C`) in one partition, `debug`. Accounting is off
# (accounting_storage/none), as on many small clusters: `sacct` does not work, which is what
# the launcher has to cope with. KillWait=5: a cancelled job gets SIGKILL 5 s after SIGTERM
# (SLURM's default is 30 s; submitit ignores SIGTERM, so tests would wait that long). The config goes to /etc/slurm/slurm.conf so that sbatch,
# squeue and scancel find it without SLURM_CONF; a slurm.conf not written by this script is
# never touched. Daemons log to /var/log/slurm/; their state lives in /var/spool/slurm-local/.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by unlearnbench scripts/dev/slurm_local.sh"
SPOOL=/var/spool/slurm-local
LOGS=/var/log/slurm
RUN=/run/slurm-local
PARTITION=debug

die() { echo "slurm_local: $*" >&2; exit 1; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v sbatch >/dev/null && return
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get: install them"
    echo "slurm_local: installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    [[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    su -s /bin/sh munge -c munged  # daemonizes; refuses to run as root
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.1; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

write_conf() {
    if [[ -f "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: this machine has its own SLURM setup"
    fi
    local host node
    host=$(hostname -s)
    node=$(slurmd -C | head -1)  # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..
    install -d "$SPOOL/ctld" "$SPOOL/d" "$LOGS" "$RUN"
    cat > "$CONF.tmp" <<CONF
$MARK
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
KillWait=5
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    if cmp -s "$CONF.tmp" "$CONF"; then rm "$CONF.tmp"; return; fi
    mv "$CONF.tmp" "$CONF"
    CONF_CHANGED=1
}

wait_idle() {
    local host state
    host=$(hostname -s)
    for _ in $(seq 100); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
        case "$state" in
            idle*|mixed*|allocated*) echo "slurm_local: node $host $state, partition $PARTITION ($(sbatch --version))"; return;;
            down*|drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true;;
        esac
        sleep 0.2
    done
    die "node $host did not become idle (state '$state'); see $LOGS/slurmctld.log and $LOGS/slurmd.log"
}

start() {
    [[ $EUID -eq 0 ]] || die "run as root (it starts system daemons)"
    install_packages
    start_munge
    write_conf
    if alive "$RUN/slurmctld.pid" && [[ -n "${CONF_CHANGED:-}" ]]; then scontrol reconfigure; fi
    alive "$RUN/slurmctld.pid" || slurmctld
    alive "$RUN/slurmd.pid" || slurmd
    wait_idle
}

stop() {
    local pidfile pid
    for pidfile in "$RUN/slurmd.pid" "$RUN/slurmctld.pid"; do
        if alive "$pidfile"; then
            pid=$(cat "$pidfile")
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    echo "slurm_local: stopped slurmctld and slurmd (munged left running)"
}

status() {
    alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" || { echo "slurm_local: not running"; exit 1; }
    sinfo
}

case "${1:-}" in
    start) start;;
    stop) stop;;
    status) status;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2;;
esac
