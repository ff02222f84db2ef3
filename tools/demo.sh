#!/usr/bin/env bash
# The offline demo: `asyncresolve demo` against an embedded lab on loopback. Creates .venv
# (tools/install.sh --no-peers) the first time. Arguments go to `asyncresolve demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/asyncresolve ] || bash tools/install.sh --no-peers
exec .venv/bin/asyncresolve demo "$@"
