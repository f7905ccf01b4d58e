"""Network links and their addresses, and the VIPs kube-proxy binds on kube-ipvs0."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

VIP_DEVICE = "kube-ipvs0"


@dataclass(frozen=True)
class Link:
    """One link as the snapshot section ``links`` stores it.

    ``state`` is the administrative state, ``UP`` or ``DOWN`` (kube-proxy leaves
    kube-ipvs0 DOWN; its addresses still get local routes).  ``addresses`` are
    ``ADDR/PREFIX`` strings.
    """

    name: str
    kind: str = ""  # dummy, veth, loopback, … ("" when the kernel names none)
    state: str = "DOWN"
    addresses: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Link:
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind") or ""),
            state=str(data.get("state") or "DOWN").upper(),
            addresses=tuple(str(a) for a in data.get("addresses", ())),
        )


@dataclass(frozen=True)
class Vip:
    """An address bound on the VIP device, with what on the node refers to it."""

    address: str  # without prefix length
    prefixlen: int
    dev: str
    services: tuple[str, ...] = ()  # IPVS services (ServiceKey text) on this address
    ipset_entries: tuple[str, ...] = ()  # "SET ELEMENT" for members naming this address

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "prefixlen": self.prefixlen,
            "dev": self.dev,
            "services": list(self.services),
            "ipset_entries": list(self.ipset_entries),
        }
