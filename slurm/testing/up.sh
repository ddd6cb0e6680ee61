#!/usr/bin/env bash
# Start a real SLURM cluster with accounting on this machine, for tests and CI.
#
#   slurm/testing/up.sh               one node named after this host, 2 fake GPUs
#   slurm/testing/up.sh --two-nodes   two fake nodes n1, n2 on this host (multi-node tests)
#   slurm/testing/up.sh --no-install  fail instead of running apt-get when packages are missing
#
# Debian 12, as root, without systemd: packages are installed with apt-get and every daemon is started by
# hand, in order munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd. Idempotent: a daemon that is already
# running is left alone; switching between one and two nodes restarts the cluster. Stop it with down.sh.
# Every setting that matters here is summarised in docs/DESIGN.md §6; the why is in comments below.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=slurm/testing/common.sh
source "$HERE/common.sh"

TWO_NODES=0
INSTALL=1
for arg in "$@"; do
    case "$arg" in
        --two-nodes) TWO_NODES=1 ;;
        --no-install) INSTALL=0 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "up.sh: unknown option $arg (expected --two-nodes, --no-install)" >&2; exit 2 ;;
    esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts system daemons)"

# ---------------------------------------------------------------------------------------------- packages
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    ((INSTALL)) || die "missing packages: ${missing[*]} (run without --no-install)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || log "apt-get update failed; trying the install with the current lists"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

MODE=$([[ $TWO_NODES -eq 1 ]] && echo two-nodes || echo one-node)
if [[ -f "$STATE/mode" && "$(cat "$STATE/mode")" != "$MODE" ]]; then
    log "switching from $(cat "$STATE/mode") to $MODE: restarting the cluster"
    "$HERE/down.sh"
fi

# ---------------------------------------------------------------------------------------------- folders
install -d -m 0755 -o munge -g munge /run/munge
install -d -m 0755 -o slurm -g slurm /run/slurm "$STATE" "$STATE/ctld" "$STATE/log"
install -d -m 0755 -o mysql -g mysql /run/mysqld
install -d -m 0755 "$STATE/d" "$STATE/dev" /etc/slurm
echo "$MODE" >"$STATE/mode"

# Fake GPUs: gres.conf File= entries must be character devices (major 195 is NVIDIA's; nothing opens them).
for i in 0 1; do
    [[ -c "$STATE/dev/fakegpu$i" ]] || mknod "$STATE/dev/fakegpu$i" c 195 "$i"
done

# ---------------------------------------------------------------------------------------------- configs
HOST="$(hostname -s)"
if ((TWO_NODES)); then
    NODES=(n1 n2)
    # Node names must resolve, or multi-node torch.distributed hangs forever.
    [[ -z "$(tail -c1 /etc/hosts)" ]] || echo >>/etc/hosts
    for n in "${NODES[@]}"; do
        grep -qE "^127\.0\.0\.1\s.*\b$n\b" /etc/hosts || echo "127.0.0.1 $n  # seedfold test SLURM" >>/etc/hosts
    done
else
    NODES=("$HOST")
fi

# Hardware as slurmd sees it (RealMemory must not exceed what it reports); memory shared between fake nodes.
HW="$(slurmd -C | head -1)"
hw() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(hw CPUs); SOCKETS=$(hw SocketsPerBoard); CORES=$(hw CoresPerSocket); THREADS=$(hw ThreadsPerCore)
MEM=$(( $(hw RealMemory) * 9 / 10 / ${#NODES[@]} ))

NODE_LINES=""
port=17001
for n in "${NODES[@]}"; do
    if ((TWO_NODES)); then
        extra="NodeHostname=$HOST Port=$port"
        port=$((port + 1))
    else
        extra=""
    fi
    NODE_LINES+="NodeName=$n NodeAddr=127.0.0.1 $extra CPUs=$CPUS Sockets=$SOCKETS CoresPerSocket=$CORES \
ThreadsPerCore=$THREADS RealMemory=$MEM Gres=gpu:2 State=UNKNOWN"$'\n'
done

cat >/etc/slurm/slurm.conf <<EOF
# Written by slurm/testing/up.sh ($MODE). Test cluster only.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
# Short credential lifetime and scheduler intervals: a requeued job restarts in ~12 s instead of ~200 s.
AuthInfo=cred_expire=10
SchedulerParameters=bf_interval=2,sched_interval=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d/%n
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
# No cgroups in this VM: track processes through /proc and do no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default memory per CPU every job claims the whole node and jobs run one at a time.
DefMemPerCPU=1024
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
GresTypes=gpu
# submitit reads job states with sacct, which needs accounting through slurmdbd.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
$NODE_LINES
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

{
    echo "# Written by slurm/testing/up.sh: two fake GPUs per node (character devices)."
    for n in "${NODES[@]}"; do
        echo "NodeName=$n Name=gpu File=$STATE/dev/fakegpu[0-1]"
    done
} >/etc/slurm/gres.conf

cat >/etc/slurm/slurmdbd.conf <<EOF
# Written by slurm/testing/up.sh. MariaDB listens on its socket only.
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=$DB_NAME
StorageUser=slurm
StoragePass=$DB_PASS
EOF
chown slurm:slurm /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf

# ---------------------------------------------------------------------------------------------- daemons
start_munged() {
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    wait_for "munge" 20 bash -c 'munge -n | unmunge >/dev/null 2>&1'
}

start_mariadbd() {
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
        --pid-file=/run/mysqld/mysqld.pid --log-error="$STATE/log/mariadb.log" </dev/null >/dev/null 2>&1 &
    wait_for "mariadb" 60 mariadb-admin --socket=/run/mysqld/mysqld.sock ping
    mariadb --socket=/run/mysqld/mysqld.sock <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start_slurmdbd() {
    /usr/sbin/slurmdbd
    wait_for "slurmdbd" 60 bash -c 'sacctmgr -n list cluster >/dev/null 2>&1'
}

start_slurmctld() {
    /usr/sbin/slurmctld
    wait_for "slurmctld" 60 bash -c 'scontrol ping | grep -q UP'
}

start_slurmd() {
    local n=$1
    if ((TWO_NODES)); then
        /usr/sbin/slurmd -N "$n"
    else
        /usr/sbin/slurmd
    fi
}

is_running /run/munge/munged.pid || start_munged
is_running /run/mysqld/mysqld.pid || start_mariadbd
is_running /run/slurm/slurmdbd.pid || start_slurmdbd
is_running /run/slurm/slurmctld.pid || start_slurmctld
for n in "${NODES[@]}"; do
    is_running "/run/slurm/slurmd-$n.pid" || start_slurmd "$n"
done

# A node that was down (e.g. after a restart) comes back by itself with ReturnToService=2; resume is a no-op
# otherwise.
for n in "${NODES[@]}"; do
    wait_for "node $n" 60 bash -c "sinfo -h -N -n $n -o %T | grep -qvE 'unk|down|not_resp|^$'"
    if sinfo -h -N -n "$n" -o %T | grep -qE 'drain|down'; then
        scontrol update NodeName="$n" State=RESUME
    fi
done
wait_for "sacct" 30 sacct -n -X -S now-1minute
log "SLURM is up ($MODE): $(sinfo -h -o '%P %D nodes %T %G' | tr '\n' ' ')"
