#!/usr/bin/env bash
# Build dist/kpctl.pyz: kpctl as one file that runs as `python3 kpctl.pyz …` on CPython 3.9-3.13
# with nothing installed (click, pyroute2, rich, tabulate and PyYAML's pure-Python part inside).
#
# The dependencies are taken from a build venv on the OLDEST declared Python (build/pyz-3.X,
# made here from PyPI on the first run), so the releases vendored are ones that still support
# it; scripts/build_pyz.py copies them from the installed files. Network only at build time.
#
# Usage: scripts/build-pyz.sh [OUTPUT]     (default: dist/kpctl.pyz)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUTPUT=${1:-$ROOT/dist/kpctl.pyz}

read -r version python < <(python3 tests/pythons.py | head -n 1) || true
[ -n "${python:-}" ] || { echo "build-pyz: the oldest declared Python was not found (python3 tests/pythons.py)" >&2; exit 1; }

VENV=$ROOT/build/pyz-$version
STAMP=$VENV/.kpctl-build
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $python"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    # kpctl itself (non-editable) for its dependency metadata, and packaging to read it.
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q . packaging
    echo "$want" >"$STAMP"
fi
rm -rf build/lib build/bdist.* 2>/dev/null || true  # setuptools' leftovers from the install above
"$VENV/bin/python" scripts/build_pyz.py "$ROOT" "$OUTPUT"
