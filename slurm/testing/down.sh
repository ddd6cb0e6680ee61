#!/usr/bin/env bash
# Stop the test SLURM cluster started by up.sh: cancel every job, then stop the daemons by the PIDs in their
# pid files, in reverse start order. Leaves no daemon running. Configs and state stay (up.sh reuses them);
# `down.sh --purge` also deletes the state folder and the accounting database, so job ids restart at 1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=slurm/testing/common.sh
source "$HERE/common.sh"

PURGE=0
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=1 ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "down.sh: unknown option $arg (expected --purge)" >&2; exit 2 ;;
    esac
done

# Cancel jobs while the controller still answers, so no job step outlives slurmd.
if is_running /run/slurm/slurmctld.pid && [[ -n "$(squeue -h -o %i 2>/dev/null)" ]]; then
    log "cancelling $(squeue -h -o %i | wc -l) job(s)"
    scancel --full $(squeue -h -o %i) 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break
        sleep 0.5
    done
fi

for f in /run/slurm/slurmd-*.pid /run/slurm/slurmd.pid; do
    [[ -e "$f" ]] && stop_pidfile "$f"
done
stop_pidfile /run/slurm/slurmctld.pid
stop_pidfile /run/slurm/slurmdbd.pid
if ((PURGE)) && is_running /run/mysqld/mysqld.pid; then
    mariadb --socket=/run/mysqld/mysqld.sock -e "DROP DATABASE IF EXISTS $DB_NAME" || true
fi
stop_pidfile /run/mysqld/mysqld.pid
stop_pidfile /run/munge/munged.pid

if ((PURGE)); then
    rm -rf "$STATE"
    log "state purged"
else
    rm -f "$STATE/mode"
fi
log "SLURM is down"
