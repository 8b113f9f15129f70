#!/usr/bin/env sh
# Test services the suite starts itself: make sure their programs are installed.
# Dovecot (IMAP) comes from Debian's packages; the tests run a private instance on
# loopback ports with its own config folder, never the system service.  Without
# root or apt-get the IMAP tests skip (and fail under TICKETD_REQUIRE_SERVICES=1).
set -eu

if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "services: dovecot is missing and cannot be installed here (needs root and apt-get)" >&2
    exit 0
fi
echo "services: installing dovecot-imapd with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends dovecot-imapd >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends dovecot-imapd >/dev/null; }
