"""What a node's data plane implements for each Service address, whatever kube-proxy's mode.

One :class:`NodeService` per (address, port, protocol) that the node's rules or IPVS table
handle, with the endpoints a new connection can reach and the chance of each; built by
kpctl.core.services from IPVS, iptables or nftables state, printed by `kpctl services`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# What a Service address is, as far as the node's state shows it.
CLUSTER_IP, NODE_PORT, EXTERNAL_IP, LOAD_BALANCER, EXTERNAL = (
    "clusterIP", "nodePort", "externalIP", "loadBalancer", "external")
ANY_LOCAL = "*"  # the address of a node port served on every local address


class ServiceEndpoint(NamedTuple):
    """One endpoint a new connection to the service can be sent to.  A NamedTuple: a 10,000-service
    node has 30,000-50,000, and a frozen dataclass made each in 1.2 us."""

    address: str
    port: int
    chance: float  # share of new connections (weight share in IPVS mode), 0..1
    weight: int | None = None  # IPVS only
    drift: str | None = None  # "stale": the API does not list it (set by the k8s join)

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port, "chance": round(self.chance, 6),
                "weight": self.weight, "drift": self.drift}


class NodeService(NamedTuple):
    """One Service address:port/protocol as the node implements it (a NamedTuple, as its
    endpoints: a frozen dataclass of these fields took 3.3 us to make, 10,000 times a node)."""

    mode: str  # ipvs|iptables|nftables
    address: str  # ANY_LOCAL for node ports on every local address
    port: int
    protocol: str  # tcp|udp|sctp
    family: str  # inet|inet6
    kind: str  # CLUSTER_IP, NODE_PORT, EXTERNAL_IP, LOAD_BALANCER or EXTERNAL (one of the last two)
    endpoints: tuple[ServiceEndpoint, ...] = ()
    verdict: str = "dnat"  # dnat|reject|drop: what a new connection gets (reject/drop: no endpoints)
    scheduler: str | None = None  # IPVS mode; the iptables/nftables modes pick at random
    affinity: int | None = None  # session affinity timeout, seconds
    masquerade: str | None = None  # which sources get SNAT: "all", "src !CIDR", "src-type LOCAL", "hairpin"
    policy: str | None = None  # Local|Cluster where the rules show it
    name: str | None = None  # namespace/name:port, from rule comments/chain names or the API
    missing: tuple[str, ...] = ()  # ready endpoints the API lists and the node lacks (k8s join)

    @property
    def address_text(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}/{self.protocol}"

    @property
    def drift(self) -> bool:
        return bool(self.missing) or any(e.drift for e in self.endpoints)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.address_text, "address": self.address, "port": self.port,
                "protocol": self.protocol, "family": self.family, "kind": self.kind, "mode": self.mode,
                "name": self.name, "verdict": self.verdict, "scheduler": self.scheduler,
                "affinity_timeout": self.affinity, "masquerade": self.masquerade, "policy": self.policy,
                "endpoints": [e.to_dict() for e in self.endpoints], "missing_endpoints": list(self.missing)}


@dataclass(frozen=True)
class ServicesReport:
    """Every service read, with the mode report (kpctl.core.modes.ModeReport.to_dict())."""

    modes: dict[str, Any]
    read: tuple[str, ...]  # the modes whose state was read, active first
    services: tuple[NodeService, ...] = ()
    k8s_source: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def coexisting(self) -> bool:
        return len(self.read) > 1

    @property
    def drift(self) -> bool:
        return any(s.drift for s in self.services)

    def to_dict(self) -> dict[str, Any]:
        return {"active_mode": self.modes.get("active"), "reason": self.modes.get("reason"),
                "read": list(self.read), "coexisting": self.coexisting,
                "modes_present": self.modes.get("present", []), "k8s": self.k8s_source,
                "drift": self.drift if self.k8s_source is not None else None,
                "notes": list(self.notes), "services": [s.to_dict() for s in self.services]}
