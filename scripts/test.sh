#!/usr/bin/env bash
# The test command: everything CI runs, runnable on a fresh machine.
#
#   ./scripts/test.sh                     all checks and all tests
#   ./scripts/test.sh -p cabital-signing  extra arguments go to `cargo test`
#   ./scripts/test.sh -- --nocapture      (also to the test binaries after --)
#   SKIP_LINT=1 ./scripts/test.sh ...     quick iteration: no cargo fmt / clippy
#
# Steps: install the pinned tools of scripts/requirements.txt into .venv (skipped
# when unchanged), start moto on 127.0.0.1 (stopped on exit, error or Ctrl-C),
# cargo fmt --check, cargo clippy -D warnings, cargo test, cfn-lint and
# `sam validate --lint` of infra/template.yaml.
#
# Environment:
#   SKIP_LINT=1           skip cargo fmt and cargo clippy (the template checks take
#                         seconds and always run)
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
run_step moto start_moto
run_step test cargo test "${cargo_test_args[@]}"
stop_all_services

# ---- the SAM template
if [[ -f "$TEMPLATE" ]]; then
    run_step cfn-lint cfn-lint "$TEMPLATE"
    run_step sam-validate sam validate --lint --template "$TEMPLATE"
else
    warn "$TEMPLATE not found: skipping cfn-lint and sam validate"
fi
