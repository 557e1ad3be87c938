#!/usr/bin/env bash
# The benchmarks: one table of figures, each beside what it is compared with in the
# same run, printed at the end (markdown) and written to bench/RESULTS.md.
#
#   ./bench/run.sh              build in release, measure, print the table
#   ./bench/run.sh --profiles   also build the functions with the other opt-levels (3, "s", "z")
#                               (a full release build each, minutes on 2 cores) and
#                               put their sizes and init beside the release profile's
#   ./bench/run.sh --quick      a smoke run: 3 init runs, 40 requests, 50 reconcile cases
#                               (its table goes to .local/bench/RESULTS.md, not bench/)
#
# What it does: builds the three functions, the two hello-world floors (bench/hello-lean:
# current-thread, no subscriber; bench/hello: the lambda_runtime example's), the sandbox
# and the driver (bench-runner) with the workspace's release profile; measures sizes
# (stripped, and `bootstrap` zipped as SAM ships it); runs the criterion micro-benchmarks
# (bench/benches/micro.rs); starts moto and the Cabital sandbox on 127.0.0.1; then
# bench-runner serves a local Lambda Runtime API to each release binary: init (spawn to
# first `next`, against both hellos and a boto3 Python peer), first vs second request,
# peak RSS, webhook deliveries, a reconcile run against a slow, rate-limited sandbox (a
# second one, whose cases are not screened yet). Everything it starts is stopped on
# exit, error or Ctrl-C. The table replaces bench/RESULTS.md above its "## History",
# which stays.
#
# Environment (defaults in brackets):
#   BENCH_INIT_RUNS [30]  BENCH_REQUESTS [200]  BENCH_RECONCILE_CASES [250]
#   BENCH_RATE_LIMIT [50] (per second)  BENCH_LATENCY_MS [50]
#   BENCH_MEASUREMENT_SECS [3] (criterion, per micro-benchmark)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$REPO_ROOT"

START=$SECONDS
PROFILES=0
QUICK=0
for arg in "$@"; do
    case "$arg" in
    --profiles) PROFILES=1 ;;
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "$0"
        exit 0
        ;;
    *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

if ((QUICK)); then
    : "${BENCH_INIT_RUNS:=3}" "${BENCH_REQUESTS:=40}" "${BENCH_RECONCILE_CASES:=50}" "${BENCH_MEASUREMENT_SECS:=1}"
fi
INIT_RUNS=${BENCH_INIT_RUNS:-30}
REQUESTS=${BENCH_REQUESTS:-200}
RECONCILE_CASES=${BENCH_RECONCILE_CASES:-250}
RATE_LIMIT=${BENCH_RATE_LIMIT:-50}
LATENCY_MS=${BENCH_LATENCY_MS:-50}
MEASUREMENT_SECS=${BENCH_MEASUREMENT_SECS:-3}

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
BIN="$TARGET_DIR/release"
OUT="$LOCAL_DIR/bench"
SIZES="$OUT/sizes.tsv"
RESULTS="$OUT/results.json"
CRITERION_DIR="$TARGET_DIR/criterion-bench"
FUNCTIONS=(cases-api webhook reconcile)
# The credential the sandbox accepts and the secret in moto holds (test values).
API_KEY=bench-api-key
API_SECRET=bench-api-secret-5c1d0e7a

# A smoke run's figures are not the results.
RESULTS_MD="$REPO_ROOT/bench/RESULTS.md"
((QUICK)) && RESULTS_MD="$OUT/RESULTS.md"

install_cleanup_trap
require_cmd cargo python3 setsid
rm -rf "$OUT"
mkdir -p "$OUT/logs"

# ---- build
# The functions on their own, as they ship: built with the tools, their dependencies'
# features would be unified with the tools' and the binaries would not be the shipped ones.
log "building the functions in release: ${FUNCTIONS[*]}"
cargo build --release -p gateway-cases-api -p gateway-webhook -p gateway-reconcile
# The two floors likewise, each on its own: built with the tools, tokio would get their features.
for hello in gateway-hello-lean gateway-hello; do
    log "building the floor $hello in release"
    cargo build --release -p "$hello"
