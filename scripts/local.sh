#!/usr/bin/env bash
# The whole system on this machine, in one command: no AWS account, no network.
#
#   ./scripts/local.sh          build, start, walk one case's whole life, stop everything
#   ./scripts/local.sh --keep   the same, then leave the stack running (Ctrl-C stops it)
#   ./scripts/local.sh --ci     for scripts/test.sh: the same, then schemathesis and
#                               the chaos run at its CI size (120 cases, ~1.5 min); the
#                               functions on a free port (unless LOCAL_LAMBDA_PORT is
#                               set), and the services' logs printed on failure
#   ./scripts/local.sh --chaos N   also the chaos run with N cases (e.g. --chaos 1000:
#                               about 10 min on 2 cores, moto serving one request at
#                               a time being the limit); --chaos 0 skips it
#   ./scripts/local.sh --cabital MODE   the sandbox answers as Cabital might where its
#                               page is silent, the functions set up for it (see below)
#
# Cabital modes (--cabital, or LOCAL_CABITAL_MODE; default `base64`, `ci` with --ci):
#   base64            signatures in base64 (our default reading), webhooks signed with
#                     the API secret
#   hex               signatures in hex (CABITAL_SIGNATURE_ENCODING=hex)
#   webhook-secret    webhooks signed with a secret of their own (webhookKey and
#                     webhookSecret in the Secrets Manager secret)
#   unsigned          webhooks not signed at all (WEBHOOK_AUTH=refetch)
#   original-headers  every webhook's ack lost, its retries sent under the first
#                     attempt's headers, minutes to hours old
#   empty-create      a create answered 201 with an empty body (the gateway answers 202;
#                     the webhook brings the case's id)
#   no-id-create      a create answered 201 with the case but no caseSystemId
#   get-without-id    GET answers without caseSystemId (taken from the path)
#   no-screening      no screening on create (no Zero Footprint): the reconciler gives up
#                     after RECONCILE_NO_SUGGESTION_GIVE_UP_SECS, then Cabital screens by hand
#   ci                webhook-secret and original-headers together (the chaos run adds a
#                     share of lost acks)
#   all               each mode above but ci in turn, one walk each (for scripts/test.sh)
#
# It installs the pinned tools of scripts/requirements.txt into .venv (moto,
# cargo-lambda), builds the functions, the Cabital sandbox and tests/local, then starts
# on 127.0.0.1:
#   1. moto (DynamoDB + Secrets Manager), with the table and the secret;
#   2. the Cabital sandbox, its webhooks pointed at the webhook function, a time factor
#      that turns Cabital's retry schedule into seconds;
#   3. the three functions under `cargo lambda watch`, their settings in .local/local.env;
# and walks a case through the functions' HTTP endpoints (tests/local: `gateway-local
# walk`), checking each step: create -> webhook -> ongoing screening -> decision, then a
# case whose webhook the sandbox drops, settled by `cargo lambda invoke reconcile`.
# Then schemathesis drives the cases API from docs/openapi.yaml (no 5xx, every response
# as the document says).
# Then the chaos run (`gateway-local chaos`): N cases through the same functions while
# the sandbox delivers every webhook up to five times, reordered, drops a share, answers
# 500/503/429 slowly with its clock off, forged and malformed deliveries are mixed in,
# moto is frozen (SIGSTOP) for a few seconds and the API secret is rotated mid-run, and
# the reconciler runs every few seconds; it ends with every case in DynamoDB compared
# with the sandbox's, every webhook body with its delivery count, and the functions' log
# searched for the secret, the key and every name, date of birth and comment sent.
#
# Environment:
#   CHAOS_CASES=N           the chaos run's size (default: 120 with --ci, the CI size,
#                           a few minutes; otherwise 0, no chaos run); --chaos N wins
#   LOCAL_LAMBDA_PORT=N     cargo lambda watch's port (default 9000; --ci: a free one)
#   LOCAL_SANDBOX_PORT=N    the sandbox's port (default: a free one)
#   MOTO_PORT=N             moto's port (default: a free one)
#   LOCAL_RELOAD=1          let cargo lambda watch rebuild and restart a function when
#                           its code changes (default off: a walk must not be restarted
#                           under its feet)
#   LOCAL_WARMUP_TIMEOUT=S  how long the first request to a function may take, which
#                           compiles it (default 900)
#   LOCAL_SCHEMATHESIS_SECS=S  schemathesis's time on the cases API, after the walk
#                           (default: 150 with --ci, otherwise 0, skipped; e.g. 1800
#                           for a long run)
#   LOCAL_SCHEMATHESIS_EXAMPLES=N  its examples per operation and phase (default 100)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

