#!/usr/bin/env bash
# Fuzz what reaches the gateway from outside before any I/O (cargo-fuzz, libFuzzer).
# A run of minutes, by hand: not part of scripts/test.sh or CI.
#
#   ./scripts/fuzz.sh                    every target, 180 s each
#   ./scripts/fuzz.sh webhook 600        one target, 10 minutes
#   ./scripts/fuzz.sh all 60             every target, 60 s each
#
# Targets (fuzz/fuzz_targets/, their properties in fuzz/src/):
#   webhook        the webhook's signature check (gateway-signing `verify`) and body
#                  parsing (`WebhookNotification::from_body`) on arbitrary headers+body
#   validate_case  `validate_new_case` and `validate_decision` on arbitrary bytes read
#                  as JSON
#
# It installs cargo-fuzz if missing (`cargo install cargo-fuzz --locked`) and builds on
# the stable toolchain with RUSTC_BOOTSTRAP=1 (libFuzzer's sanitizer flags are nightly
# flags), into fuzz/target (its own: a first build takes about 2 minutes). Each target
# starts from the inputs kept in fuzz/regressions/TARGET/ and grows its corpus in
# fuzz/corpus/TARGET/ (not under version control).
#
# A failure leaves the input in fuzz/artifacts/TARGET/. To keep it: fix the code,
# copy the input to fuzz/regressions/TARGET/ under a name that says what it is, and
# add its expected outcome to shared/cabital/tests/fuzz_regressions.rs, which replays
# every kept input in `cargo test`.
#
# Environment:
#   FUZZ_JOBS=N      run N fuzzing processes per target (default 1)
#   FUZZ_ARGS=...    extra libFuzzer flags, e.g. FUZZ_ARGS='-max_len=4096'
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

TARGETS=(webhook validate_case)

case "${1:-}" in
-h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "$0"
    exit 0
    ;;
esac

target=${1:-all}
seconds=${2:-180}
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || die "SECONDS must be a whole number above 0, not '$seconds'"
jobs=${FUZZ_JOBS:-1}
[[ "$jobs" =~ ^[0-9]+$ && "$jobs" -gt 0 ]] || die "FUZZ_JOBS must be a whole number above 0, not '$jobs'"
if [[ "$target" == all ]]; then
    run=("${TARGETS[@]}")
else
    [[ " ${TARGETS[*]} " == *" $target "* ]] || die "unknown target '$target' (one of: ${TARGETS[*]}, all)"
    run=("$target")
fi

require_cmd cargo
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (cargo install cargo-fuzz --locked; a minute or two)"
    cargo install cargo-fuzz --locked || die "could not install cargo-fuzz"
fi

# libFuzzer needs -Z flags; the stable compiler takes them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
# Debug assertions (-a) on: an overflow or a failed debug_assert! is a finding too.
log "building the fuzz targets (fuzz/target; cold: about 2 minutes)"
cargo fuzz build -a || die "building the fuzz targets failed (see above)"

START=$SECONDS
summary=()
for t in "${run[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    log "fuzzing $t for ${seconds}s (corpus $corpus, seeds fuzz/regressions/$t)"
    start=$SECONDS
    flags=(-max_total_time="$seconds" -print_final_stats=1)
    ((jobs > 1)) && flags+=(-jobs="$jobs" -workers="$jobs")
    # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
    [[ -n "${FUZZ_ARGS:-}" ]] && flags+=(${FUZZ_ARGS})
    if ! cargo fuzz run -a "$t" "$corpus" "fuzz/regressions/$t" -- "${flags[@]}"; then
        die "$t failed after $(fmt_duration $((SECONDS - start))): the input is in fuzz/artifacts/$t/ (replay: cargo fuzz run -a $t fuzz/artifacts/$t/<file>)"
    fi
    summary+=("$t ($(fmt_duration $((SECONDS - start))), corpus $(find "$corpus" -type f | wc -l) inputs)")
done
ok "fuzzing passed in $(fmt_duration $((SECONDS - START))): ${summary[*]}"
