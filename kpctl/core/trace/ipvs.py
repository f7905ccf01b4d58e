"""The IPVS step (ip_vs_in at LOCAL_IN, or LOCAL_OUT for the node's own packets).

Service lookup as ip_vs_service_find: a firewall-mark service for the packet's mark
first, then protocol/address/port, then a persistent port-zero service on that address.
Then the scheduler: every real server that can be picked, with the chance it is picked
for a new connection, and the DNAT the NAT (masq) forwarder applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpctl.errors import InvalidInput
from kpctl.model.trace import Packet

if TYPE_CHECKING:  # the IPVS model is imported where a node has IPVS services (every mode's trace asks)
    from kpctl.model.ipvs import RealServer, VirtualService

HASH_SCHEDULERS = {"sh": "a hash of the source address", "dh": "a hash of the destination address",
                   "mh": "a Maglev hash of the source address", "lblc": "the destination address",
                   "lblcr": "the destination address"}


@dataclass(frozen=True)
class Candidate:
    server: RealServer
    probability: float | None  # share of new connections (None: unknown)
    exact: bool
    how: str  # why this chance

    @property
    def endpoint(self) -> str:
        host = f"[{self.server.address}]" if ":" in self.server.address else self.server.address
        return f"{host}:{self.server.port}"


@dataclass(frozen=True)
class IpvsDecision:
    service: VirtualService | None
    how_found: str
    candidates: tuple[Candidate, ...] = ()
    refusal: str | None = None  # why no server can be picked (ICMP port unreachable)
    notes: tuple[str, ...] = ()


def find_service(services: tuple[VirtualService, ...], packet: Packet) -> tuple[VirtualService | None, str]:
    if packet.mark:
        for svc in services:
            if svc.fwmark and svc.fwmark == packet.mark and svc.family == packet.family:
                return svc, f"firewall-mark service fwmark:{svc.fwmark} (packet mark {packet.mark:#x})"
    for svc in services:
        if (not svc.fwmark and svc.family == packet.family and svc.protocol == packet.protocol
                and svc.address == packet.dst and svc.port == packet.dport):
            return svc, f"service {svc.key} ({svc.scheduler})"
    for svc in services:
        if (not svc.fwmark and svc.port == 0 and svc.persistent and svc.family == packet.family
                and svc.protocol == packet.protocol and svc.address == packet.dst):
            return svc, f"persistent port-zero service {svc.address}:0/{svc.protocol}"
    marks = sorted({s.fwmark for s in services if s.fwmark})
    hint = f"; fwmark services exist for {', '.join(hex(m) for m in marks)}" if marks else ""
    return None, f"no IPVS service for {packet.endpoint('dst')}/{packet.protocol}" + (
        f" with mark {packet.mark:#x}" if packet.mark else "") + hint


def find_service_row(rows: list[dict[str, Any]], packet: Packet) -> tuple[VirtualService | None, str]:
    """:func:`find_service` over the snapshot's service rows (``VirtualService.to_dict`` form):
    the same three passes and words, building only the service found (a node has thousands)."""
    from kpctl.model.ipvs import SVC_F_PERSISTENT

    family, protocol, dst = packet.family, packet.protocol, packet.dst
    found: dict[str, Any] | None = None
    if packet.mark:
        for row in rows:
            fwmark = row.get("fwmark", 0)
            if fwmark and fwmark == packet.mark and row.get("family", "inet") == family:
                svc = build_service(row)
                return svc, f"firewall-mark service fwmark:{svc.fwmark} (packet mark {packet.mark:#x})"
    for row in rows:
        if (row.get("address") == dst and not row.get("fwmark", 0) and row.get("family", "inet") == family
                and row.get("protocol", "tcp") == protocol and row.get("port", 0) == packet.dport):
            svc = build_service(row)
            return svc, f"service {svc.key} ({svc.scheduler})"
    for row in rows:
        if (row.get("address") == dst and not row.get("fwmark", 0) and row.get("port", 0) == 0
                and row.get("flags", 0) & SVC_F_PERSISTENT and row.get("family", "inet") == family
                and row.get("protocol", "tcp") == protocol):
            found = row
            break
    if found is not None:
        svc = build_service(found)
        return svc, f"persistent port-zero service {svc.address}:0/{svc.protocol}"
    marks = sorted({fwmark for row in rows if (fwmark := row.get("fwmark", 0))})
    hint = f"; fwmark services exist for {', '.join(hex(m) for m in marks)}" if marks else ""
    return None, f"no IPVS service for {packet.endpoint('dst')}/{packet.protocol}" + (
        f" with mark {packet.mark:#x}" if packet.mark else "") + hint


def build_service(row: Any) -> VirtualService:
    """One snapshot service row as a VirtualService; a malformed row is the snapshot's error (exit 2)."""
    from kpctl.model.ipvs import VirtualService

    try:
        return VirtualService.from_dict(row)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"snapshot: bad ipvs services: {exc}") from None