KEEP=0
CI_MODE=0
CHAOS_CASES=${CHAOS_CASES:-}
CABITAL_MODE=${LOCAL_CABITAL_MODE:-}
chaos_next=0
mode_next=0
for arg in "$@"; do
    if ((chaos_next)); then
        CHAOS_CASES=$arg
        chaos_next=0
        continue
    fi
    if ((mode_next)); then
        CABITAL_MODE=$arg
        mode_next=0
        continue
    fi
    case "$arg" in
    --keep) KEEP=1 ;;
    --ci) CI_MODE=1 ;;
    --chaos) chaos_next=1 ;;
    --chaos=*) CHAOS_CASES=${arg#--chaos=} ;;
    --cabital) mode_next=1 ;;
    --cabital=*) CABITAL_MODE=${arg#--cabital=} ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "$0"
        exit 0
        ;;
    *) die "unknown argument '$arg' (see --help)" ;;
    esac
done
((KEEP && CI_MODE)) && die "--keep and --ci do not go together"
# The README's first command walks a case in seconds; the test command (--ci) also runs
# schemathesis and the chaos run at its CI size.
if [[ -z "$CHAOS_CASES" ]]; then
    CHAOS_CASES=$( ((CI_MODE)) && echo 120 || echo 0)
fi
((chaos_next == 0)) || die "--chaos needs a number of cases (see --help)"
((mode_next == 0)) || die "--cabital needs a mode (see --help)"
[[ -n "$CABITAL_MODE" ]] || CABITAL_MODE=$( ((CI_MODE)) && echo ci || echo base64)
ALL_MODES=(base64 hex webhook-secret unsigned original-headers empty-create no-id-create get-without-id no-screening)
if [[ "$CABITAL_MODE" == all ]]; then
    ((KEEP == 0)) || die "--keep takes one mode, not all"
    # One walk per mode, each on its own stack (no schemathesis, no chaos run).
    for mode in "${ALL_MODES[@]}"; do
        log "Cabital mode $mode"
        CHAOS_CASES=0 LOCAL_SCHEMATHESIS_SECS=0 LOCAL_CABITAL_MODE=$mode \
            "$0" $( ((CI_MODE)) && echo --ci) || die "the walk failed in Cabital mode $mode"
    done
    ok "the walk passed in every Cabital mode: ${ALL_MODES[*]}"
    exit 0
fi
[[ "$CHAOS_CASES" =~ ^[0-9]+$ ]] || die "--chaos / CHAOS_CASES must be a number of cases, not '$CHAOS_CASES'"
((CHAOS_CASES == 0 || CHAOS_CASES >= 10)) || die "the chaos run needs at least 10 cases (or 0 to skip it)"

START=$SECONDS
TABLE=cabital-kyc-local
SECRET_ID=cabital-kyc/local/cabital-api
API_KEY=local-api-key
WEBHOOK_PATH=/webhooks/cabital
# cargo's target directory (CARGO_TARGET_DIR, as cargo and cargo lambda watch read it).
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
SANDBOX_BIN="$TARGET_DIR/debug/gateway-sandbox"
LOCAL_STACK_BIN="$TARGET_DIR/debug/gateway-local"
WARMUP_TIMEOUT=${LOCAL_WARMUP_TIMEOUT:-900}
LOG_DIR="$LOCAL_DIR/logs"
FUNCTIONS=(cases-api webhook reconcile)
WALK_PASSED=0

