"""What every doctor check is made of (Check) and the helpers the per-mode modules share."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from kpctl.core.address import pack_address_or_none
from kpctl.model.doctor import Finding, NodeState

if TYPE_CHECKING:  # the mode models are imported by the nodes that have them (kpctl.core.snapshot_view)
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


def address_key(text: str | None) -> bytes | None:
    """An address (of ADDR/LEN: the address) as packed bytes, what checks compare addresses by,
    or None for no address (no ipaddress object per address: a node has tens of thousands)."""
    return pack_address_or_none(text.split("/")[0]) if text else None


def address_of(key: bytes) -> IPAddress:
    """The address an :func:`address_key` stands for, to show or to classify."""
    return ipaddress.ip_address(key)


def is_loopback(key: bytes) -> bool:
    """``address_of(key).is_loopback``, made only for the keys that can be (127.x, or IPv6 from 0)."""
    return key[0] in (0, 127) and address_of(key).is_loopback


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
