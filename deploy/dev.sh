#!/usr/bin/env bash
# Developer entry points, the ones README.md shows:
#   deploy/dev.sh demo [mclusterctl demo flags]   build, then run the three-node demo cluster
#   deploy/dev.sh test                            every check CI runs: fmt, clippy, all tests
# On a fresh Debian machine it first installs what the build needs (libclang-dev for RocksDB's
# bindings, openssl for a certificate check in the cli tests), and for `test` the real mail
# clients the conformance scenarios drive (swaks, fetchmail, mbsync from isync; Python's
# smtplib/poplib/imaplib ship with python3), the outbound lab's DNS stub and SMTP sinks
# (python3-dnslib, python3-aiosmtpd; dig from dnsutils), dkimpy (python3-dkim) to verify our
# DKIM signatures, the content scanners the filter scenarios start (spamd, clamd from
# clamav-daemon), and the tools the chaos scenarios use to build and break networks (iproute2,
# nftables).
set -euo pipefail
cd "$(dirname "$0")/.."

install_build_deps() {
    local missing=()
    dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    if [ "${1:-}" = test ]; then
        command -v swaks >/dev/null 2>&1 || missing+=(swaks)
        command -v fetchmail >/dev/null 2>&1 || missing+=(fetchmail)
        command -v mbsync >/dev/null 2>&1 || missing+=(isync)
        command -v python3 >/dev/null 2>&1 || missing+=(python3)
        # The outbound lab's DNS stub and SMTP sinks (chaos-tests/clients), and dig to query them.
        dpkg -s python3-aiosmtpd >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
        dpkg -s python3-dnslib >/dev/null 2>&1 || missing+=(python3-dnslib)
        dpkg -s python3-dkim >/dev/null 2>&1 || missing+=(python3-dkim)
        command -v dig >/dev/null 2>&1 || missing+=(dnsutils)
        # The content filter scenarios run their own spamd and clamd (chaos-tests/src/filter_lab.rs).
        dpkg -s spamd >/dev/null 2>&1 || missing+=(spamd)
        dpkg -s clamav-daemon >/dev/null 2>&1 || missing+=(clamav-daemon)
        # The chaos scenarios build networks of namespaces (ip) and cut them (nft).
        command -v ip >/dev/null 2>&1 || missing+=(iproute2)
        command -v nft >/dev/null 2>&1 || missing+=(nftables)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Reads cargo's JSON messages and prints the directory where librocksdb-sys's build script put
# librocksdb.a (fails if the build made none).
ROCKSDB_OUT_DIR='
import json, sys
found = [m["out_dir"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "build-script-executed" and "librocksdb-sys" in m["package_id"]]
if not found:
    sys.exit("the build reported no librocksdb-sys build script output")
print(found[-1])
'

target_dir() {
    echo "${CARGO_TARGET_DIR:-$PWD/target}"
}

case "${1:-}" in
    demo)
        shift
        install_build_deps
        cargo build --workspace --bins
        exec "$(target_dir)/debug/mclusterctl" demo "$@"
        ;;
    test)
        install_build_deps test
        cargo fmt --all -- --check
        # The chaos scenarios run the real binaries: build them before the tests.
        rocksdb_lib=$(cargo build --workspace --all-targets --message-format=json-render-diagnostics |
            python3 -c "$ROCKSDB_OUT_DIR")
        # RocksDB's C++ is most of a fresh build, and clippy runs dependencies' build scripts
        # apart from `cargo build`: left alone it compiles RocksDB a second time. It only checks
        # our code, so it may as well use the library the build just made.
        ROCKSDB_LIB_DIR="$rocksdb_lib" ROCKSDB_STATIC=1 cargo clippy --workspace --all-targets -- -D warnings
        # Licences and banned crates (deploy/deny.toml), offline, over this platform's
        # dependency tree (the build has fetched all of it). cargo-deny still tries to fetch
        # every crate in Cargo.lock and logs an ERROR for other platforms' (windows-sys); the
        # check does not need them, and its verdict is the "bans ok, licenses ok" line.
        command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny@0.20.2
        cargo metadata --offline --format-version 1 \
            --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" >"$(target_dir)/deny-metadata.json"
        cargo deny --offline --metadata-path "$(target_dir)/deny-metadata.json" \
            --config deploy/deny.toml check licenses bans
        # The rolling-upgrade scenario starts the previous release (deploy/PREVIOUS_RELEASE):
        # built once, with the RocksDB library the build above made, and kept with the target.
        MCLUSTER_PREVIOUS_RELEASE=$(deploy/previous-release.sh "$rocksdb_lib")
        export MCLUSTER_PREVIOUS_RELEASE
        # The package test installs the Debian package into this machine (and removes it).
        export MCLUSTER_PACKAGE_TEST=1
        # The chaos scenarios (the smoke subset; MCLUSTER_CHAOS_FULL=1 for all of them) each add
        # a row to a results table, printed at the end whether or not the tests passed.
        "$(target_dir)/debug/chaos_table" --reset
        status=0
        if cargo nextest --version >/dev/null 2>&1; then
            cargo nextest run --workspace --no-fail-fast || status=$?
        else
            cargo test --workspace --no-fail-fast || status=$?
        fi
        "$(target_dir)/debug/chaos_table" || status=1
        exit $status
        ;;
    *)
        echo "usage: deploy/dev.sh demo [--dir DIR] [--password PW] | deploy/dev.sh test" >&2
        exit 2
        ;;
esac