done
log "building the tools in release: gateway-sandbox, bench-runner, micro-benchmarks"
cargo build --release -p gateway-sandbox -p gateway-bench --bins
cargo build --release -p gateway-rng-probe
cargo bench -p gateway-bench --bench micro --no-run
# The workspace builds aws-lc without CPU jitter entropy (.cargo/config.toml). The
# aws-lc probe again with aws-lc's default, jitter entropy on (a build-time switch of
# aws-lc-sys; the environment wins over the config), in its own target folder: it
# only builds aws-lc.
JITTER_DIR="$TARGET_DIR/bench-profiles/jitter"
log "building gateway-rng-probe with aws-lc's default (AWS_LC_SYS_NO_JITTER_ENTROPY=0) into ${JITTER_DIR#"$REPO_ROOT"/}"
AWS_LC_SYS_NO_JITTER_ENTROPY=0 cargo build --release --target-dir "$JITTER_DIR" -p gateway-rng-probe

# The release profile as the workspace sets it, for the table's header.
RELEASE_PROFILE="$(awk '/^\[profile\.release\]/{on=1; next} /^\[/{on=0} on && /=/{gsub(/ /, ""); printf "%s%s", sep, $0; sep=", "}' Cargo.toml)"

# sizes PROFILE SETTINGS DIR NAME...: stripped size and zipped `bootstrap` of each binary.
sizes() {
    local profile=$1 settings=$2 dir=$3
    shift 3
    python3 - "$profile" "$settings" "$dir" "$@" >>"$SIZES" <<'EOF'
import io, os, sys, zipfile
profile, settings, folder, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for name in names:
    path = os.path.join(folder, name)
    buf = io.BytesIO()
    # As SAM packages a provided.al2023 function: one executable named bootstrap, deflated.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
    subject = name.removeprefix("bench-")
    print(f"{profile}\t{settings}\t{subject}\t{os.path.getsize(path)}\t{len(buf.getvalue())}")
EOF
}
sizes release "$RELEASE_PROFILE" "$BIN" "${FUNCTIONS[@]}" gateway-hello-lean gateway-hello

# ---- other profiles, measured against the release profile
profile_flags=()
if ((PROFILES)); then
    release_level="$(awk '/^\[profile\.release\]/{on=1; next} /^\[/{on=0} on && /^opt-level/{gsub(/[ "]/, ""); sub(/opt-level=/, ""); print}' Cargo.toml)"
    for level in 3 s z; do
        [[ "$level" == "$release_level" ]] && continue
        name="opt-$level"
        dir="$TARGET_DIR/bench-profiles/$name"
        log "building the functions with opt-level \"$level\" (the rest as release) into ${dir#"$REPO_ROOT"/}"
        CARGO_PROFILE_RELEASE_OPT_LEVEL=$level cargo build --release --target-dir "$dir" \
            -p gateway-cases-api -p gateway-webhook -p gateway-reconcile
        sizes "$name" "opt-level \"$level\"" "$dir/release" "${FUNCTIONS[@]}"
        profile_flags+=(--profile "$name=$dir/release")
    done
fi

# ---- micro-benchmarks, before anything else runs
log "criterion micro-benchmarks (${MEASUREMENT_SECS}s each; log: ${OUT#"$REPO_ROOT"/}/criterion.log)"
rm -rf "$CRITERION_DIR"
CRITERION_HOME="$CRITERION_DIR" cargo bench -p gateway-bench --bench micro -- \
    --warm-up-time 1 --measurement-time "$MEASUREMENT_SECS" >"$OUT/criterion.log" 2>&1 ||
    die "the micro-benchmarks failed (see ${OUT#"$REPO_ROOT"/}/criterion.log)"

