# shellcheck shell=bash
# Helpers shared by the scripts in scripts/. Source it, do not run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# What it gives:
#   log / warn / die          progress and errors on stderr ("==> ...")
#   REPO_ROOT, VENV_DIR, LOCAL_DIR
#   ensure_venv               .venv with the pinned tools of scripts/requirements.txt
#   free_port                 a free TCP port on 127.0.0.1
#   start_service NAME LOG CMD...   start CMD in the background, in its own process
#                             group, and register it to be stopped on exit
#   start_moto                moto_server on 127.0.0.1, waits until it answers and
#                             exports MOTO_ENDPOINT and test AWS settings
#   install_cleanup_trap      stop every started service on exit, error, Ctrl-C
#   run_step NAME CMD...      run one named step, timed, for the final summary

if [[ -n "${_CABITAL_LIB_SOURCED:-}" ]]; then
    return 0
fi
_CABITAL_LIB_SOURCED=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${VENV_DIR:-$REPO_ROOT/.venv}"
LOCAL_DIR="${LOCAL_DIR:-$REPO_ROOT/.local}"
REQUIREMENTS_FILE="$REPO_ROOT/scripts/requirements.txt"
export REPO_ROOT VENV_DIR LOCAL_DIR

# ---------------------------------------------------------------- messages

if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
    _C_BOLD=$'\033[1m' _C_RED=$'\033[31m' _C_YEL=$'\033[33m' _C_GRN=$'\033[32m' _C_OFF=$'\033[0m'
else
    _C_BOLD='' _C_RED='' _C_YEL='' _C_GRN='' _C_OFF=''
fi

log() { printf '%s==> %s%s\n' "$_C_BOLD" "$*" "$_C_OFF" >&2; }
ok() { printf '%s==> %s%s\n' "$_C_GRN" "$*" "$_C_OFF" >&2; }
warn() { printf '%s==> warning: %s%s\n' "$_C_YEL" "$*" "$_C_OFF" >&2; }
die() {
    printf '%s==> error: %s%s\n' "$_C_RED" "$*" "$_C_OFF" >&2
    exit 1
}

# Seconds as "1m05s".
fmt_duration() {
    local s=$1
    if ((s >= 60)); then
        printf '%dm%02ds' $((s / 60)) $((s % 60))
    else
        printf '%ds' "$s"
    fi
}

require_cmd() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is not installed or not on PATH"
    done
}

# ---------------------------------------------------------------- the venv

