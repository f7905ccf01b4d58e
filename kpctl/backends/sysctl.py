"""Read sysctls from /proc/sys (or from a snapshot's ``sysctls`` section)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

# What `kpctl doctor` looks at; `snapshot save` may store these too.
DOCTOR_SYSCTLS: tuple[str, ...] = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.vs.conntrack",
    "net.ipv4.vs.expire_nodest_conn",
    "net.ipv4.vs.expire_quiescent_template",
    "net.ipv4.vs.conn_reuse_mode",
    "net.ipv4.conf.all.arp_ignore",
    "net.ipv4.conf.all.arp_announce",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",  # exists only while br_netfilter is loaded
    "net.netfilter.nf_conntrack_count",
    "net.netfilter.nf_conntrack_max",
)


def sysctl_path(name: str, root: str = "/proc/sys") -> str:
    # Interface names may hold dots (eth0.100); sysctl(8) writes them with '/' then.
    return os.path.join(root, *name.split("."))


def read_sysctls(names: Iterable[str], root: str = "/proc/sys") -> dict[str, str]:
    """The values of ``names`` that exist here (a missing key means the kernel lacks it)."""
    values: dict[str, str] = {}
    for name in names:
        try:
            with open(sysctl_path(name, root), encoding="ascii", errors="replace") as handle:
                values[name] = " ".join(handle.read().split())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return values


def snapshot_sysctls(section: Any) -> dict[str, str]:
    if not isinstance(section, dict):
        return {}
    return {str(k): str(v) for k, v in section.items()}
