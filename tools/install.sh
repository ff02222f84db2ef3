#!/usr/bin/env bash
# Set-up, run by tests/run.sh and tools/demo.sh the first time (and by .ci/run): the lab's real
# peers from Debian (when root and apt exists), then a virtual environment with asyncresolve and
# its development extras.
#   PYTHON=python3.13 VENV=.venv-3.13 bash tools/install.sh    another interpreter, another venv
#   PIP_CONSTRAINT=.ci/minimum-versions.txt ...                  pins (pip reads it from the environment)
#   bash tools/install.sh --no-peers                             the venv only (the demo needs no peers)
set -euo pipefail
cd "$(dirname "$0")/.."
peers="nsd unbound knot-dnsutils dnsutils util-linux"
if [ "${1:-}" != "--no-peers" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        missing=""
        for package in $peers; do
            dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
        done
        if [ -n "$missing" ]; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends $missing >/dev/null
        fi
    elif ! command -v unbound >/dev/null 2>&1 || ! command -v nsd >/dev/null 2>&1; then
        echo "note: install the lab's peers for the full test suite: apt-get install $peers" >&2
    fi
fi
python=${PYTHON:-python3}
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[dev]'
# Wheels for tests/test_install.py, which builds a fresh venv offline (tests never reach PyPI).
"$venv/bin/python" -m pip wheel -q -w .wheelhouse 'setuptools>=77' pytest . >/dev/null
# tests/run.sh installs again until the peers step has run once (the demo skips it)
[ "${1:-}" = "--no-peers" ] || touch "$venv/.peers-checked"
echo "installed in $venv: $("$venv/bin/python" -c 'import sys, asyncresolve; print("asyncresolve", asyncresolve.__version__, "on Python", sys.version.split()[0])')"
