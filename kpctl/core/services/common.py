"""What the mode readers share: what a chain dispatches to.  (Their one spelling of addresses is
kpctl.core.address.canonical_address.)"""

from __future__ import annotations

from dataclasses import dataclass

from kpctl.model.services import ServiceEndpoint


@dataclass(frozen=True)
class Dispatch:
    """Where a service chain (iptables KUBE-SVC/EXT/FW/SVL, nftables service-/external-/local-)
    sends new connections, and what it does on the way."""

    endpoints: tuple[ServiceEndpoint, ...]
    policy: str | None
    masquerade: str | None
    affinity: int | None
    verdict: str
