#!/usr/bin/env bash
# The test command: everything CI runs, runnable on a fresh machine.
#
#   ./scripts/test.sh                     all checks and all tests
#   ./scripts/test.sh -p gateway-signing  extra arguments go to `cargo test`
#   ./scripts/test.sh -- --nocapture      (also to the test binaries after --)
#   SKIP_LINT=1 ./scripts/test.sh ...     quick iteration: no cargo fmt / clippy
#
# Steps: install the pinned tools of scripts/requirements.txt into .venv (skipped
# when unchanged), start moto on 127.0.0.1 (stopped on exit, error or Ctrl-C),
# cargo fmt --check, cargo clippy -D warnings, cargo test, the local stack end to end
# (`./scripts/local.sh --ci`: the functions under `cargo lambda watch`, a case walked
# through their HTTP endpoints, a dropped webhook settled by `cargo lambda invoke
# reconcile`, schemathesis, then the chaos run at its CI size, 120 cases, about
# 1.5 min, with a separate webhook secret and retries under old headers), the walk again
# in each other Cabital mode (`./scripts/local.sh --ci --cabital all`: hex, unsigned
# webhooks, an empty create answer, no screening, ...; about 1.5 min each), cfn-lint
# and `sam validate --lint` of infra/template.yaml, then
# `sam build` of the three functions as a deploy builds them (release, arm64, into
# .aws-sam/build).
#
# Environment:
#   SKIP_LINT=1           skip cargo fmt and cargo clippy (the template checks take
#                         seconds and always run)
#   SKIP_LOCAL_STACK=1    skip the local stack's walk (also skipped when you choose
#                         packages with -p: it tests the whole system)
#   SKIP_SAM_BUILD=1      skip `sam build` (release builds with LTO, on 2 cores: about
#                         17 min cold, 3-6 min after a change, 11 s when nothing
#                         changed; CI always runs it)
#   MOTO_PORT=N           run moto on this port instead of a free one
#   MOTO_START_TIMEOUT=S  how long to wait for moto (default 20 s)
#   PYTHON=...            the Python that creates .venv (default python3)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

case "${1:-}" in
-h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "$0"
    exit 0
    ;;
esac

TEMPLATE=infra/template.yaml
START=$SECONDS

skip_lint() { [[ -n "${SKIP_LINT:-}" && "${SKIP_LINT}" != 0 ]]; }
skip_sam_build() { [[ -n "${SKIP_SAM_BUILD:-}" && "${SKIP_SAM_BUILD}" != 0 ]]; }

# The three functions as a deploy builds them: arm64 (samconfig.toml), cross-compiled by
# cargo-lambda through its zig. SAM runs `cargo lambda build --release --arm64` in each
# function's folder and shows cargo's output only at the end, so each build runs here
# first, the same way, with cargo's progress on screen; `sam build` then finds them up
# to date in the shared target/ and only copies the binaries into .aws-sam/build.
sam_build() {
    local dir start f
    log "rustup target add aarch64-unknown-linux-gnu (the deploy's architecture)"
    rustup target add aarch64-unknown-linux-gnu
    for dir in functions/cases-api functions/webhook functions/reconcile; do
        log "cargo lambda build --release --arm64 in $dir (cold: ~6 min for the first, which builds every dependency; then ~3 min each, an LTO link)"
        start=$SECONDS
        (cd "$dir" && cargo lambda build --release --arm64)
        log "$dir built in $(fmt_duration $((SECONDS - start)))"
    done
    log "sam build --template $TEMPLATE --parameter-overrides LambdaArchitecture=arm64"
    sam build --template "$TEMPLATE" --parameter-overrides LambdaArchitecture=arm64 \
        --build-dir .aws-sam/build
    for f in CasesApiFunction WebhookFunction ReconcileFunction; do
        [[ -x ".aws-sam/build/$f/bootstrap" ]] || die "sam build left no .aws-sam/build/$f/bootstrap"
        # ELF e_machine, bytes 18-19: 0xb7 is AArch64.
        [[ "$(od -An -tx1 -j18 -N2 ".aws-sam/build/$f/bootstrap" | tr -d ' ')" == b700 ]] ||
            die ".aws-sam/build/$f/bootstrap is not an arm64 binary"
    done
}

on_exit() {
    local rc=$1 took passed="" step where="" note=""
    took="$(fmt_duration $((SECONDS - START)))"
    for step in ${STEPS_PASSED[@]+"${STEPS_PASSED[@]}"}; do
        passed+="${passed:+, }$step"
    done
    if skip_lint; then
        note=" [lint skipped: SKIP_LINT]"
    fi
    if ((rc == 0)); then
        ok "PASSED in $took: ${passed:-nothing run}$note"
    else
        [[ -n "$CURRENT_STEP" ]] && where=" at step '$CURRENT_STEP'"
        printf '%s==> FAILED%s after %s (exit %s); passed before it: %s%s\n' \
            "$_C_RED" "$where" "$took" "$rc" "${passed:-none}" "$_C_OFF" >&2
    fi
}
install_cleanup_trap

require_cmd cargo sha256sum setsid

# Does the caller choose the packages? Then do not add --workspace.
cargo_test_args=()
choose_packages=0
for arg in "$@"; do
    [[ "$arg" == -- ]] && break
    case "$arg" in
    -p | -p* | --package | --package=* | --workspace | --all | --exclude | --exclude=*) choose_packages=1 ;;
    esac
done
if ((choose_packages == 0)); then
    cargo_test_args+=(--workspace)
fi
cargo_test_args+=("$@")

# ---- tools
log "installing tools (pinned in scripts/requirements.txt)"
run_step tools ensure_venv

# ---- lint
if skip_lint; then
    warn "SKIP_LINT is set: skipping cargo fmt and cargo clippy"
else
    run_step fmt cargo fmt --all -- --check
    run_step clippy cargo clippy --workspace --all-targets -- -D warnings
fi

# ---- tests (against moto)
# moto_serial.py's patches still fit the pinned moto (see scripts/test_moto_serial.py).
run_step moto-patches "$VENV_DIR/bin/python" -m unittest discover -s scripts -p test_moto_serial.py
run_step moto start_moto
run_step test cargo test "${cargo_test_args[@]}"
stop_all_services

# ---- the local stack, end to end (the README's first command, on a free port; it
# starts and stops its own moto, sandbox and cargo lambda watch)
if [[ -n "${SKIP_LOCAL_STACK:-}" && "${SKIP_LOCAL_STACK}" != 0 ]]; then
    warn "SKIP_LOCAL_STACK is set: skipping the local stack's walk"
elif ((choose_packages)); then
    warn "packages chosen: skipping the local stack's walk (it tests the whole system)"
else
    run_step gateway-local ./scripts/local.sh --ci
    # Where Cabital's page is silent, each other answer it may give: one walk each.
    run_step cabital-modes ./scripts/local.sh --ci --cabital all
fi

# ---- the SAM template
if [[ -f "$TEMPLATE" ]]; then
    run_step cfn-lint cfn-lint "$TEMPLATE"
    run_step sam-validate sam validate --lint --template "$TEMPLATE"
    if skip_sam_build; then
        warn "SKIP_SAM_BUILD is set: skipping sam build"
    else
        run_step sam-build sam_build
    fi
else
    warn "$TEMPLATE not found: skipping cfn-lint and sam validate"
fi
