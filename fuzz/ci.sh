#!/usr/bin/env bash
# Fuzzes every target for a short while, as .ci/run does after the stable corpus replay
# (`cargo test --workspace`, which replays fuzz/corpus and fuzz/regressions always).
#
#   fuzz/ci.sh                 # every target, FUZZ_SECONDS (default 20) each
#   FUZZ_SECONDS=60 fuzz/ci.sh ops torn
#
# No nightly toolchain: prints a skip line and exits 0. A crash, or a build failure,
# exits non-zero; the crashing input is left in fuzz/artifacts/<target>/ and the
# libFuzzer log tail is printed. New inputs go to a temporary folder, so the committed
# corpus does not grow.
set -euo pipefail

cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-20}"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(codec ops file torn)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: SKIP: no nightly toolchain (rustup toolchain install nightly); the corpora were replayed on stable by cargo test"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Per-target libFuzzer options: the file target's seeds are whole store files.
opts() {
    case "$1" in
        file) echo "-max_len=16384 -dict=dicts/file.dict" ;;
        ops | torn) echo "-max_len=2048" ;;
        *) echo "" ;;
    esac
}

echo "fuzz: building targets (nightly, release + sanitizer coverage)"
cargo +nightly fuzz build >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    log="$work/$t.log"
    # shellcheck disable=SC2046
    if cargo +nightly fuzz run "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 $(opts "$t") >"$log" 2>&1; then
        echo "fuzz: $t ok: $(grep -E '^#[0-9]+' "$log" | tail -n 1 | cut -c1-100)"
    else
        echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/):"
        tail -n 40 "$log"
        status=1
    fi
done
exit "$status"