# What the chosen Cabital mode changes: the sandbox's flags, the secret, the functions'
# settings, and what the webhook function answers an unsigned warm-up request.
SANDBOX_ARGS=()
SETUP_ARGS=()
SANDBOX_ENV=()
ENCODING=base64
WEBHOOK_AUTH=signature
WEBHOOK_WARMUP=401
# Large enough never to act during a walk, except in the no-screening mode.
GIVE_UP_SECS=604800
# Not the default (1827), so that the walk shows the functions read it.
RETENTION_DAYS=30
webhook_secret_mode() {
    local hook_secret
    hook_secret="local-webhook-secret-$(head -c 16 /dev/urandom | sha256sum | cut -c1-24)"
    SETUP_ARGS+=(--webhook-key local-webhook-key --webhook-secret "$hook_secret")
    SANDBOX_ARGS+=(--webhook-key local-webhook-key)
    SANDBOX_ENV+=(CABITAL_SANDBOX_WEBHOOK_SECRET="$hook_secret")
}
case "$CABITAL_MODE" in
base64) ;;
hex)
    SANDBOX_ARGS+=(--signature-encoding hex)
    ENCODING=hex
    ;;
webhook-secret) webhook_secret_mode ;;
unsigned)
    SANDBOX_ARGS+=(--unsigned-webhooks)
    WEBHOOK_AUTH=refetch
    WEBHOOK_WARMUP=400
    ;;
original-headers) SANDBOX_ARGS+=(--retry-headers original --webhook-lost-ack-rate 1) ;;
empty-create) SANDBOX_ARGS+=(--create-answer empty) ;;
no-id-create) SANDBOX_ARGS+=(--create-answer no-id) ;;
get-without-id) SANDBOX_ARGS+=(--get-without-case-system-id) ;;
no-screening)
    SANDBOX_ARGS+=(--no-screening)
    GIVE_UP_SECS=5
    ;;
ci)
    webhook_secret_mode
    SANDBOX_ARGS+=(--retry-headers original)
    ;;
*) die "unknown --cabital mode '$CABITAL_MODE' (see --help)" ;;
esac

on_exit() {
    local rc=$1 took
    took="$(fmt_duration $((SECONDS - START)))"
    # The env file of a --ci run is its own; .local/local.env stays for the user.
    if ((CI_MODE)) && [[ -n "${ENV_FILE:-}" ]]; then
        rm -f "$ENV_FILE"
    fi
    if ((rc == 0)); then
        ok "local stack: done in $took; everything it started is stopped"
    elif ((WALK_PASSED && KEEP)); then
        log "local stack stopped after $took"
    elif ((rc == 130)); then
        log "local stack interrupted after $took; everything it started is stopped"
    else
        printf '%s==> local stack FAILED after %s (exit %s)%s\n' "$_C_RED" "$took" "$rc" "$_C_OFF" >&2
    fi
}
install_cleanup_trap

# On failure, the end of each service's log (the whole story is in the log files).
show_logs() {
    local lines=$1 name file
    for name in sandbox watch; do
        file="$LOG_DIR/$name-$$.log"
        [[ -s "$file" ]] || continue
        printf -- '--- last %s lines of %s ---\n' "$lines" "${file#"$REPO_ROOT"/}" >&2
        tail -n "$lines" "$file" >&2 || true
    done
}
fail() {
    show_logs "$( ((CI_MODE)) && echo 80 || echo 25)"
    die "$*"
}
# The chaos run failed: the services' logs, then its figures and verdict again.
fail_chaos() {
    show_logs "$( ((CI_MODE)) && echo 80 || echo 25)"
    if [[ -s "${CHAOS_OUT:-}" ]]; then
        printf -- '--- the chaos run'"'"'s figures and verdict again (whole report: %s) ---\n' "${CHAOS_OUT#"$REPO_ROOT"/}" >&2
        if grep -q '\[5/6\] Figures' "$CHAOS_OUT"; then
            sed -n '/\[5\/6\] Figures/,$p' "$CHAOS_OUT" >&2
        else
            tail -n 40 "$CHAOS_OUT" >&2
        fi
    fi
    die "the chaos run failed (its verdict just above)"
}

