#!/usr/bin/env bash
# VM-side benchmarks in ONE VM boot (virtme-ng, the stock Debian kernel with IPVS, software
# emulation, booted like scripts/vm-tests.sh): bench/vm_bench.py inside, output on stdout and
# in $KPCTL_BENCH_RESULTS/vm-bench.log (default ./vm-results).
# Usage: bash bench/vm.sh [startup] [restore] [list] [apply] [proc] [conns]      (default: all)
# Environment: BENCH_RUNS (5), BENCH_HEAVY_RUNS (3, the 10k cases), BENCH_CONNS (50000), BENCH_IPVS_BIG/SMALL (10000/1000
# services × 5 servers), BENCH_VM_FILES=share (run the tools from the host's 9p root, not from copies
# in the VM's memory: see bench/vm_local.sh), BENCH_PROGRESS=1 (a line per timed run), BENCH_FLOOR=0 (no `python -c pass`
# line at the small table), KPCTL_VM_KERNEL, KPCTL_VM_CPUS/MEMORY.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV_BIN=$ROOT/.venv/bin
[ -x "$VENV_BIN/vng" ] || { echo "bench: $VENV_BIN/vng missing: run scripts/setup.sh" >&2; exit 1; }
export PATH=$VENV_BIN:$PATH
KERNEL=${KPCTL_VM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
RESULTS=${KPCTL_BENCH_RESULTS:-$ROOT/vm-results}
mkdir -p "$RESULTS"; RESULTS=$(cd "$RESULTS" && pwd)
LOG=$RESULTS/vm-bench.log STATUS=$RESULTS/vm-bench.status INSIDE=$RESULTS/vm-bench-inside.sh
rm -f "$LOG" "$STATUS"
bash bench/install.sh  # the timed kpctl: a wheel install in .venv-bench, made here (the VM's root is read-only)
args=""; for a in "$@"; do args+=" $(printf '%q' "$a")"; done
cat >"$INSIDE" <<EOF2
#!/bin/bash
cd $(printf '%q' "$ROOT") || exit 90
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BENCH_RUNS=${BENCH_RUNS:-5} BENCH_HEAVY_RUNS=${BENCH_HEAVY_RUNS:-3} BENCH_PROGRESS=${BENCH_PROGRESS:-} BENCH_IPVS_BIG=${BENCH_IPVS_BIG:-10000} BENCH_IPVS_SMALL=${BENCH_IPVS_SMALL:-1000} BENCH_FLOOR=${BENCH_FLOOR:-1}
export PATH=$(printf '%q' "$VENV_BIN"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
modprobe -a ip_vs ip_vs_rr || { echo 91 > $(printf '%q' "$STATUS"); exit 91; }
if [ "${BENCH_VM_FILES:-local}" = local ]; then
    . bench/vm_local.sh && bench_local_copy $(printf '%q' "$ROOT") || { echo 92 > $(printf '%q' "$STATUS"); exit 92; }
fi
python bench/vm_bench.py$args 2>&1 | tee $(printf '%q' "$LOG")
echo "\${PIPESTATUS[0]}" > $(printf '%q' "$STATUS"); sync
EOF2
chmod +x "$INSIDE"
echo "bench: booting $(basename "$KERNEL") (qemu TCG); log in $LOG"
timeout --kill-after=30 "${KPCTL_VM_TIMEOUT:-3600}" vng --run "$KERNEL" --disable-kvm \
    --memory "${KPCTL_VM_MEMORY:-2G}" --cpus "${KPCTL_VM_CPUS:-2}" --rwdir "$RESULTS" --exec "bash $INSIDE" </dev/null >/dev/null
rc=$(cat "$STATUS" 2>/dev/null || echo 1)
[ -s "$LOG" ] && cat "$LOG"
[ "$rc" = 0 ] || echo "bench: the VM run failed (status $rc)" >&2
exit "$rc"
