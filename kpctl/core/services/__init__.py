"""`kpctl services`: what a node's data plane implements per Service address, whatever the mode.

One reader per kube-proxy mode (ipvs, iptables, nftables), each pure over a NodeView's parsed
state, all giving :class:`kpctl.model.services.NodeService`. Which modes are read comes from
kpctl.core.modes: the active mode first, then every other mode whose state still carries
services (a mode switch without clean-up), so coexisting state is shown, not hidden.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from kpctl.core.modes import IPTABLES, IPVS, NFTABLES, ModeReport, modes_of_view
from kpctl.core.services.common import Wanted
from kpctl.model.services import ANY_LOCAL, NodeService, ServicesReport

READABLE = (IPVS, IPTABLES, NFTABLES)


def modes_to_read(report: ModeReport) -> tuple[str, ...]:
    """The active mode (when this reader knows it), then the other modes carrying services."""
    found = [report.active] if report.active in READABLE else []
    found += [s.mode for s in report.present if s.carries_services and s.mode in READABLE and s.mode not in found]
    return tuple(found)


def read_mode(view: Any, mode: str, wanted: Wanted = None) -> list[NodeService]:
    """The services ``mode``'s state implements (``wanted``: only those it admits, each service
    address asked before its dispatch is followed)."""
    if mode == IPVS:
        from kpctl.core.services.ipvs import read_ipvs

        rulesets = [r for group in view.rulesets.values() for r in group]
        return read_ipvs(view.ipvs_services, view.ipsets, rulesets, wanted)
    if mode == IPTABLES:
        from kpctl.core.services.iptables import read_iptables

        return read_iptables(view.rulesets, wanted)
    from kpctl.core.services.nftables import read_nftables

    return read_nftables(view.nftables, wanted)


def _order(service: NodeService) -> tuple[Any, ...]:
    any_local = service.address == ANY_LOCAL
    packed = b"" if any_local else socket.inet_pton(socket.AF_INET6 if ":" in service.address else socket.AF_INET,
                                                    service.address)  # C speed: 10,000 keys
    return (service.family, any_local, packed,
            service.protocol, service.port)


def read_services(view: Any, hint: str | None = None, key: Any = None) -> ServicesReport:
    """Every Service address the node implements, per mode read (active mode first); ``key`` (a
    ServiceKey): only the services at it, the others' chains not followed (see :func:`asked`)."""
    report = modes_of_view(view, hint)
    read = modes_to_read(report)
    wanted = None if key is None else asked(key, view.local_addresses)
    services: list[NodeService] = []
    for mode in read:
        services.extend(sorted(read_mode(view, mode, wanted), key=_order))
    notes = []
    if len(read) > 1:
        notes.append(f"state of {len(read)} modes coexists ({', '.join(read)}); {report.active} is taken as "
                     f"active ({report.reason}); the others are leftovers that still match packets")
    if IPTABLES in read or IPVS in read:
        notes += _hook_notes(view.rulesets)
    return ServicesReport(report.to_dict(), read, tuple(services), notes=tuple(notes))


class _NodeParts:
    """What :func:`read_mode` reads of a node, from doctor's NodeState (kpctl.model.doctor)."""

    def __init__(self, node: Any) -> None:
        self.ipvs_services = node.ipvs.services if node.ipvs is not None else ()
        self.ipsets = {ipset.name: ipset for ipset in node.ipsets or ()}
        self.rulesets = {family: tuple(by_backend.values()) for family, by_backend in node.iptables.items()}
        self.nftables = node.nftables


def node_services(node: Any, mode: str) -> list[NodeService] | None:
    """The services ``mode``'s state implements on doctor's NodeState, as `services` lists them;
    None when that state (the NodeState piece named as the mode) could not be read, or for a mode
    this reader does not know."""
    if mode not in READABLE or mode in node.unavailable:
        return None
    return sorted(read_mode(_NodeParts(node), mode), key=_order)


def _hook_notes(rulesets: dict[str, tuple[Any, ...]]) -> list[str]:
    """A note per jump into kube-proxy's chains that a built-in chain lacks (kpctl.core.kube_hooks)."""
    from kpctl.core.kube_hooks import family_gaps

    return [f"{gap.table} {gap.hook} does not jump to {gap.chain} ({ruleset.family}, {ruleset.backend}): "
            f"{gap.why.split(':')[0]} (kpctl doctor --check iptables-hook-missing)"
            for group in rulesets.values() for ruleset, gap in family_gaps(group)]


def asked(key: Any, local_addresses: Any) -> Wanted:
    """Whether a service address is ``key`` (a ServiceKey): its address, or a node port on every
    local address when ``key``'s address is one of the node's (``local_addresses``: a container of
    them)."""
    address = str(ipaddress.ip_address(key.address))
    local = address in local_addresses
    port, protocol = key.port, key.protocol
    return lambda a, p, pr: p == port and pr == protocol and (a == address or (a == ANY_LOCAL and local))
