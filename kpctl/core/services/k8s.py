"""The node's services joined with the API's Services and EndpointSlices (`--services`/`--kubectl`).

Drift, per service address: endpoints in the node's rules that no EndpointSlice of the
Service lists ("stale": a deleted pod, or an address reused by another one), and ready
endpoints the API lists that the rules lack ("missing"). Under the Local traffic policy only
this node's endpoints belong in the rules and the JSON does not say which node this is, so
nothing is reported missing there.  `services` shows the drift; `doctor` reports it as the
k8s-* findings (:func:`k8s_findings`), the same in every mode.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import replace

from kpctl.core.address import addrport
from kpctl.core.k8s_names import K8S_CHECKS, K8sNames, label_of
from kpctl.model.doctor import ERROR, WARNING, Finding
from kpctl.model.ipvs import ServiceKey
from kpctl.model.k8s import Endpoint, ServicePort
from kpctl.model.services import ANY_LOCAL, NodeService, ServicesReport

# A node port is looked up by port when its address is no Service address: any such address will do.
_NO_VIP = {"inet": "0.0.0.0", "inet6": "::"}


def _key(service: NodeService) -> ServiceKey:
    address = _NO_VIP.get(service.family, "0.0.0.0") if service.address == ANY_LOCAL else service.address
    return ServiceKey(service.family, service.protocol, address, service.port)


def _missing(service: NodeService, ports: Sequence[ServicePort]) -> Iterator[tuple[ServicePort, Endpoint]]:
    """The ready endpoints of ``ports`` (the Service ports at ``service``) it lacks, each once."""
    have = {(e.address, e.port) for e in service.endpoints}
    for sp in ports:
        internal = service.address in sp.cluster_ips
        if (sp.internal_policy if internal else sp.external_policy) == "Local":
            continue
        for ep in sp.endpoints:
            if ep.ready and (ep.address, ep.port) not in have:
                have.add((ep.address, ep.port))
                yield sp, ep


def _listed(ports: Sequence[ServicePort]) -> set[tuple[str, int]]:
    """Every endpoint the EndpointSlices of ``ports`` list, ready or not: the node's others are stale."""
    return {(ep.address, ep.port) for sp in ports for ep in sp.endpoints}


def join_service(service: NodeService, names: K8sNames) -> NodeService:
    ports = names.service_ports(_key(service))
    if not ports:
        return service
    listed = _listed(ports)
    endpoints = tuple(e if e.drift == (drift := None if (e.address, e.port) in listed else "stale")
                      else e._replace(drift=drift) for e in service.endpoints)  # (most are listed: kept as they are)
    missing = tuple(addrport(ep.address, ep.port) for _sp, ep in _missing(service, ports))
    return service._replace(name=label_of(ports), endpoints=endpoints, missing=missing)


def join_names(report: ServicesReport, names: K8sNames) -> ServicesReport:
    """``report`` with the API's names and each service's drift."""
    return replace(report, services=tuple(join_service(s, names) for s in report.services),
                   k8s_source=names.source or "-")


# ---- doctor --------------------------------------------------------------------------------

# What makes an endpoint part of a service, and a service address part of the node, per mode.
_ENDPOINT_OF = {"ipvs": "a real server of", "iptables": "an endpoint (KUBE-SEP chain) of",
                "nftables": "an endpoint (endpoint- chain) of"}
_SERVICE_AS = {"ipvs": "virtual service", "iptables": "KUBE-SERVICES rule", "nftables": "service-ips element"}


_RESYNC = "kube-proxy rewrites a service's rules on every sync: check its log for sync errors, or restart it"


def k8s_findings(services: Sequence[NodeService], names: K8sNames, mode: str,
                 checks: Collection[str] = tuple(K8S_CHECKS)) -> list[Finding]:
    """Compare the services the node's ``mode`` implements with the API's (see :data:`K8S_CHECKS`):
    endpoints no EndpointSlice lists, ready endpoints the node lacks, Service addresses it does not
    implement, and (IPVS) weight-0 servers whose endpoint is ready."""
    findings: list[Finding] = []
    for service in services:
        key = _key(service)
        ports = names.service_ports(key)
        if not ports:
            continue  # not a Service kube-proxy manages (or not in the JSON): nothing to compare
        listed, label = _listed(ports), label_of(ports)
        where, member = service.address_text, _ENDPOINT_OF.get(mode, "an endpoint of")
        for endpoint in service.endpoints:
            if (endpoint.address, endpoint.port) not in listed:
                text = addrport(endpoint.address, endpoint.port)
                findings.append(Finding(
                    "k8s-server-stale", ERROR, f"{where} -> {text}",
                    f"{text} is {member} {where} ({label}) but no EndpointSlice lists it",
                    "new connections go to an address the Service no longer has: a deleted pod, or an address "
                    "already reused by another pod",
                    f"kpctl ipvs delete-server {where} {text}  (and check kube-proxy's log: it should have "
                    "removed it)" if mode == "ipvs" else _RESYNC))
            elif endpoint.weight == 0 and (ep := names.endpoint(key, endpoint.address, endpoint.port)) is not None \
                    and ep.ready and not ep.terminating:
                text = addrport(endpoint.address, endpoint.port)
                findings.append(Finding(
                    "k8s-weight0-ready", WARNING, f"{where} -> {text}",
                    f"{text} ({ep.pod or 'endpoint'}) is at weight 0 but its endpoint is ready",
                    "kube-proxy drains terminating endpoints with weight 0; a ready endpoint at weight 0 gets no "
                    "new connections",
                    f"kpctl ipvs edit-server {where} {text} -w 1  (kube-proxy resyncs it too)"))
        for sp, ep in _missing(service, ports):
            text = addrport(ep.address, ep.port)
            findings.append(Finding(
                "k8s-endpoint-missing", ERROR, f"{where} -> {text}",
                f"ready endpoint {text} ({ep.pod or 'no pod'}) of {sp.label} is not {member} {where}",
                "the pod gets no traffic through this node although the API says it is ready",
                f"check kube-proxy on this node (logs, sync errors); by hand: kpctl ipvs add-server {where} "
                f"{text} -m" if mode == "ipvs" else _RESYNC))
    findings += _services_missing(services, names, mode)
    return [f for f in findings if f.check in checks]


def _services_missing(services: Sequence[NodeService], names: K8sNames, mode: str) -> list[Finding]:
    present = {(s.address, s.protocol, s.port) for s in services}
    families = {s.family for s in services}
    findings = []
    for sp in names.ports:
        for address in (*sp.cluster_ips, *sp.external_ips):
            family = "inet6" if ":" in address else "inet"
            if (address, sp.protocol, sp.port) in present or (families and family not in families):
                continue
            host = f"[{address}]" if family == "inet6" else address
            key = f"{host}:{sp.port}/{sp.protocol}"
            findings.append(Finding(
                "k8s-service-missing", ERROR, key,
                f"{sp.label} ({sp.service_type}) has no {_SERVICE_AS.get(mode, 'service')} {key}",
                "connections to the Service address on this node are not load-balanced at all",
                f"check kube-proxy on this node (is it running, in {mode} mode? its sync errors?)"))
    return findings