def _plain_row(row: Any) -> bool:
    """A dict whose fields the row scan compares have their types (else the row is judged by building it)."""
    return (type(row) is dict and type(row.get("address", "")) is str and type(row.get("port", 0)) is int
            and type(row.get("fwmark", 0)) is int and type(row.get("flags", 0)) is int
            and type(row.get("protocol", "tcp")) is str and type(row.get("family", "inet")) is str)


def service_rows(ipvs: Any) -> list[dict[str, Any]] | None:
    """The snapshot's ``ipvs.services`` rows when they are all plain, well-typed dicts (else None: build
    them all, so that a malformed row is reported whichever service the packet hits)."""
    rows = ipvs.get("services", [])
    if type(rows) is list and all(_plain_row(row) for row in rows):
        return rows
    return None


def _eligible(server: RealServer) -> bool:
    if server.weight <= 0:
        return False
    return not (server.upper_threshold and server.active_conns + server.inactive_conns >= server.upper_threshold)


def schedule(service: VirtualService) -> IpvsDecision:
    """The candidates of ``service``'s scheduler for a new connection."""
    eligible = [s for s in service.servers if _eligible(s)]
    notes: list[str] = []
    if service.persistent:
        notes.append(f"persistent service: a client (netmask {_mask(service)}) sticks to its server for "
                     f"{service.timeout}s; the first connection is scheduled as shown")
    if not service.servers:
        return IpvsDecision(service, "", refusal=f"{service.key} has no real servers", notes=tuple(notes))
    if not eligible:
        why = "weight 0" if all(s.weight <= 0 for s in service.servers) else "weight 0 or over its upper threshold"
        return IpvsDecision(service, "", refusal=f"every real server of {service.key} has {why}",
                            notes=tuple(notes))
    scheduler = service.scheduler
    total = sum(s.weight for s in eligible)
    out: list[Candidate] = []
    if scheduler == "fo" or scheduler == "ovf":
        best = max(eligible, key=lambda s: s.weight)  # first of the highest weight, in table order
        first = next(s for s in eligible if s.weight == best.weight)
        exact = scheduler == "fo"
        how = ("fo: the first server with the highest weight" if exact else
               "ovf: the highest weight server until its active connections reach its weight")
        for server in eligible:
            out.append(Candidate(server, 1.0 if server is first else 0.0, exact, how))
        return IpvsDecision(service, "", tuple(c for c in out if c.probability), notes=tuple(notes))
    for server in eligible:
        if scheduler == "rr":
            out.append(Candidate(server, 1.0 / len(eligible), True,
                                 f"rr: one new connection in {len(eligible)}"))
        elif scheduler == "wrr":
            out.append(Candidate(server, server.weight / total, True,
                                 f"wrr: weight {server.weight} of {total}"))
        elif scheduler in HASH_SCHEDULERS:
            out.append(Candidate(server, server.weight / total, False,
                                 f"{scheduler}: decided by {HASH_SCHEDULERS[scheduler]}; share ≈ weight "
                                 f"{server.weight}/{total}"))
        elif scheduler in ("lc", "nq"):
            out.append(Candidate(server, 1.0 / len(eligible), False,
                                 f"{scheduler}: depends on live connection counts (≈ 1/{len(eligible)} when balanced; "
                                 f"now {server.active_conns} active, {server.inactive_conns} inactive)"))
        else:  # wlc, sed, twos and anything newer: weighted by live counts
            out.append(Candidate(server, server.weight / total, False,
                                 f"{scheduler}: depends on live connection counts (≈ weight {server.weight}/{total} "
                                 f"when balanced; now {server.active_conns} active, {server.inactive_conns} inactive)"))
    skipped = [s for s in service.servers if not _eligible(s)]
    if skipped:
        notes.append("never picked (weight 0 or over threshold): " + ", ".join(
            f"{s.address}:{s.port}" for s in skipped))
    return IpvsDecision(service, "", tuple(out), notes=tuple(notes))


def _mask(service: VirtualService) -> str:
    if service.family == "inet6":
        return f"/{service.netmask}"
    return ".".join(str((service.netmask >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def decide(services: tuple[VirtualService, ...] | list[dict[str, Any]], packet: Packet) -> IpvsDecision:
    """The IPVS decision for ``packet``: ``services`` as VirtualServices or as snapshot rows."""
    if isinstance(services, list):
        service, how = find_service_row(services, packet)
    else:
        service, how = find_service(services, packet)
    if service is None:
        return IpvsDecision(None, how)
    decision = schedule(service)
    return IpvsDecision(service, how, decision.candidates, decision.refusal, decision.notes)


def translate(packet: Packet, candidate: Candidate) -> Packet:
    """The packet after IPVS forwards it to ``candidate`` (masq rewrites dst; others keep it)."""
    if candidate.server.forward == "masq":
        return packet.with_(dst=candidate.server.address, dport=candidate.server.port)
    return packet
