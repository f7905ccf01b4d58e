"""What names a virtual service, in every mode: (family, protocol, address, port) or (family, fwmark).

IPVS keys its table by it, and the other modes' commands (`trace`, `services`) parse their target
into it: a module of its own, so they do not import the IPVS model to read an address.
"""

from __future__ import annotations

from typing import NamedTuple

PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "sctp")


class ServiceKey(NamedTuple):
    """What identifies a virtual service: (family, protocol, address, port) or (family, fwmark).
    (A tuple: tables are keyed by it, and a tuple hashes and compares in C.)"""

    family: str = "inet"
    protocol: str | None = "tcp"
    address: str | None = None
    port: int = 0
    fwmark: int = 0

    def __str__(self) -> str:
        if self.fwmark:
            return f"fwmark:{self.fwmark}" + ("/ipv6" if self.family == "inet6" else "")
        host = f"[{self.address}]" if self.family == "inet6" else str(self.address)
        return f"{host}:{self.port}/{self.protocol}"
