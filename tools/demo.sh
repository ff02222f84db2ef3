#!/usr/bin/env bash
# The offline demo: `asyncresolve demo` against an embedded lab on loopback. Creates .venv
# (tools/venv.sh) the first time. Arguments go to `asyncresolve demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/asyncresolve ] || bash tools/venv.sh
exec .venv/bin/asyncresolve demo "$@"
