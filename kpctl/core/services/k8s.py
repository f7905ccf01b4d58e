"""The node's services joined with the API's Services and EndpointSlices (`--services`/`--kubectl`).

Drift, per service address: endpoints in the node's rules that no EndpointSlice of the
Service lists ("stale": a deleted pod, or an address reused by another one), and ready
endpoints the API lists that the rules lack ("missing"). Under the Local traffic policy only
this node's endpoints belong in the rules and the JSON does not say which node this is, so
nothing is reported missing there.
"""

from __future__ import annotations

from dataclasses import replace

from kpctl.core.address import addrport
from kpctl.core.k8s_names import K8sNames
from kpctl.model.ipvs import ServiceKey
from kpctl.model.services import ANY_LOCAL, NodeService, ServicesReport

# A node port is looked up by port when its address is no Service address: any such address will do.
_NO_VIP = {"inet": "0.0.0.0", "inet6": "::"}


def join_service(service: NodeService, names: K8sNames) -> NodeService:
    address = _NO_VIP.get(service.family, "0.0.0.0") if service.address == ANY_LOCAL else service.address
    ports = names.service_ports(ServiceKey(service.family, service.protocol, address, service.port))
    if not ports:
        return service
    listed = {(ep.address, ep.port) for sp in ports for ep in sp.endpoints}
    endpoints = tuple(e if e.drift == (drift := None if (e.address, e.port) in listed else "stale")
                      else e._replace(drift=drift) for e in service.endpoints)  # (most are listed: kept as they are)
    have = {(e.address, e.port) for e in service.endpoints}
    missing: dict[str, None] = {}
    for sp in ports:
        internal = service.address in sp.cluster_ips
        if (sp.internal_policy if internal else sp.external_policy) == "Local":
            continue
        for ep in sp.endpoints:
            if ep.ready and (ep.address, ep.port) not in have:
                missing[addrport(ep.address, ep.port)] = None
    label = ", ".join(dict.fromkeys(sp.label for sp in ports))
    return service._replace(name=label, endpoints=endpoints, missing=tuple(missing))


def join_names(report: ServicesReport, names: K8sNames) -> ServicesReport:
    """``report`` with the API's names and each service's drift."""
    return replace(report, services=tuple(join_service(s, names) for s in report.services),
                   k8s_source=names.source or "-")