# ---------------------------------------------------------------- checks first

require_cmd cargo setsid sha256sum
command -v python3 >/dev/null 2>&1 || die "'python3' is not installed (needed for the tools in .venv)"

# cargo lambda watch's port: chosen, or 9000, or (--ci) a free one picked just before
# the services start.
if [[ -n "${LOCAL_LAMBDA_PORT:-}" ]]; then
    LAMBDA_PORT=$LOCAL_LAMBDA_PORT
    [[ "$LAMBDA_PORT" =~ ^[0-9]+$ ]] || die "LOCAL_LAMBDA_PORT must be a port number, not '$LAMBDA_PORT'"
elif ((CI_MODE)); then
    LAMBDA_PORT=""
else
    LAMBDA_PORT=9000
fi
check_lambda_port() {
    port_free "$LAMBDA_PORT" ||
        die "port $LAMBDA_PORT on 127.0.0.1 is already in use (another 'cargo lambda watch' or local stack?): stop it, or choose another port with LOCAL_LAMBDA_PORT=9001 ./scripts/local.sh"
}
[[ -z "$LAMBDA_PORT" ]] || check_lambda_port
if [[ -n "${LOCAL_SANDBOX_PORT:-}" ]]; then
    port_free "$LOCAL_SANDBOX_PORT" || die "port $LOCAL_SANDBOX_PORT (LOCAL_SANDBOX_PORT) is already in use on 127.0.0.1"
fi

# ---------------------------------------------------------------- tools and build

log "installing tools (pinned in scripts/requirements.txt: moto, cargo-lambda)"
ensure_venv
[[ -x "$VENV_DIR/bin/cargo-lambda" ]] || die "cargo-lambda is missing from $VENV_DIR/bin (scripts/requirements.txt pins it)"
cargo lambda --version >/dev/null 2>&1 || die "'cargo lambda' does not run (cargo-lambda in $VENV_DIR/bin)"

build() {
    local start=$SECONDS fn
    log "building the functions, the Cabital sandbox and gateway-local (first time: a few minutes)"
    # Each binary alone: `cargo lambda watch` builds each function alone (`cargo run
    # --bin NAME`), so its build then finds everything fresh; gateway-local shares the
    # functions' features (see tests/local/Cargo.toml), the sandbox has its own.
    for fn in "${FUNCTIONS[@]}" gateway-local gateway-sandbox; do
        cargo build --bin "$fn" || die "building $fn failed (see above)"
    done
    log "built in $(fmt_duration $((SECONDS - start)))"
}
build

# ---------------------------------------------------------------- moto

mkdir -p "$LOG_DIR"
start_moto
log "creating the table and the secret"
SECRET_VALUE="local-secret-$(head -c 16 /dev/urandom | sha256sum | cut -c1-24)"
# The case events' way out: moto's bus, a consumer's rule into a queue, the pipe's DLQ.
EVENTS_BUS=case-events
EVENTS_QUEUE=case-events-consumer
EVENTS_DLQ=case-events-dlq
"$LOCAL_STACK_BIN" setup --table "$TABLE" --secret-id "$SECRET_ID" --api-key "$API_KEY" --api-secret "$SECRET_VALUE" \
    --template infra/template.yaml --events-bus "$EVENTS_BUS" --events-queue "$EVENTS_QUEUE" --events-dlq "$EVENTS_DLQ" \
    ${SETUP_ARGS[@]+"${SETUP_ARGS[@]}"} |
    sed 's/^/    /' >&2 || die "could not create the table, the secret and the events' bus and queues in moto"

# ---------------------------------------------------------------- the case-events pipe

