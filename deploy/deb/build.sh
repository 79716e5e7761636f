#!/usr/bin/env bash
# Builds the Debian package `mcluster` (mclusterd, mclusterctl, their manual pages, the systemd
# unit, the `mcluster` system user, /etc/mcluster/mclusterd.toml as a conffile with every option
# at its default, data in /var/lib/mcluster) with dpkg-deb, and prints the .deb's path.
#
#   deploy/deb/build.sh [--release] [--version VERSION] [--out DIR]
#
# --release builds optimized binaries (for servers: the first release build compiles RocksDB
# again); without it the package holds this tree's debug binaries, as the package test uses.
# --version defaults to the workspace version. Needs dpkg-deb, strip and gzip.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=debug
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
out="${CARGO_TARGET_DIR:-$PWD/target}/deb"
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --version) version=$2; shift ;;
        --out) out=$2; shift ;;
        *) echo "usage: deploy/deb/build.sh [--release] [--version VERSION] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
target="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "$profile" = release ]; then
    cargo build --release --locked -p node -p cli --bins >&2
else
    cargo build --locked -p node -p cli --bins >&2
fi
bin="$target/$profile"
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/mcluster" \
    "$root/usr/share/man/man1" "$root/usr/share/man/man8" "$root/usr/share/doc/mcluster" \
    "$root/DEBIAN"
for program in mclusterd mclusterctl; do
    install -m 0755 "$bin/$program" "$root/usr/bin/$program"
    strip --strip-debug "$root/usr/bin/$program"
done
"$bin/mclusterd" --man-page "$root/usr/share/man/man8"
"$bin/mclusterctl" man "$root/usr/share/man/man1"
gzip -9n "$root"/usr/share/man/man*/*
# The unit as deploy/mclusterd.service has it, with the packaged binary, and idle until a node
# directory is in /etc/mcluster (the packaged config alone names no certificate that exists).
sed -e 's|/usr/local/bin/mclusterd|/usr/bin/mclusterd|' \
    -e 's|^\[Unit\]$|[Unit]\nConditionPathExists=/etc/mcluster/node.crt|' \
    deploy/mclusterd.service >"$root/lib/systemd/system/mclusterd.service"
install -m 0640 deploy/mclusterd.example.toml "$root/etc/mcluster/mclusterd.toml"
install -m 0644 deploy/deb/copyright "$root/usr/share/doc/mcluster/copyright"
for script in postinst prerm postrm; do
    install -m 0755 "deploy/deb/$script" "$root/DEBIAN/$script"
done
echo /etc/mcluster/mclusterd.toml >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    deploy/deb/control.in >"$root/DEBIAN/control"
mkdir -p "$out"
deb="$out/mcluster_${version}_${arch}.deb"
# xz for a release; a debug package (tests) is compressed fast instead of small.
if [ "$profile" = release ]; then compression=(-Zxz); else compression=(-Zgzip -z1); fi
dpkg-deb --root-owner-group "${compression[@]}" --build "$root" "$deb" >&2
echo "$deb"
