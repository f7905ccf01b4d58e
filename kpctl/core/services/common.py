"""What the mode readers share: one spelling of addresses, and what a chain dispatches to."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kpctl.model.services import ServiceEndpoint


def canonical_address(address: Any) -> str:
    """IPv6 compressed as ipaddress prints it; dotted IPv4 as it is (it has one spelling, and
    ipaddress costs ~20 µs a call, which a 10,000-service node pays 70,000 times)."""
    text = str(address)
    if ":" not in text:
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


@dataclass(frozen=True)
class Dispatch:
    """Where a service chain (iptables KUBE-SVC/EXT/FW/SVL, nftables service-/external-/local-)
    sends new connections, and what it does on the way."""

    endpoints: tuple[ServiceEndpoint, ...]
    policy: str | None
    masquerade: str | None
    affinity: int | None
    verdict: str