# What AWS runs from the template's CaseEventsPipe and moto does not: the table's stream
# -> the template's own filter and input template -> moto's bus (tests/local/src/pipe.rs).
PIPE_LOG="$LOG_DIR/pipe-$$.log"
((KEEP)) || _RUN_LOGS+=("$PIPE_LOG")
start_service "case-events pipe" "$PIPE_LOG" env MOTO_ENDPOINT="$MOTO_ENDPOINT" "$LOCAL_STACK_BIN" pipe \
    --template infra/template.yaml --table "$TABLE" --bus "$EVENTS_BUS" --dlq "$EVENTS_DLQ"

# ---------------------------------------------------------------- Secrets Manager's proxy

# The functions reach Secrets Manager through a proxy to moto
# (AWS_ENDPOINT_URL_SECRETS_MANAGER) that refuses every connection while its outage
# file exists: the chaos run's Secrets Manager outage, with DynamoDB up.
SECRETS_OUTAGE_FILE="$LOCAL_DIR/secrets-outage-$$"
rm -f "$SECRETS_OUTAGE_FILE"
SECRETS_PROXY_LOG="$LOG_DIR/secrets-proxy-$$.log"
((KEEP)) || _RUN_LOGS+=("$SECRETS_PROXY_LOG")
start_service "secrets proxy" "$SECRETS_PROXY_LOG" "$LOCAL_STACK_BIN" secrets-proxy \
    --to "$MOTO_ENDPOINT" --outage-file "$SECRETS_OUTAGE_FILE"
SECRETS_PROXY_PID=$SERVICE_PID
SECRETS_URL=""
for ((i = 0; i < 100; i++)); do
    SECRETS_URL="$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$SECRETS_PROXY_LOG" 2>/dev/null | head -n 1)"
    [[ -n "$SECRETS_URL" ]] && break
    pid_running "$SECRETS_PROXY_PID" || fail "the Secrets Manager proxy exited at start"
    sleep 0.1
done
[[ -n "$SECRETS_URL" ]] || fail "the Secrets Manager proxy did not say it was listening within 10 s"

# ---------------------------------------------------------------- the sandbox

[[ -n "$LAMBDA_PORT" ]] || LAMBDA_PORT=$(free_port)
LAMBDA_URL="http://127.0.0.1:$LAMBDA_PORT/lambda-url"
WEBHOOK_URL="$LAMBDA_URL/webhook$WEBHOOK_PATH"

SANDBOX_LOG="$LOG_DIR/sandbox-$$.log"
((KEEP)) || _RUN_LOGS+=("$SANDBOX_LOG")
log "starting the Cabital sandbox, mode $CABITAL_MODE (webhooks to $WEBHOOK_URL; log: ${SANDBOX_LOG#"$REPO_ROOT"/})"
# The secrets go by environment, never on a command line (ps shows those).
start_service sandbox "$SANDBOX_LOG" env CABITAL_SANDBOX_API_SECRET="$SECRET_VALUE" \
    ${SANDBOX_ENV[@]+"${SANDBOX_ENV[@]}"} "$SANDBOX_BIN" \
    --port "${LOCAL_SANDBOX_PORT:-0}" \
    --api-key "$API_KEY" \
    --webhook-url "$WEBHOOK_URL" \
    --screening-delay-ms 500 \
    --webhook-delay-ms 1000 \
    --time-factor 0.01 \
    ${SANDBOX_ARGS[@]+"${SANDBOX_ARGS[@]}"}
SANDBOX_PID=$SERVICE_PID
SANDBOX_URL=""
for ((i = 0; i < 100; i++)); do
    SANDBOX_URL="$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$SANDBOX_LOG" 2>/dev/null | head -n 1)"
    [[ -n "$SANDBOX_URL" ]] && break
    pid_running "$SANDBOX_PID" || fail "the Cabital sandbox exited at start"
    sleep 0.1
done
[[ -n "$SANDBOX_URL" ]] || fail "the Cabital sandbox did not say it was listening within 10 s"
log "sandbox ready at $SANDBOX_URL (retries every 3 s, 36 s, 3 min, ... : time factor 0.01)"

# ---------------------------------------------------------------- the functions

if ((CI_MODE)); then
    ENV_FILE="$LOCAL_DIR/ci-$$.env"
