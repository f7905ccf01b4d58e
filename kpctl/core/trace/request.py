"""From `kpctl trace SERVICE --from … --sport …` to the Packet the engine follows."""

from __future__ import annotations

from dataclasses import dataclass

from kpctl.core.address import parse_address, parse_service
from kpctl.core.snapshot_view import NodeView
from kpctl.errors import InvalidInput
from kpctl.model.trace import Packet

DEFAULT_SPORT = 43210  # an ephemeral port; only matters to rules that look at it


@dataclass(frozen=True)
class Origin:
    kind: str  # node | pod | external
    address: str | None = None

    def __str__(self) -> str:
        return self.kind if self.address is None else f"{self.kind}:{self.address}"


def parse_origin(text: str) -> Origin:
    """``node`` | ``pod:IP`` | ``external:IP``."""
    lowered = text.strip()
    if lowered.lower() == "node":
        return Origin("node")
    kind, sep, address = lowered.partition(":")
    if not sep or kind.lower() not in ("pod", "external"):
        raise InvalidInput(f"invalid --from {text!r}: use node, pod:IP or external:IP")
    normalised, _ = parse_address(address.strip("[]"), f"address in --from {text!r}:")
    return Origin(kind.lower(), normalised)


def build_packet(view: NodeView, service: str, origin: Origin, sport: int | None = None) -> Packet:
    """The first packet of a connection from ``origin`` to ``service``."""
    key = parse_service(service)
    if key.fwmark:
        raise InvalidInput(f"cannot trace {service!r}: a firewall mark is set by rules, not sent by a client",
                           "trace the ADDR:PORT whose packets the mark rules select")
    assert key.address is not None and key.protocol is not None
    port = sport if sport is not None else DEFAULT_SPORT
    if origin.kind == "node":
        src = view.source_for(key.address) or ("0.0.0.0" if key.family == "inet" else "::")
        return Packet(src, port, key.address, key.port, key.protocol, key.family)
    assert origin.address is not None
    family = "inet6" if ":" in origin.address else "inet"
    if family != key.family:
        raise InvalidInput(f"--from {origin} and service {service!r} are different address families")
    if view.is_local(origin.address):
        raise InvalidInput(f"--from {origin}: {origin.address} is an address of this node; use --from node")
    return Packet(origin.address, port, key.address, key.port, key.protocol, key.family,
                  iif=view.link_toward(origin.address))
