#!/usr/bin/env bash
# kpctl benchmarks against ipvsadm, ipset and iptables-restore: bash bench/run.sh [--host-only|--vm-only|--scale]
# Installs what is needed with scripts/setup.sh, runs the host benchmarks inside a fresh network
# namespace (unshare -n: the host's own ipsets and rules are never touched), then the VM ones in one
# VM boot. Needs root. Environment: BENCH_RUNS (default 5), BENCH_HEAVY_RUNS (3; 10k IPVS cases).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
host=1 vm=1 scale=0
case "${1:-}" in --host-only) vm=0 ;; --vm-only) host=0 ;; --scale) host=0 vm=0 scale=1 ;; "") ;; *) sed -n '2,6p' "$0"; exit 2 ;; esac
# --scale: every read command on generated 1k/10k-service nodes of every mode (bench/scale.py).
if [ "$vm" = 1 ]; then bash scripts/setup.sh; else bash scripts/setup.sh --no-vm; fi
bash bench/install.sh  # the timed kpctl: a wheel install of this checkout in .venv-bench (byte-compiled by pip)
echo "== kpctl benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$host" = 1 ] && unshare --net -- .venv/bin/python bench/host.py
[ "$scale" = 1 ] && unshare --net -- .venv/bin/python bench/scale.py
[ "$vm" = 1 ] && bash bench/vm.sh
exit 0