else
    ENV_FILE="$LOCAL_DIR/local.env"
fi
# Every function reads what it needs; the others ignore the rest. No secret here: the
# functions read it from Secrets Manager (moto, through the proxy above), as on AWS.
# For the chaos run: the secret is cached 30 s (a rotation is seen within that, or at
# the first 401), and served 120 s past that while Secrets Manager fails; a table
# that hangs (moto frozen) fails a call within 4.5 s, so the webhook answers 503 before
# the sandbox's 10 s attempt timeout, in one attempt: moto ignores DynamoDB's
# ClientRequestToken, so the SDK's retry of a write moto applied late would apply it
# twice (DynamoDB itself would not); cases under ongoing screening are re-checked by
# the reconciler after 20 s (Cabital's silent changes), 120 s for a large chaos run (each
# check is a call to Cabital and a write: every 20 s for 600 cases is more than moto,
# one request at a time, can serve).
OGS_CHECK_AFTER=$((CHAOS_CASES > 200 ? 120 : 20))
cat >"$ENV_FILE" <<EOF
TABLE_NAME=$TABLE
CABITAL_SECRET_ID=$SECRET_ID
CABITAL_BASE_URL=$SANDBOX_URL
CABITAL_SIGNATURE_ENCODING=$ENCODING
WEBHOOK_AUTH=$WEBHOOK_AUTH
CABITAL_SECRET_TTL_SECS=30
CABITAL_SECRET_FALLBACK_SECS=120
DYNAMODB_ATTEMPT_TIMEOUT_MS=4500
DYNAMODB_OPERATION_TIMEOUT_MS=4500
AWS_ENDPOINT_URL=$MOTO_ENDPOINT
AWS_ENDPOINT_URL_SECRETS_MANAGER=$SECRETS_URL
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_EC2_METADATA_DISABLED=true
RUST_LOG=info
WEBHOOK_TOLERANCE_SECS=300
WEBHOOK_SIGNED_PATH=/lambda-url/webhook$WEBHOOK_PATH
WEBHOOK_REFRESH_TIMEOUT_MS=3000
RECONCILE_STALE_AFTER_SECS=5
RECONCILE_REFRESH_GRACE_SECS=2
RECONCILE_RATE_PER_SEC=20
RECONCILE_OGS_CHECK_AFTER_SECS=$OGS_CHECK_AFTER
RECONCILE_NO_SUGGESTION_GIVE_UP_SECS=$GIVE_UP_SECS
RETENTION_DAYS=$RETENTION_DAYS
EOF

check_lambda_port
WATCH_LOG="$LOG_DIR/watch-$$.log"
((KEEP)) || _RUN_LOGS+=("$WATCH_LOG")
watch_args=(-A 127.0.0.1 -P "$LAMBDA_PORT" --env-file "$ENV_FILE")
[[ "${LOCAL_RELOAD:-0}" == 1 ]] || watch_args+=(--ignore-changes)
log "starting cargo lambda watch on 127.0.0.1:$LAMBDA_PORT (settings: ${ENV_FILE#"$REPO_ROOT"/}; log: ${WATCH_LOG#"$REPO_ROOT"/})"
start_service "cargo lambda watch" "$WATCH_LOG" cargo lambda watch "${watch_args[@]}"
WATCH_PID=$SERVICE_PID
for ((i = 0; i < 300; i++)); do
    grep -q 'starting Runtime server' "$WATCH_LOG" 2>/dev/null && break
    pid_running "$WATCH_PID" || fail "cargo lambda watch exited at start"
    sleep 0.1
done
if ! pid_running "$WATCH_PID" || ! grep -q 'starting Runtime server' "$WATCH_LOG"; then
    fail "cargo lambda watch did not start within 30 s"
fi

