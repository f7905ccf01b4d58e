#!/usr/bin/env bash
# The kpctl that the benchmarks time: this checkout installed into .venv-bench the way an operator
# installs it (a wheel, byte-compiled by pip), not the development venv's editable install, whose
# import hook costs every Python start of that venv (~13 ms on the host, far more in the VM).
# Usage: bash bench/install.sh   (needs .venv from scripts/setup.sh for the interpreter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.venv-bench
.venv/bin/python -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check . 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/kpctl" --version >/dev/null || { echo "bench: the wheel install in $VENV does not run" >&2; exit 1; }
