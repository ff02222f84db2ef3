#!/usr/bin/env bash
# The test command. Installs what it needs the first time (tools/install.sh: the lab's peers
# and .venv), then runs pytest inside a private mount namespace whose /etc/resolv.conf points
# at loopback, so that no getaddrinfo made by a test can reach the machine's real nameserver.
# Arguments go to pytest; PYTHON=/path/to/venv/bin/python runs the suite with another venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then python=$PYTHON
else
    # First run on a fresh machine: install the peers and .venv (tools/install.sh) first.
    if [ "${ASYNCRESOLVE_IN_TEST_NAMESPACE:-}" != 1 ] && [ ! -e .venv/.peers-checked ]; then
        bash tools/install.sh
    fi
    python=$PWD/.venv/bin/python
fi
if [ "${ASYNCRESOLVE_IN_TEST_NAMESPACE:-}" = 1 ]; then
    exec "$python" -m pytest "$@"
fi
conf=$(mktemp /tmp/asyncresolve-resolv.XXXXXX)
trap 'rm -f "$conf"' EXIT
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$conf"
export ASYNCRESOLVE_IN_TEST_NAMESPACE=1 ASYNCRESOLVE_TEST_RESOLV_CONF="$conf"
inner='mount --bind "$ASYNCRESOLVE_TEST_RESOLV_CONF" /etc/resolv.conf && exec "$0" -m pytest "$@"'
if [ "$(id -u)" = 0 ]; then
    unshare --mount --propagation private sh -c "$inner" "$python" "$@"
else
    # Unprivileged: a user namespace gives the mount namespace (where the kernel allows it).
    unshare --user --map-root-user --mount sh -c "$inner" "$python" "$@"
fi
