"""What every doctor check is made of (Check) and the helpers the per-mode modules share."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from kpctl.model.doctor import Finding, NodeState
from kpctl.model.ipvs import VirtualService

# typing.Union, not `|`: evaluated at import time, and the code runs on Python 3.9 too.
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007


@dataclass(frozen=True)
class Check:
    """A named check: ``needs`` are the NodeState pieces it reads; ``modes`` the kube-proxy modes
    it is about (empty: every mode). A check for another mode than the active one does not run,
    so a healthy node of any mode gives no finding."""

    id: str
    severity: str
    title: str
    needs: tuple[str, ...]
    run: Callable[[NodeState], list[Finding]]
    modes: tuple[str, ...] = ()


def ip_of(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        return None


def ipvs_services(node: NodeState) -> tuple[VirtualService, ...]:
    """The address-based IPVS services (fwmark services have no address)."""
    return tuple(s for s in (node.ipvs.services if node.ipvs else ()) if not s.fwmark)


def sysctl_check(check_id: str, name: str, want: str, severity: str, why: str) -> Callable[[NodeState], list[Finding]]:
    def run(node: NodeState) -> list[Finding]:
        value = node.sysctl(name)
        if value is None or value == want:
            return []
        return [Finding(check_id, severity, name, f"{name} = {value} (kube-proxy expects {want})", why,
                        f"sysctl -w {name}={want}")]
    return run
