#!/bin/sh
# Installs the reference servers the benchmarks compare with (Postfix, for smtp_bench; Dovecot
# with IMAP and POP3, for fetch_bench) from Debian packages, without starting any service. Run as
# root; running it again installs only what is missing. The benchmarks start private instances
# on loopback high ports themselves; the system Postfix and Dovecot stay stopped.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-setup.sh: run as root" >&2
    exit 1
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

missing=""
if ! [ -x /usr/sbin/postfix ] || ! installed postfix; then
    missing="$missing postfix"
fi
for package in dovecot-core dovecot-imapd dovecot-pop3d; do
    if ! installed "$package"; then
        missing="$missing $package"
    fi
done

if [ -n "$missing" ]; then
    # Keep maintainer scripts from starting services while the packages install: invoke-rc.d
    # asks policy-rc.d, and 101 means "not allowed". Only ours is removed afterwards.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi

    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    apt-get update
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
    echo "installed$missing; no service was started"
fi

echo "postfix is installed: $(/usr/sbin/postconf -d -h mail_version)"
echo "dovecot is installed: $(/usr/sbin/dovecot --version)"
