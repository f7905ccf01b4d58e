"""Services of kube-proxy's IPVS mode: the IPVS table, told apart by kube-proxy's ipsets.

kube-proxy (pkg/proxy/ipvs/proxier.go) makes one virtual service per cluster IP, external IP,
load-balancer IP and node address × node port, and lists each in an ipset that its iptables
rules match: KUBE-CLUSTER-IP, KUBE-EXTERNAL-IP(-LOCAL), KUBE-LOAD-BALANCER(-LOCAL),
KUBE-NODE-PORT-TCP/UDP/SCTP-HASH and their -LOCAL- twins (externalTrafficPolicy Local).
Masquerade comes from the nat rules matching those sets and jumping to KUBE-MARK-MASQ.
A service without real servers is refused by IPVS (ICMP port unreachable): "reject".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from kpctl.core.address import canonical_address
from kpctl.core.services.common import Wanted
from kpctl.model.ipset import IPSet
from kpctl.model.iptables import Ruleset
from kpctl.model.ipvs import VirtualService
from kpctl.model.services import CLUSTER_IP, EXTERNAL_IP, LOAD_BALANCER, NODE_PORT, NodeService, ServiceEndpoint

MODE = "ipvs"
# (set, kind, Local policy), in the order kube-proxy's rules test them.
_ADDRESS_SETS: tuple[tuple[str, str, bool], ...] = (
    ("KUBE-CLUSTER-IP", CLUSTER_IP, False),
    ("KUBE-LOAD-BALANCER-LOCAL", LOAD_BALANCER, True), ("KUBE-LOAD-BALANCER", LOAD_BALANCER, False),
    ("KUBE-EXTERNAL-IP-LOCAL", EXTERNAL_IP, True), ("KUBE-EXTERNAL-IP", EXTERNAL_IP, False),
)
_NODE_PORT_SETS = {"tcp": "KUBE-NODE-PORT-TCP", "udp": "KUBE-NODE-PORT-UDP", "sctp": "KUBE-NODE-PORT-SCTP-HASH"}
_MASQ_CHAINS = ("KUBE-SERVICES", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-EXTERNAL-SERVICES")




def _members(ipset: IPSet | None) -> set[tuple[str | None, str | None, int | None]]:
    """(address, protocol, port) of every member; bitmap:port members have no address."""
    out: set[tuple[str | None, str | None, int | None]] = set()
    for entry in (ipset.members or ()) if ipset is not None else ():
        address = canonical_address(entry.ip) if entry.ip else None
        out.add((address, (entry.proto or "").lower() or None, entry.port))
    return out


def _masquerade_by_set(rulesets: Iterable[Ruleset]) -> dict[str, str]:
    """Set name → which sources get KUBE-MARK-MASQ ("all", "src !CIDR"; "hairpin" when a rule
    RETURNs or ACCEPTs the set's packets before any mark, as for the -LOCAL sets)."""
    out: dict[str, str] = {}
    for ruleset in rulesets:
        for chain_name in _MASQ_CHAINS:
            chain = ruleset.chain("nat", chain_name)
            for rule in chain.rules if chain is not None else ():
                match = next((m.match_set for m in rule.matches if m.match_set is not None), None)
                if match is None or match.negated or match.name in out:
                    continue
                if rule.jump == "KUBE-MARK-MASQ":
                    src = rule.src
                    out[match.name] = f"src {'!' if src.negated else ''}{src.network}" if src is not None else "all"
                elif rule.target is not None and rule.target.name in ("RETURN", "ACCEPT"):
                    out[match.name] = "hairpin"
    return out


def read_ipvs(services: Sequence[VirtualService], ipsets: Mapping[str, IPSet],
              rulesets: Iterable[Ruleset] = (), wanted: Wanted = None) -> list[NodeService]:
    """One NodeService per IPVS virtual service (fwmark services are not kube-proxy's: skipped)."""
    address_sets = [(name, kind, local, _members(ipsets.get(name))) for name, kind, local in _ADDRESS_SETS]
    node_ports = {proto: {port for _a, _p, port in _members(ipsets.get(name))}
                  for proto, name in _NODE_PORT_SETS.items()}
    local_node_ports = {proto: {port for _a, _p, port in _members(ipsets.get(name.replace("PORT-", "PORT-LOCAL-")))}
                        for proto, name in _NODE_PORT_SETS.items()}
    masquerade = _masquerade_by_set(rulesets)
    out: list[NodeService] = []
    for svc in services:
        if svc.fwmark or svc.address is None or svc.protocol is None:
            continue
        address = canonical_address(svc.address)
        if wanted is not None and not wanted(address, svc.port, svc.protocol):
            continue
        kind, policy, masq = None, None, None
        for name, set_kind, local, members in address_sets:
            if (address, svc.protocol, svc.port) in members:
                kind, policy, masq = set_kind, ("Local" if local else "Cluster"), masquerade.get(name)
                break
        if kind is None and svc.port in node_ports.get(svc.protocol, ()):
            local = svc.port in local_node_ports.get(svc.protocol, ())
            kind, policy = NODE_PORT, "Local" if local else "Cluster"
            masq = masquerade.get(_NODE_PORT_SETS[svc.protocol].replace("PORT-", "PORT-LOCAL-") if local
                                  else _NODE_PORT_SETS[svc.protocol])
        if kind == CLUSTER_IP:
            policy = None  # internalTrafficPolicy Local leaves no trace but the servers themselves
        total = sum(max(s.weight, 0) for s in svc.servers)
        endpoints = tuple(ServiceEndpoint(canonical_address(s.address), s.port,
                                          (max(s.weight, 0) / total) if total else 0.0, weight=s.weight)
                          for s in svc.servers)
        out.append(NodeService(
            MODE, address, svc.port, svc.protocol, svc.family, kind or CLUSTER_IP, endpoints,
            "dnat" if total else "reject", scheduler=svc.scheduler,
            affinity=svc.timeout if svc.persistent else None, masquerade=masq or "hairpin", policy=policy))
    return out
