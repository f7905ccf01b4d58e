"""A packet trace: the packet, the ordered steps it took, and where it ended (Batfish-like).

A trace can fork (iptables `statistic`, nftables `numgen`, the IPVS scheduler): every branch
is an :class:`Outcome` with its chance, its own steps after the common prefix, and its
disposition.  Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class Disposition(str, Enum):
    DELIVERED = "DELIVERED"  # reached a real server / endpoint
    DROPPED = "DROPPED"  # silently discarded (DROP rule or policy)
    REJECTED = "REJECTED"  # discarded with an answer (ICMP unreachable, TCP reset)
    TO_LOCAL_STACK = "TO_LOCAL_STACK"  # handed to a socket on the node itself
    NO_ROUTE = "NO_ROUTE"  # the routing decision found no route
    EXITS_NODE = "EXITS_NODE"  # forwarded out unchanged: nothing translated the service address


@dataclass(frozen=True)
class Packet:
    """The headers a trace follows (first packet of a connection)."""

    src: str
    sport: int
    dst: str
    dport: int
    protocol: str = "tcp"  # tcp|udp|sctp
    family: str = "inet"  # inet|inet6
    mark: int = 0
    iif: str | None = None  # input device (None for locally generated packets)
    oif: str | None = None  # output device once routed

    def endpoint(self, which: str) -> str:
        address, port = (self.src, self.sport) if which == "src" else (self.dst, self.dport)
        host = f"[{address}]" if ":" in address else address
        return f"{host}:{port}"

    def __str__(self) -> str:
        text = f"{self.endpoint('src')} → {self.endpoint('dst')}/{self.protocol}"
        if self.mark:
            text += f" mark {self.mark:#x}"
        return text

    def with_(self, **changes: Any) -> Packet:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src, "sport": self.sport, "dst": self.dst, "dport": self.dport,
            "protocol": self.protocol, "family": self.family, "mark": self.mark,
            "iif": self.iif, "oif": self.oif,
        }


@dataclass(frozen=True)
class TraceStep:
    """One thing that happened to the packet.

    ``stage`` says which machinery acted: iptables | nftables | routing | ipvs | conntrack | note.
    For rule steps ``table``/``chain``/``rule_number``/``rule`` name the rule and ``matched``
    and ``reason`` say whether it matched and why; ``action`` is what the step did
    (``jump KUBE-SERVICES``, ``ACCEPT``, ``DNAT → 10.0.0.1:80``…).
    """

    hook: str  # PREROUTING | INPUT | FORWARD | OUTPUT | POSTROUTING | ROUTING | LOCAL_IN | LOCAL_OUT
    stage: str
    reason: str
    table: str | None = None
    chain: str | None = None
    rule_number: int | None = None
    rule: str | None = None
    matched: bool | None = None
    action: str | None = None
    before: Packet | None = None
    after: Packet | None = None
    depth: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.before is not None and self.after is not None and self.before != self.after

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook, "stage": self.stage, "table": self.table, "chain": self.chain,
            "rule_number": self.rule_number, "rule": self.rule, "matched": self.matched,
            "reason": self.reason, "action": self.action,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "depth": self.depth, "details": dict(self.details),
        }


@dataclass(frozen=True)
class Outcome:
    """One branch of a trace: its chance, its steps after the common prefix, where it ended."""

    probability: float | None  # None when the choice depends on live state (connection counts…)
    disposition: Disposition
    reason: str
    steps: tuple[TraceStep, ...] = ()
    final: Packet | None = None  # the packet as it reaches its destination
    server: str | None = None  # "ADDR:PORT" of the real server / endpoint when DELIVERED
    masqueraded: bool = False
    chance_note: str = ""  # how the chance was found, or why it is not exact
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability, "chance_note": self.chance_note,
            "disposition": self.disposition.value, "reason": self.reason, "server": self.server,
            "masqueraded": self.masqueraded, "final": self.final.to_dict() if self.final else None,
            "notes": list(self.notes), "steps": [s.to_dict() for s in self.steps],
        }


def _common_prefix(branches: list[tuple[TraceStep, ...]]) -> int:
    if not branches:
        return 0
    length = min(len(b) for b in branches)
    for index in range(length):
        first = branches[0][index]
        if any(b[index] != first for b in branches[1:]):
            return index
    return length


@dataclass(frozen=True)
class Trace:
    """Everything `kpctl trace` found; ``steps`` is the prefix every outcome shares."""

    service: str
    origin: str  # node | pod:IP | external:IP
    packet: Packet
    mode: str  # the active kube-proxy mode (kpctl.core.modes): ipvs | iptables | nftables | userspace | none
    steps: tuple[TraceStep, ...]
    outcomes: tuple[Outcome, ...]
    notes: tuple[str, ...] = ()

    @classmethod
    def from_branches(cls, service: str, origin: str, packet: Packet, mode: str,
                      branches: list[tuple[tuple[TraceStep, ...], Outcome]],
                      notes: tuple[str, ...] = ()) -> Trace:
        """Split full per-branch step lists into the shared prefix and each outcome's own steps."""
        full = [steps for steps, _ in branches]
        prefix = _common_prefix(full) if len(full) > 1 else len(full[0]) if full else 0
        outcomes = tuple(replace(outcome, steps=steps[prefix:]) for steps, outcome in branches)
        return cls(service, origin, packet, mode, full[0][:prefix] if full else (), outcomes, notes)

    @property
    def disposition(self) -> Disposition:
        """DELIVERED only when every branch is; else the most likely non-delivered disposition."""
        failed = [o for o in self.outcomes if o.disposition is not Disposition.DELIVERED]
        if not failed:
            return Disposition.DELIVERED if self.outcomes else Disposition.DROPPED
        return max(failed, key=lambda o: o.probability or 0.0).disposition

    @property
    def delivered(self) -> bool:
        return bool(self.outcomes) and self.disposition is Disposition.DELIVERED

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "origin": self.origin, "packet": self.packet.to_dict(),
            "mode": self.mode, "disposition": self.disposition.value,
            "steps": [s.to_dict() for s in self.steps],
            "outcomes": [o.to_dict() for o in self.outcomes], "notes": list(self.notes),
        }
