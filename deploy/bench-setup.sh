#!/bin/sh
# Installs the reference servers the benchmarks compare with (today: Postfix, for smtp_bench)
# from Debian packages, without starting any service. Run as root. The benchmarks start private
# instances on loopback high ports themselves; the system Postfix stays stopped.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-setup.sh: run as root" >&2
    exit 1
fi

if [ -x /usr/sbin/postfix ] && dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "ok installed"; then
    echo "postfix is installed: $(/usr/sbin/postconf -d -h mail_version)"
    exit 0
fi

# Keep maintainer scripts from starting services while the package installs: invoke-rc.d asks
# policy-rc.d, and 101 means "not allowed". Only ours is removed afterwards.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix

echo "installed postfix $(/usr/sbin/postconf -d -h mail_version); no service was started"
