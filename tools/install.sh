#!/usr/bin/env bash
# One-command set-up: the lab's real peers from Debian (when root and apt exists), then a
# virtual environment in .venv with asyncresolve and its development extras.
set -euo pipefail
cd "$(dirname "$0")/.."
peers="nsd unbound knot-dnsutils dnsutils util-linux redis-server"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $peers >/dev/null
elif ! command -v unbound >/dev/null 2>&1 || ! command -v nsd >/dev/null 2>&1; then
    echo "note: install the lab's peers for the full test suite: apt-get install $peers" >&2
fi
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "installed: $(.venv/bin/python -c 'import asyncresolve; print("asyncresolve", asyncresolve.__version__)')"
