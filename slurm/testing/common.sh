# Shared by up.sh and down.sh: locations and small helpers. Sourced, not run.

STATE="${SEEDFOLD_SLURM_STATE:-/var/lib/seedfold-slurm}"  # spool, controller state, logs, fake GPUs
CLUSTER="seedfold-test"
DB_NAME="slurm_acct_db"
DB_PASS="seedfold-test-only"  # MariaDB listens on a root-only socket; the password guards nothing else

log() { echo "[slurm-testing] $*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for NAME SECONDS CMD...: run CMD every 0.5 s until it succeeds; fail with the daemon logs after SECONDS.
wait_for() {
    local name=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "$name did not come up within ${secs}s; log tails:"
            tail -n 15 "$STATE"/log/*.log >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
    done
}

# alive PID: the process exists and is not a zombie (kill -0 succeeds on zombies, /proc/PID/stat does not lie).
alive() {
    local pid=$1 stat
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # Field 3, after the parenthesised command name (which may contain spaces).
    [[ "${stat##*) }" != Z* ]]
}

# is_running PIDFILE: the daemon that wrote PIDFILE is alive.
is_running() {
    [[ -f "$1" ]] && alive "$(cat "$1")"
}

# stop_pidfile PIDFILE: SIGTERM, wait up to 20 s, then SIGKILL; remove the pid file.
stop_pidfile() {
    local file=$1 pid i
    [[ -f "$file" ]] || return 0
    pid=$(cat "$file")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            alive "$pid" || break
            sleep 0.5
        done
        if alive "$pid"; then
            log "$file: pid $pid ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$file"
}
