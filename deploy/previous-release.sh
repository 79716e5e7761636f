#!/usr/bin/env bash
# Builds mclusterd and mclusterctl of the previous release (the commit in deploy/PREVIOUS_RELEASE)
# once, for the rolling-upgrade chaos scenario, and prints the directory that holds them:
# $CARGO_TARGET_DIR/previous-release/<commit>/. A second run finds them there and builds nothing.
#
#   deploy/previous-release.sh [ROCKSDB_LIB_DIR]
#
# With ROCKSDB_LIB_DIR (the librocksdb-sys output of this tree's build, as deploy/dev.sh test
# passes it) RocksDB's C++ is not compiled again: only the Rust of the old tree is.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(tr -d '[:space:]' <deploy/PREVIOUS_RELEASE)
target="${CARGO_TARGET_DIR:-$PWD/target}/previous-release"
out="$target/$commit"
if [ -x "$out/mclusterd" ] && [ -x "$out/mclusterctl" ]; then
    echo "$out"
    exit 0
fi
git cat-file -e "$commit^{commit}" 2>/dev/null || {
    echo "deploy/PREVIOUS_RELEASE names $commit, which this clone does not have" >&2
    exit 1
}
src="$target/src-$commit"
rm -rf "$src"
mkdir -p "$src"
git archive "$commit" | tar -x -C "$src"
(
    cd "$src"
    export CARGO_TARGET_DIR="$target/target"
    if [ -n "${1:-}" ]; then
        export ROCKSDB_LIB_DIR="$1" ROCKSDB_STATIC=1
    fi
    cargo build --locked --bins -p node -p cli >&2
    mkdir -p "$out.partial"
    cp "$CARGO_TARGET_DIR/debug/mclusterd" "$CARGO_TARGET_DIR/debug/mclusterctl" "$out.partial/"
)
rm -rf "$out" "$src"
mv "$out.partial" "$out"
echo "$out"
