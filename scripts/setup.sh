#!/usr/bin/env bash
# Install everything the README's two commands need, on Debian 12 as root:
#   Debian packages (kernel tools, and for the VM tier QEMU + the stock kernel + busybox),
#   then .venv (python3 -m venv) with kpctl editable, its test extras and virtme-ng;
#   with --pythons also .venv-3.X for every other CPython pyproject.toml declares (found by
#   tests/pythons.py under pyenv or on PATH; a declared one that is missing fails setup).
# Idempotent: apt is skipped when every package is present, pip when pyproject.toml is
# unchanged since the last successful run. Quiet on success, loud on failure.
#
# Usage: scripts/setup.sh [--no-vm] [--pythons]   (--no-vm: skip what only the VM tier needs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
WANT_VM=1
WANT_PYTHONS=0
for arg in "$@"; do
    case "$arg" in
        --no-vm) WANT_VM=0 ;;
        --pythons) WANT_PYTHONS=1 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "setup: unknown option $arg" >&2; exit 2 ;;
    esac
done

LOG=$(mktemp /tmp/kpctl-setup.XXXXXX.log)
trap 'rm -f "$LOG"' EXIT

fail() {
    echo "setup: FAILED: $*" >&2
    if [ -s "$LOG" ]; then
        echo "---- last lines of the setup log ----" >&2
        tail -n 80 "$LOG" >&2
    fi
    exit 1
}

# Run a command with its output kept in the log (shown only if something fails).
quietly() {
    "$@" >>"$LOG" 2>&1 || fail "$* (exit $?)"
}

# ---- Debian packages -------------------------------------------------------------
# python3-venv: ensurepip for `python3 -m venv`. iproute2 (ip netns), ipset, iptables,
# nftables, conntrack, socat, procps (sysctl), util-linux (unshare, nsenter), kmod
# (modprobe): the netns tier and the tools inside the VM. netbase: /etc/services and
# /etc/protocols, where ipset(8) and kpctl look up port names (tcp:ssh). ipvsadm: the reference tool the
# VM tests compare against. zsh, fish: the real-shell completion tests. pipx: the
# packaging test installs the wheel with it. qemu-system-x86 + linux-image-amd64 (a kernel with IPVS and
# dummy links as modules) + busybox-static (virtme-ng packs it in the initramfs that
# loads the 9p/virtio modules of the stock kernel): the VM tier.
PACKAGES=(python3 python3-venv ca-certificates netbase iproute2 ipset iptables nftables conntrack socat
          procps util-linux kmod ipvsadm zsh fish pipx)
if [ "$WANT_VM" = 1 ]; then
    PACKAGES+=(qemu-system-x86 linux-image-amd64 busybox-static)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing+=("$pkg") ;;
    esac
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || fail "packages missing (${missing[*]}) and not root to install them"
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update
    quietly apt-get install -y --no-install-recommends "${missing[@]}"
fi
if [ "$WANT_VM" = 1 ]; then
    compgen -G "/boot/vmlinuz-*" >/dev/null || fail "no /boot/vmlinuz-* after installing linux-image-amd64"
fi

# ---- The virtualenv -----------------------------------------------------------------
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
    || fail "$PYTHON is $("$PYTHON" -V 2>&1); kpctl needs Python >= 3.9"

VENV=$ROOT/.venv
STAMP=$VENV/.kpctl-setup
want_stamp="$(sha256sum pyproject.toml | cut -d' ' -f1) vm=$WANT_VM"

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}
if ! venv_ok; then
    rm -rf "$VENV"
    quietly "$PYTHON" -m venv "$VENV"
    rm -f "$STAMP"
fi

have_stamp=$(cat "$STAMP" 2>/dev/null || true)
# A stamp from a run with the VM extras also satisfies a --no-vm run.
if [ "$have_stamp" != "$want_stamp" ] && [ "$have_stamp" != "${want_stamp% vm=0} vm=1" ]; then
    extras=()
    [ "$WANT_VM" = 1 ] && extras+=(virtme-ng)
    quietly "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e ".[test]" "${extras[@]}"
    echo "$want_stamp" >"$STAMP"
fi

# Cheap checks that what we promise is really there (catches a half-broken .venv).
"$VENV/bin/python" -c 'import kpctl, pytest' >>"$LOG" 2>&1 || { rm -f "$STAMP"; fail "kpctl or pytest not importable from .venv (rerun this script)"; }
[ -x "$VENV/bin/kpctl" ] || { rm -f "$STAMP"; fail ".venv/bin/kpctl missing (rerun this script)"; }
if [ "$WANT_VM" = 1 ]; then
    [ -x "$VENV/bin/vng" ] && [ -x "$VENV/bin/virtme-run" ] \
        || { rm -f "$STAMP"; fail "virtme-ng (vng, virtme-run) missing from .venv (rerun this script)"; }
fi

# ---- One venv per other declared Python (--pythons) -------------------------------------
if [ "$WANT_PYTHONS" = 1 ]; then
    main_version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    found=$("$VENV/bin/python" tests/pythons.py 2>>"$LOG") || fail "a declared Python is missing (see tests/pythons.py)"
    while read -r version python; do
        [ "$version" = "$main_version" ] && continue
        venv=$ROOT/.venv-$version
        stamp=$venv/.kpctl-setup
        want="$(sha256sum pyproject.toml | cut -d' ' -f1) $python"
        if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; }; then
            rm -rf "$venv"
            quietly "$python" -m venv "$venv"
        fi
        if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
            quietly "$venv/bin/python" -m pip install --disable-pip-version-check -q -e ".[test]"
            echo "$want" >"$stamp"
        fi
        "$venv/bin/python" -c 'import kpctl, pytest' >>"$LOG" 2>&1 \
            || { rm -f "$stamp"; fail "kpctl or pytest not importable from $venv (rerun this script)"; }
    done <<<"$found"
fi
exit 0