# warm_up NAME EXPECTED CMD...: runs CMD (the function's first request, which builds
# and starts it) in the background, with progress, until it answers EXPECTED; fails
# at once when the function exits at start (a bad setting, say).
warm_up() {
    local name=$1 expected=$2 out pid started from answer next_note=10 compiling
    shift 2
    out="$LOCAL_DIR/warm-$name-$$.out"
    from=$(($(wc -c <"$WATCH_LOG") + 1))
    started=$SECONDS
    log "warming up $name (its first request starts it; compiles it if needed)"
    "$@" >"$out" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if tail -c +"$from" "$WATCH_LOG" | grep -q 'command exited'; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            rm -f "$out"
            fail "$name exited as it started: a build error, or a missing or bad setting (see the log above)"
        fi
        if ((SECONDS - started >= WARMUP_TIMEOUT)); then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            rm -f "$out"
            fail "$name did not answer within ${WARMUP_TIMEOUT}s (LOCAL_WARMUP_TIMEOUT)"
        fi
        if ((SECONDS - started >= next_note)); then
            # No such line yet is no error (pipefail would end the script here).
            compiling="$(tail -c +"$from" "$WATCH_LOG" | grep -E '^\s*(Compiling|Blocking|Finished|Running)' | tail -n 1 | sed 's/^ *//' || true)"
            log "  ... $name: $(fmt_duration $((SECONDS - started)))${compiling:+ ($compiling)}"
            next_note=$((next_note + 15))
        fi
        sleep 0.5
    done
    if ! wait "$pid"; then
        answer="$(cat "$out")"
        rm -f "$out"
        fail "warming up $name failed: $answer"
    fi
    answer="$(tail -n 1 "$out")"
    rm -f "$out"
    # shellcheck disable=SC2053 # EXPECTED is a pattern
    [[ "$answer" == $expected ]] || fail "$name answered '$answer' to its warm-up request, expected $expected"
    log "  $name is up ($(fmt_duration $((SECONDS - started))))"
}
# A bad case id (400), an unsigned empty webhook (401; with WEBHOOK_AUTH=refetch a
# notice, refused 400 for its empty body), a reconcile run over the empty table.
warm_up cases-api 400 "$LOCAL_STACK_BIN" ping "$LAMBDA_URL/cases-api/v1/cases/warm-up" --timeout-secs "$WARMUP_TIMEOUT"
warm_up webhook "$WEBHOOK_WARMUP" "$LOCAL_STACK_BIN" ping "$LAMBDA_URL/webhook$WEBHOOK_PATH" --method POST --timeout-secs "$WARMUP_TIMEOUT"
warm_up reconcile '*"found"*' cargo lambda invoke reconcile --data-file functions/reconcile/events/schedule.json \
    -A 127.0.0.1 -P "$LAMBDA_PORT"

# ---------------------------------------------------------------- the walk

log "walking a case's whole life through the functions"
MOTO_ENDPOINT=$MOTO_ENDPOINT "$LOCAL_STACK_BIN" walk \
    --api "$LAMBDA_URL/cases-api" \
    --sandbox "$SANDBOX_URL" \
    --table "$TABLE" \
    --stale-after-secs 5 \
    --mode "$CABITAL_MODE" \
    --give-up-secs "$GIVE_UP_SECS" \
    --retention-days "$RETENTION_DAYS" \
    --events-queue "$EVENTS_QUEUE" --template infra/template.yaml \
    --reconcile-event functions/reconcile/events/schedule.json ||
    fail "the walk failed (see above; the pipe's log: ${PIPE_LOG#"$REPO_ROOT"/})"
WALK_PASSED=1

# ---------------------------------------------------------------- the API against its document