# ---- services
ensure_venv
start_moto
# start_sandbox NAME FLAGS...: a Cabital sandbox on a free port; sets SANDBOX_URL.
start_sandbox() {
    local name=$1 logfile="$OUT/logs/$1.log" i
    shift
    log "starting the Cabital sandbox ($name)"
    start_service "$name" "$logfile" env RUST_LOG=warn \
        CABITAL_SANDBOX_API_KEY="$API_KEY" CABITAL_SANDBOX_API_SECRET="$API_SECRET" \
        "$BIN/gateway-sandbox" "$@"
    SANDBOX_URL=""
    for ((i = 0; i < 100; i++)); do
        SANDBOX_URL="$(grep -m1 -o 'listening on http://[0-9.:]*' "$logfile" 2>/dev/null | cut -d' ' -f3 || true)"
        [[ -n "$SANDBOX_URL" ]] && break
        pid_running "$SERVICE_PID" || die "the sandbox exited (see ${logfile#"$REPO_ROOT"/})"
        sleep 0.1
    done
    [[ -n "$SANDBOX_URL" ]] || die "the sandbox did not start (see ${logfile#"$REPO_ROOT"/})"
    log "sandbox ($name) ready at $SANDBOX_URL"
}
# Two seeds: the same seed would give both sandboxes the same case ids.
start_sandbox sandbox --seed 42
MAIN_SANDBOX_URL=$SANDBOX_URL
# The reconcile run's: its cases stay unscreened for the run (see bench/src/measure.rs).
start_sandbox sandbox-unscreened --seed 43 --screening-delay-ms 3600000
RECONCILE_SANDBOX_URL=$SANDBOX_URL

# ---- the runs against processes
# In its own process group, registered as a service: every function process it starts
# is in that group and stopped with it, whatever happens.
setsid "$BIN/bench-runner" measure --repo "$REPO_ROOT" --bin-dir "$BIN" --python "$VENV_DIR/bin/python" \
    --sandbox-url "$MAIN_SANDBOX_URL" --reconcile-sandbox-url "$RECONCILE_SANDBOX_URL" --api-key "$API_KEY" --api-secret "$API_SECRET" --logs "$OUT/logs" \
    --out "$RESULTS" --init-runs "$INIT_RUNS" --requests "$REQUESTS" --reconcile-cases "$RECONCILE_CASES" \
    --rate-limit "$RATE_LIMIT" --latency-ms "$LATENCY_MS" ${profile_flags[@]+"${profile_flags[@]}"} \
    --rng-probe "default=$JITTER_DIR/release/gateway-rng-probe" \
    --rng-probe "no-jitter=$BIN/gateway-rng-probe" &
RUNNER_PID=$!
_SERVICE_PIDS+=("$RUNNER_PID")
_SERVICE_NAMES+=(bench-runner)
wait "$RUNNER_PID"
stop_all_services

# ---- the table
took="$(fmt_duration $((SECONDS - START)))"
args="$*"
"$BIN/bench-runner" report --results "$RESULTS" --sizes "$SIZES" --criterion "$CRITERION_DIR" \
    --meta "date=$(date -u +%Y-%m-%d)" \
    --meta "rustc=$(rustc -V | cut -d' ' -f1-2)" \
    --meta "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')" \
    --meta "release_profile=$RELEASE_PROFILE" \
    --meta "boto3=$("$VENV_DIR/bin/python" -c 'import boto3; print(boto3.__version__)')" \
    --meta "moto=$("$VENV_DIR/bin/python" -c 'import moto; print(moto.__version__)')" \
    ${args:+--meta "args=$args"} \
    --meta "took=$took" \
    --write "$RESULTS_MD"
ok "bench done in $took; table written to ${RESULTS_MD#"$REPO_ROOT"/} (logs: ${OUT#"$REPO_ROOT"/})"
