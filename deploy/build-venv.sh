#!/usr/bin/env sh
# Build the environment ticketd runs from, /opt/ticketd/.venv, out of the system's Python,
# and check that the service user can run it.  As root, from a checkout of the repository:
#
#   apt-get install python3 python3-venv        # Debian 12: Python 3.11
#   useradd --system --home-dir /var/lib/ticketd --shell /usr/sbin/nologin ticketd
#   sh deploy/build-venv.sh                     # or: sh deploy/build-venv.sh /other/venv
#
# Why the system's Python: the venv's interpreter is a link to the Python it was made
# from.  A Python under a private home (pyenv under /root, mode 0700) cannot be run by the
# user ticketd, so `ticketd serve` would not start, and Postfix's pipe (user=ticketd) would
# fail every delivery.  PYTHON=/path/to/python3.11 picks another interpreter, which must be
# as reachable.
set -eu

python="${PYTHON:-/usr/bin/python3}"
venv="${1:-/opt/ticketd/.venv}"
user="${TICKETD_USER:-ticketd}"
source_dir="$(cd "$(dirname "$0")/.." && pwd)"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "build-venv: $python is older than Python 3.11" >&2; exit 1; }
"$python" -m venv "$venv" \
    || { echo "build-venv: no venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$venv/bin/pip" install --quiet "$source_dir"
chmod -R go+rX "$venv"

# The proof: the service user runs the command (as the pipe and the unit will).
if ! id "$user" >/dev/null 2>&1; then
    echo "build-venv: built $venv; user $user does not exist yet, so it was not tried" >&2
    exit 0
fi
if ! runuser -u "$user" -- "$venv/bin/ticketd" --version >/dev/null; then
    echo "build-venv: user $user cannot run $venv/bin/ticketd: every folder on the way to" \
        "it and to its interpreter ($(readlink -f "$venv/bin/python")) must be" \
        "searchable (x) by $user" >&2
    exit 1
fi
echo "build-venv: $venv/bin/ticketd runs as $user: $("$venv/bin/ticketd" --version)"