# schemathesis (pinned in scripts/requirements.txt) drives the cases API from
# docs/openapi.yaml: the document's examples, edge values, random valid and invalid
# input, then chains of calls through the document's links (create -> get, find, ogs
# on/off, decision). No answer may be a 5xx, and each must be one the document lists
# for the operation, with its content type, headers and schema.
ST_SECS=${LOCAL_SCHEMATHESIS_SECS:-$( ((CI_MODE)) && echo 150 || echo 0)}
[[ "$ST_SECS" =~ ^[0-9]+$ ]] || die "LOCAL_SCHEMATHESIS_SECS must be a number of seconds, not '$ST_SECS'"
if ((ST_SECS > 0)); then
    log "schemathesis: the cases API against docs/openapi.yaml for ${ST_SECS}s (LOCAL_SCHEMATHESIS_SECS)"
    st_start=$SECONDS
    # The hooks drop one answer that is the emulator's, not the function's (see the file).
    SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$REPO_ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" \
        st run docs/openapi.yaml --url "$LAMBDA_URL/cases-api" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
        --max-time "$ST_SECS" --max-examples "${LOCAL_SCHEMATHESIS_EXAMPLES:-100}" --workers 1 \
        --request-timeout 30 --warnings off ||
        fail "schemathesis: the cases API broke docs/openapi.yaml (see above)"
    log "schemathesis passed in $(fmt_duration $((SECONDS - st_start)))"
fi

# ---------------------------------------------------------------- the chaos run

if ((CHAOS_CASES > 0)); then
    log "the chaos run: $CHAOS_CASES cases under faults and bad deliveries, moto frozen once, the secrets rotated (one during a Secrets Manager outage)"
    chaos_start=$SECONDS
    # Its report is kept, so that on failure its verdict is printed again after the
    # services' logs: the last lines on screen (and in a CI log's tail) say what failed.
    CHAOS_OUT="$LOG_DIR/chaos-$$.log"
    ((KEEP)) || _RUN_LOGS+=("$CHAOS_OUT")
    MOTO_ENDPOINT=$MOTO_ENDPOINT "$LOCAL_STACK_BIN" chaos \
        --api "$LAMBDA_URL/cases-api" \
        --webhook "$WEBHOOK_URL" \
        --sandbox "$SANDBOX_URL" \
        --table "$TABLE" \
        --secret-id "$SECRET_ID" \
        --moto-pid "$MOTO_PID" \
        --log-file "$WATCH_LOG" \
        --secrets-outage-file "$SECRETS_OUTAGE_FILE" \
        --cases "$CHAOS_CASES" \
        --retention-days "$RETENTION_DAYS" \
        --events-queue "$EVENTS_QUEUE" --template infra/template.yaml \
        --reconcile-event functions/reconcile/events/schedule.json 2>&1 | tee "$CHAOS_OUT" ||
        fail_chaos
    log "the chaos run passed in $(fmt_duration $((SECONDS - chaos_start)))"
fi

if ((!KEEP)); then
    exit 0
fi

# ---------------------------------------------------------------- --keep

trap 'echo >&2; log "stopping the local stack"; exit 0' INT
cat >&2 <<EOF

${_C_GRN}==> the local stack is running${_C_OFF} (started in $(fmt_duration $((SECONDS - START))))
    cases API        $LAMBDA_URL/cases-api/v1/cases
    webhook          $WEBHOOK_URL
    Cabital sandbox  $SANDBOX_URL  (control API: $SANDBOX_URL/_sandbox/cases, /_sandbox/faults, ...)
    moto             $MOTO_ENDPOINT  (table $TABLE, secret $SECRET_ID)
    settings         ${ENV_FILE#"$REPO_ROOT"/}
    logs             ${SANDBOX_LOG#"$REPO_ROOT"/}, ${WATCH_LOG#"$REPO_ROOT"/}

    Try:
      curl -s $LAMBDA_URL/cases-api/v1/cases/<caseSystemId>
      cargo lambda invoke reconcile --data-file functions/reconcile/events/schedule.json -A 127.0.0.1 -P $LAMBDA_PORT
      (cargo-lambda is in .venv/bin: 'source .venv/bin/activate' or use .venv/bin/cargo-lambda lambda ...)

    Stop it with Ctrl-C (or: kill $$): every process it started is stopped.
EOF
while true; do
    for i in "${!_SERVICE_PIDS[@]}"; do
        if ! pid_running "${_SERVICE_PIDS[$i]}"; then
            fail "${_SERVICE_NAMES[$i]} stopped on its own"
        fi
    done
    sleep 1
done
