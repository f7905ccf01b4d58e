"""What the mode readers share: what a chain dispatches to, which service addresses are asked.
(Their one spelling of addresses is kpctl.core.address.canonical_address.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from kpctl.model.services import ServiceEndpoint

# Whether a service address (address, port, protocol) is asked for; None: all are.
Wanted = Optional[Callable[[str, int, str], bool]]


@dataclass(frozen=True)
class Dispatch:
    """Where a service chain (iptables KUBE-SVC/EXT/FW/SVL, nftables service-/external-/local-)
    sends new connections, and what it does on the way."""

    endpoints: tuple[ServiceEndpoint, ...]
    policy: str | None
    masquerade: str | None
    affinity: int | None
    verdict: str