# Python to build the venv with (override with PYTHON=...).
_find_python() {
    local py
    for py in "${PYTHON:-}" python3 python; do
        [[ -n "$py" ]] || continue
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

# The stamp: requirements file + the interpreter + where the venv lives (a venv
# does not survive being moved).
_requirements_hash() {
    {
        cat "$REQUIREMENTS_FILE"
        "$VENV_DIR/bin/python" -c 'import sys; print(sys.version)'
        printf '%s\n' "$VENV_DIR"
    } | sha256sum | cut -d' ' -f1
}

# Create or reuse $VENV_DIR and install scripts/requirements.txt into it, unless the
# stamp says it is already installed. Puts the venv's bin/ first on PATH.
ensure_venv() {
    local python stamp want have start
    stamp="$VENV_DIR/.requirements.sha256"
    [[ -f "$REQUIREMENTS_FILE" ]] || die "missing $REQUIREMENTS_FILE"

    # Two runs at once must not create or pip-install into one venv together.
    if command -v flock >/dev/null 2>&1; then
        mkdir -p "$LOCAL_DIR"
        exec {_venv_lock_fd}>"$LOCAL_DIR/venv.lock"
        flock "$_venv_lock_fd"
    fi

    if [[ -d "$VENV_DIR" ]] && ! "$VENV_DIR/bin/python" -c 'pass' >/dev/null 2>&1; then
        warn "$VENV_DIR is broken (moved, or its Python is gone): recreating it"
        rm -rf "$VENV_DIR"
    fi
    if [[ ! -d "$VENV_DIR" ]]; then
        python="$(_find_python)" || die "Python 3.9+ is needed (python3 not found)"
        log "creating virtualenv $VENV_DIR ($("$python" --version 2>&1))"
        "$python" -m venv "$VENV_DIR" ||
            die "could not create a virtualenv (on Debian/Ubuntu: apt-get install python3-venv)"
    fi

    want="$(_requirements_hash)"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [[ "$want" == "$have" ]]; then
        log "tools up to date in ${VENV_DIR#"$REPO_ROOT"/} (scripts/requirements.txt unchanged)"
    else
        log "pip install -r scripts/requirements.txt into ${VENV_DIR#"$REPO_ROOT"/} (first run: a minute or two)"
        start=$SECONDS
        rm -f "$stamp"
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV_DIR/bin/python" -m pip install \
            --no-input --progress-bar off -q -r "$REQUIREMENTS_FILE" ||
            die "pip install -r scripts/requirements.txt failed (see above)"
        printf '%s\n' "$want" >"$stamp"
        log "tools installed in $(fmt_duration $((SECONDS - start)))"
    fi
    if [[ -n "${_venv_lock_fd:-}" ]]; then
        exec {_venv_lock_fd}>&-
        unset _venv_lock_fd
    fi

    export VIRTUAL_ENV="$VENV_DIR"
    export PATH="$VENV_DIR/bin:$PATH"
    # SAM CLI: no telemetry calls, no update checks (offline-friendly, quiet).
    export SAM_CLI_TELEMETRY=0
}

# ---------------------------------------------------------------- processes

# PIDs (each also its process group id) of the services started here, and their names.
_SERVICE_PIDS=()
_SERVICE_NAMES=()
# Log files of this run: deleted when it exits with 0, kept (and named) otherwise.
_RUN_LOGS=()

# A free TCP port on 127.0.0.1 (the OS picks; a race with another process is
# possible, start_moto retries).
free_port() {
    local py
    py="$(command -v python3 || command -v python)" || die "python3 is needed"
    "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Can a server listen on 127.0.0.1:$1 now? SO_REUSEADDR, as servers set it: a port
# left in TIME_WAIT by the last run is free, one with a listener is not.
port_free() {
    local py
    py="$(command -v python3 || command -v python)" || die "python3 is needed"
    "$py" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

# start_service NAME LOGFILE CMD [ARGS...]
# Starts CMD in the background in a new session (its own process group, so that
# stopping it also stops its children and Ctrl-C reaches only this script), output
# to LOGFILE. Sets SERVICE_PID (also the service's process group id).
start_service() {
    local name=$1 logfile=$2 i
    shift 2
    mkdir -p "$(dirname "$logfile")"
    # This shell has no job control, so the background child is not a group leader:
    # setsid execs in place, and $! is the service itself.
    setsid "$@" </dev/null >"$logfile" 2>&1 &
    SERVICE_PID=$!
    _SERVICE_PIDS+=("$SERVICE_PID")
    _SERVICE_NAMES+=("$name")
    # setsid() runs a moment after the fork: wait until the group exists (or the
    # process is gone), so that later checks and stops see the right thing.
    for ((i = 0; i < 100; i++)); do
        if [[ "$(_pgid "$SERVICE_PID")" == "$SERVICE_PID" ]] || ! pid_running "$SERVICE_PID"; then
            break
        fi
        sleep 0.02
    done
}

# The process group id of PID (empty if gone). From /proc: ps may not be installed.
_pgid() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }" # fields after "pid (comm) ": state ppid pgrp ...
    read -r _ _ stat _ <<<"$stat"
    printf '%s' "$stat"
}

# Is PID running (present and not a zombie)?
pid_running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# Is any process of the group led by PID still there?
_group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# Every descendant of PID (children, grandchildren, ...), from /proc, including those
# that left its process group: `cargo lambda watch` runs each function in a session of
# its own, which stopping the group alone would leave behind.
_descendants() {
    local stat line pid ppid p frontier=("$1") next
    local -A parent=()
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$stat" || continue
        pid=${line%% *}
        line=${line##*) }
        read -r _ ppid _ <<<"$line"
        parent[$pid]=$ppid
    done
    while ((${#frontier[@]})); do
        next=()
        for pid in "${!parent[@]}"; do
            for p in "${frontier[@]}"; do
                if [[ "${parent[$pid]}" == "$p" ]]; then
                    next+=("$pid")
                    printf '%s\n' "$pid"
                fi
            done
        done
        frontier=(${next[@]+"${next[@]}"})
    done
}

# stop_service PID: TERM its process group (and PID itself), KILL after 5 s, reap it;
# then the same for any of its descendants still running outside the group.
stop_service() {
    local pid=$1 i kids=() kid
    # Taken before stopping: once PID is gone, its orphans are no longer linked to it.
    mapfile -t kids < <(_descendants "$pid")
    kill -TERM -- "-$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        if ! pid_running "$pid" && ! _group_alive "$pid"; then
            break
        fi
        sleep 0.1
    done
    if pid_running "$pid" || _group_alive "$pid"; then
        warn "pid $pid did not stop on TERM: killing it"
        kill -KILL -- "-$pid" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # Reaps it; it is dead (or dying from SIGKILL) by now, so this cannot hang.
    wait "$pid" 2>/dev/null || true
    # Descendants that outlived it (their own session or group): TERM, then KILL.
    ((${#kids[@]})) || return 0
    for kid in "${kids[@]}"; do
        if pid_running "$kid"; then
            kill -TERM "$kid" 2>/dev/null || true
        fi
    done
    for ((i = 0; i < 30; i++)); do
        _any_running "${kids[@]}" || return 0
        sleep 0.1
    done
    for kid in "${kids[@]}"; do
        if pid_running "$kid"; then
            warn "pid $kid (started by pid $pid) did not stop on TERM: killing it"
            kill -KILL "$kid" 2>/dev/null || true
        fi
    done
}

# Is any of the PIDs running?
_any_running() {
    local p
    for p in "$@"; do
        pid_running "$p" && return 0
    done
    return 1
}

# Stop every service started with start_service, newest first.
stop_all_services() {
    local i
    for ((i = ${#_SERVICE_PIDS[@]} - 1; i >= 0; i--)); do
        if pid_running "${_SERVICE_PIDS[$i]}" || _group_alive "${_SERVICE_PIDS[$i]}"; then
            log "stopping ${_SERVICE_NAMES[$i]} (pid ${_SERVICE_PIDS[$i]})"
        fi
        stop_service "${_SERVICE_PIDS[$i]}"
    done
    _SERVICE_PIDS=()
    _SERVICE_NAMES=()
}

# Hook for the calling script: a function named on_exit, if defined, runs with the
# exit status as $1 after the services are stopped (e.g. to print a summary).
_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop_all_services
    if ((${#_RUN_LOGS[@]})); then
        if ((rc == 0)); then
            rm -f "${_RUN_LOGS[@]}"
        else
            log "logs kept: ${_RUN_LOGS[*]#"$REPO_ROOT"/}"
        fi
    fi
    if declare -F on_exit >/dev/null; then
        on_exit "$rc" || true
    fi
    exit "$rc"
}

install_cleanup_trap() {
    trap _cleanup EXIT
    trap 'echo >&2; warn "interrupted"; exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# ---------------------------------------------------------------- moto

# Is $1 (a URL) answering HTTP 200? Uses Python: curl may be missing.
_http_ok() {
    "$VENV_DIR/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

# start_moto: moto_server on 127.0.0.1 on a free port (or $MOTO_PORT), ready within
# MOTO_START_TIMEOUT seconds (default 20). Exports MOTO_ENDPOINT, MOTO_PID and the
# fake AWS settings the tests and the functions use against it.
start_moto() {
    local attempt port logfile deadline ready timeout=${MOTO_START_TIMEOUT:-20}
    [[ -x "$VENV_DIR/bin/moto_server" ]] || die "moto_server is not installed (run ensure_venv first)"
    # One log per run (runs may overlap); removed on success, kept on failure.
    logfile="$LOCAL_DIR/logs/moto-$$.log"

    ready=0
    for attempt in 1 2 3; do
        port="${MOTO_PORT:-$(free_port)}"
        # Fail fast on a taken port: whatever answers there is not our moto.
        if ! port_free "$port"; then
            [[ -z "${MOTO_PORT:-}" ]] || die "port $port (MOTO_PORT) is already in use on 127.0.0.1"
            continue
        fi
        log "starting moto on 127.0.0.1:$port (log: ${logfile#"$REPO_ROOT"/})"
        [[ " ${_RUN_LOGS[*]-} " == *" $logfile "* ]] || _RUN_LOGS+=("$logfile")
        start_service moto "$logfile" "$VENV_DIR/bin/python" "$REPO_ROOT/scripts/moto_serial.py" -H 127.0.0.1 -p "$port"
        MOTO_PID=$SERVICE_PID
        deadline=$((SECONDS + timeout))
        ready=0
        while ((SECONDS < deadline)) && pid_running "$MOTO_PID"; do
            if _http_ok "http://127.0.0.1:$port/moto-api/data.json" && pid_running "$MOTO_PID"; then
                ready=1
                break
            fi
            sleep 0.2
        done
        if ((ready)); then
            break
        fi
        if ! pid_running "$MOTO_PID" && [[ -z "${MOTO_PORT:-}" ]] && ((attempt < 3)) &&
            grep -qi 'address already in use' "$logfile"; then
            warn "port $port was taken meanwhile; trying another"
            stop_service "$MOTO_PID"
            continue
        fi
        {
            if pid_running "$MOTO_PID"; then
                printf 'moto did not answer on 127.0.0.1:%s within %ss\n' "$port" "$timeout"
            else
                printf 'moto exited while starting on 127.0.0.1:%s\n' "$port"
            fi
            printf -- '--- last lines of %s ---\n' "$logfile"
            tail -n 20 "$logfile" 2>/dev/null || true
            printf -- '---\n'
        } >&2
        die "moto failed to start"
    done
    ((ready)) || die "could not find a free port for moto"

    export MOTO_PID
    export MOTO_ENDPOINT="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    # Never pick up a developer's real profile or session by accident.
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL
    log "moto ready at $MOTO_ENDPOINT"
}

# ---------------------------------------------------------------- steps

# Names and durations of the steps that passed, and the one running now (both read
# by the calling script, e.g. for its summary).
# shellcheck disable=SC2034
STEPS_PASSED=()
CURRENT_STEP=""

# run_step NAME CMD [ARGS...]: a named, timed step. Fails the script (set -e) with
# CURRENT_STEP still set when CMD fails.
# shellcheck disable=SC2034
run_step() {
    local name=$1 start
    shift
    CURRENT_STEP=$name
    # Commands are shown; shell functions print their own progress.
    declare -F "$1" >/dev/null || log "$name: $*"
    start=$SECONDS
    "$@"
    STEPS_PASSED+=("$name ($(fmt_duration $((SECONDS - start))))")
    CURRENT_STEP=""
}
