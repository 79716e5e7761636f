#!/usr/bin/env bash
# Runs the chaos scenarios and prints the results table (scenario, acknowledged, lost,
# duplicated, phantom, double VIP, failover ms, resync s). Needs root (network namespaces) and
# iproute2, nftables, util-linux (nsenter), python3.
#   chaos-tests/run-chaos.sh                      the smoke subset (a few minutes)
#   MCLUSTER_CHAOS_FULL=1 chaos-tests/run-chaos.sh  every scenario
#   MCLUSTER_CHAOS_SEED=N ...                     replay one seed
set -uo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --workspace --all-targets || exit 1
"$target/debug/chaos_table" --reset
cargo nextest run --workspace --no-fail-fast --success-output final -E 'binary(it) & test(/^chaos::/)'
status=$?
"$target/debug/chaos_table" || status=1
exit $status
