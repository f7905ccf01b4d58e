"""`kpctl services`: what a node's data plane implements per Service address, whatever the mode.

One reader per kube-proxy mode (ipvs, iptables, nftables), each pure over a NodeView's parsed
state, all giving :class:`kpctl.model.services.NodeService`. Which modes are read comes from
kpctl.core.modes: the active mode first, then every other mode whose state still carries
services (a mode switch without clean-up), so coexisting state is shown, not hidden.
"""

from __future__ import annotations

from typing import Any

from kpctl.core.modes import IPTABLES, IPVS, NFTABLES, ModeReport, modes_of_view
from kpctl.model.services import NodeService, ServicesReport

READABLE = (IPVS, IPTABLES, NFTABLES)


def modes_to_read(report: ModeReport) -> tuple[str, ...]:
    """The active mode (when this reader knows it), then the other modes carrying services."""
    found = [report.active] if report.active in READABLE else []
    found += [s.mode for s in report.present if s.carries_services and s.mode in READABLE and s.mode not in found]
    return tuple(found)


def read_mode(view: Any, mode: str) -> list[NodeService]:
    if mode == IPVS:
        from kpctl.core.services.ipvs import read_ipvs

        rulesets = [r for group in view.rulesets.values() for r in group]
        return read_ipvs(view.ipvs_services, view.ipsets, rulesets)
    if mode == IPTABLES:
        from kpctl.core.services.iptables import read_iptables

        return read_iptables(view.rulesets)
    from kpctl.core.services.nftables import read_nftables

    return read_nftables(view.nftables)


def _order(service: NodeService) -> tuple[Any, ...]:
    return (service.family, service.address == "*", service.address, service.protocol, service.port)


def read_services(view: Any, hint: str | None = None) -> ServicesReport:
    """Every Service address the node implements, per mode read (active mode first)."""
    report = modes_of_view(view, hint)
    read = modes_to_read(report)
    services: list[NodeService] = []
    for mode in read:
        services.extend(sorted(read_mode(view, mode), key=_order))
    notes = []
    if len(read) > 1:
        notes.append(f"state of {len(read)} modes coexists ({', '.join(read)}); {report.active} is taken as "
                     f"active ({report.reason}); the others are leftovers that still match packets")
    return ServicesReport(report.to_dict(), read, tuple(services), notes=tuple(notes))
