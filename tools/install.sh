#!/usr/bin/env bash
# One-command set-up: the lab's real peers from Debian (when root and apt exists), then a
# virtual environment in .venv with asyncresolve and its development extras.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="nsd unbound knot-dnsutils dnsutils util-linux iproute2 dnsperf redis-server dnsdist"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $peers >/dev/null
elif ! command -v unbound >/dev/null 2>&1 || ! command -v nsd >/dev/null 2>&1; then
    echo "note: install the lab's peers for the full test suite: apt-get install $peers" >&2
fi
# The virtual environment (.venv, or $VENV with $PYTHON): tools/venv.sh.
bash tools/venv.sh
# tests/run.sh runs this script until it has run once (tools/demo.sh makes .venv without the peers).
touch "${VENV:-.venv}/.peers-checked"
