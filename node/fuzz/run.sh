#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: node/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# (default 600 s each, all targets). Needs nightly Rust and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Each target starts from its checked-in seeds (seeds/TARGET) plus what earlier runs found
# (corpus/TARGET, not committed). A crash stops that target, leaves the input in
# artifacts/TARGET/ and makes this script exit non-zero; reproduce it with
#   cargo +nightly fuzz run TARGET artifacts/TARGET/crash-...
# The final lines of each target's libFuzzer log (the run's exec count, coverage and corpus size)
# are printed as a summary; the full logs are in logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# FUZZ_TARGET_DIR: where to build (default node/fuzz/target).
target_dir=()
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
    target_dir=(--target-dir "$FUZZ_TARGET_DIR")
fi
mkdir -p logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    echo "== $target: ${secs} s"
    if cargo +nightly fuzz run "${target_dir[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$target.log" 2>&1; then
        grep -E '^#[0-9]+ *DONE|stat::number_of_executed_units|stat::average_exec_per_sec|cov: ' \
            "logs/$target.log" | tail -3
    else
        echo "   CRASH or error: see logs/$target.log and artifacts/$target/"
        tail -20 "logs/$target.log"
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
