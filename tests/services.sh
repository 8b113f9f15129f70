#!/usr/bin/env sh
# Test services the suite starts itself: make sure their programs are installed.
# Dovecot (IMAP) and Postfix (the MTA in front of ticketd) come from Debian's packages;
# the tests run private instances on loopback ports with their own config folders,
# never the system services.  Chromium and its chromedriver (Debian's too) drive the
# console's browser tests headless, so Selenium never downloads a browser.  Without root
# or apt-get the IMAP, Postfix and browser tests skip (and fail under
# TICKETD_REQUIRE_SERVICES=1).
set -eu

missing=""
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
    missing="dovecot-imapd"
fi
if ! command -v postfix >/dev/null 2>&1 && [ ! -x /usr/sbin/postfix ]; then
    missing="${missing:+$missing }postfix"
fi
if [ ! -x /usr/bin/chromium ]; then
    missing="${missing:+$missing }chromium"
fi
if [ ! -x /usr/bin/chromedriver ]; then
    missing="${missing:+$missing }chromium-driver"
fi
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "services: missing ($missing) and cannot be installed here (needs root and apt-get)" >&2
    exit 0
fi

# Postfix asks how to configure the system's mail; "No configuration" writes no main.cf,
# so the system instance has nothing to run (the tests bring their own main.cf).
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# The packages must not start their system services: a policy-rc.d that says no (101),
# ours only for the install when the machine has none.
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=yes
fi
trap '[ -z "$ours" ] || rm -f "$policy"' EXIT

echo "services: installing $missing with apt-get"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # the package names are words
apt-get install -y -q --no-install-recommends $missing >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; }

case "$missing" in
*postfix*)
    # Never started at boot either, and stopped should anything have started it: the
    # tests neither need nor disturb a system Postfix, and port 25 stays free.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable postfix >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d postfix disable >/dev/null 2>&1 || true
    fi
    if [ -f /etc/postfix/main.cf ] && /usr/sbin/postfix status >/dev/null 2>&1; then
        /usr/sbin/postfix stop >/dev/null 2>&1 || true
    fi
    ;;
esac
