#!/usr/bin/env bash
# A virtual environment with asyncresolve (editable) and its development extras, without the
# lab's apt peers (tools/install.sh does both). Run by tools/install.sh, tools/demo.sh and .ci/run.
#   PYTHON=python3.13 VENV=.venv-3.13 bash tools/venv.sh     another interpreter, another venv
#   PIP_CONSTRAINT=.ci/minimum-versions.txt ...                pins (pip reads it from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[dev]'
# Wheels for tests/test_install.py, which builds a fresh venv offline (tests never reach PyPI).
"$venv/bin/python" -m pip wheel -q -w .wheelhouse 'setuptools>=77' pytest . >/dev/null
echo "installed in $venv: $("$venv/bin/python" -c 'import sys, asyncresolve; print("asyncresolve", asyncresolve.__version__, "on Python", sys.version.split()[0])')"
