"""Enter a named network namespace for the whole process (like `ip -n NAME`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from kpctl.errors import InvalidInput, KpctlError, NotFound, PermissionDenied

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"


def enter_netns(name: str) -> None:
    """setns(2) into /run/netns/NAME; child programs (iptables-save…) inherit it."""
    if not name or "/" in name or name in (".", ".."):
        raise InvalidInput(f"invalid network namespace name {name!r}")
    path = os.path.join(NETNS_RUN_DIR, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {name!r} not found", f"no {path}; see `ip netns list`") from None
    except PermissionError:
        raise PermissionDenied(f"cannot open {path}") from None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            if err in (errno.EPERM, errno.EACCES):
                raise PermissionDenied(f"cannot enter network namespace {name!r}")
            raise KpctlError(f"cannot enter network namespace {name!r}: {os.strerror(err)}")
    finally:
        os.close(fd)
