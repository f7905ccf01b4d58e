#!/usr/bin/env bash
# The main job (the README's "Run the main job" command): install, then let kpctl explain the
# bundled snapshot of a kube-proxy IPVS node (the node of the seed article): which real server
# a connection to the `kubernetes` service 10.254.0.1:443 reaches, and the IPVS table behind it.
# Needs no root and no IPVS in the kernel: every read command works on a --snapshot file.
#
# Usage: scripts/demo.sh [SNAPSHOT]        (default: examples/seed-ipvs-node.json)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
SNAPSHOT=${1:-examples/seed-ipvs-node.json}

bash scripts/setup.sh --no-vm

[ -f "$SNAPSHOT" ] || { echo "demo: FAILED: snapshot $SNAPSHOT not found" >&2; exit 1; }
KPCTL=.venv/bin/kpctl

has_command() {
    "$KPCTL" "$@" --help >/dev/null 2>&1
}

show() {
    echo
    echo "\$ kpctl $*"
    "$KPCTL" "$@"
}

if has_command trace; then
    show --snapshot "$SNAPSHOT" trace 10.254.0.1:443
fi
show --snapshot "$SNAPSHOT" ipvs list -o ipvsadm
show --snapshot "$SNAPSHOT" ipvs list
