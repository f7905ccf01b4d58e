"""Kubernetes names for the node's state: the join ipvsadm never had.

Input is what ``kubectl get svc,endpointslices -A -o json`` prints (a ``List`` of Service
and discovery.k8s.io/v1 EndpointSlice items).  :func:`parse_kubectl_json` turns it into
:class:`K8sNames`, which answers "which Service port is this virtual service" (``ns/name:port``)
and "which pod is this real server"; kpctl.core.services.k8s compares the node's services, in
any mode, with it (drift, and doctor's :data:`K8S_CHECKS`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kpctl.core.address import canonical_address
from kpctl.errors import InvalidInput
from kpctl.model.k8s import Endpoint, ServicePort

if TYPE_CHECKING:  # (the key of a service, made by whoever asks)
    from kpctl.model.ipvs import ServiceKey

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# The doctor's checks against the API (kpctl.core.services.k8s.k8s_findings), in every mode.
K8S_CHECKS: dict[str, str] = {
    "k8s-server-stale": "endpoint on this node the API no longer lists",
    "k8s-endpoint-missing": "ready endpoint missing from its service on this node",
    "k8s-service-missing": "Service address:port this node does not implement",
    "k8s-weight0-ready": "weight-0 IPVS real server whose endpoint is ready again",
}


@dataclass(frozen=True)
class K8sNames:
    ports: tuple[ServicePort, ...] = ()
    source: str = ""
    _by_vip: dict[tuple[str, str, int], list[ServicePort]] = field(default_factory=dict, repr=False, compare=False)
    _by_node_port: dict[tuple[str, int], list[ServicePort]] = field(default_factory=dict, repr=False,
                                                                     compare=False)
    # address -> the ports of _by_vip at it, in _by_vip's order (labels_at: one lookup per VIP)
    _by_address: dict[str, list[ServicePort]] = field(default_factory=dict, repr=False, compare=False)
    _endpoints: dict[ServiceKey, dict[tuple[str, int], Endpoint]] = field(default_factory=dict, repr=False,
                                                                          compare=False)  # see endpoints

    def __post_init__(self) -> None:
        for sp in self.ports:
            for address in (*sp.cluster_ips, *sp.external_ips):
                self._by_vip.setdefault((address, sp.protocol, sp.port), []).append(sp)
            if sp.node_port:
                self._by_node_port.setdefault((sp.protocol, sp.node_port), []).append(sp)
        for (address, _, _), ports in self._by_vip.items():
            self._by_address.setdefault(address, []).extend(ports)

    def service_ports(self, key: ServiceKey) -> list[ServicePort]:
        """The Service ports a virtual service implements: by VIP, else by node port."""
        if key.fwmark or key.address is None or key.protocol is None:
            return []
        found = self._by_vip.get((canonical_address(key.address), key.protocol, key.port))
        if found:
            return found
        return self._by_node_port.get((key.protocol, key.port), [])

    def label(self, key: ServiceKey) -> str:
        return label_of(self.service_ports(key))

    def endpoints(self, key: ServiceKey) -> Mapping[tuple[str, int], Endpoint]:
        """The endpoints of the Service ports a virtual service implements, by (address, port): the
        first listed of each.  Made once per key (a listing asks once per real server)."""
        found = self._endpoints.get(key)
        if found is None:
            found = self._endpoints[key] = {}
            for sp in self.service_ports(key):
                for ep in sp.endpoints:
                    found.setdefault((ep.address, ep.port), ep)
        return found

    def endpoint(self, key: ServiceKey, address: str, port: int) -> Endpoint | None:
        return self.endpoints(key).get((canonical_address(address), port))

    def pod(self, key: ServiceKey, address: str, port: int) -> str:
        ep = self.endpoint(key, address, port)
        return ep.pod if ep is not None else ""

    def labels_at(self, address: str) -> list[str]:
        """Every Service port bound on ``address`` (for `vip list`)."""
        return list(dict.fromkeys(sp.label for sp in self._by_address.get(canonical_address(address), ())))


def label_of(ports: Iterable[ServicePort]) -> str:
    """``ns/name:port`` of each Service port, once each, in their order (the ports at one address)."""
    return ", ".join(dict.fromkeys(sp.label for sp in ports))


# ---- parsing ---------------------------------------------------------------------------------

def _items(doc: Any, source: str) -> list[Mapping[str, Any]]:
    if isinstance(doc, Mapping) and isinstance(doc.get("items"), list):
        return [i for i in doc["items"] if isinstance(i, Mapping)]
    if isinstance(doc, Mapping) and doc.get("kind") in ("Service", "EndpointSlice"):
        return [doc]
    raise InvalidInput(f"{source}: not the JSON of `kubectl get svc,endpointslices -A -o json` (no items list)")


def _proto(value: Any) -> str:
    return str(value or "TCP").lower()


def _slice_endpoints(item: Mapping[str, Any]) -> dict[tuple[str, str], list[Endpoint]]:
    """(port name, protocol) -> endpoints of one EndpointSlice."""
    out: dict[tuple[str, str], list[Endpoint]] = {}
    for port in item.get("ports") or ():
        number = port.get("port")
        if not isinstance(number, int):
            continue
        proto, name = _proto(port.get("protocol")), str(port.get("name") or "")
        for ep in item.get("endpoints") or ():
            conditions = ep.get("conditions") or {}
            ref = ep.get("targetRef") or {}
            pod = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref.get("kind") == "Pod" else ""
            ready = conditions.get("ready") is not False  # unset means ready (API docs)
            for address in ep.get("addresses") or ():
                out.setdefault((name, proto), []).append(Endpoint(
                    canonical_address(str(address)), number, proto, pod, str(ep.get("nodeName") or ""), ready,
                    conditions.get("serving", ready) is not False, bool(conditions.get("terminating", False))))
    return out


def _addresses(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(canonical_address(str(v)) for v in values if v and v != "None")


def parse_kubectl_json(text: str, source: str = "-") -> K8sNames:
    """Service ports with their endpoints, from `kubectl get svc,endpointslices -A -o json`."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    items = _items(doc, source)
    slices: dict[tuple[str, str], dict[tuple[str, str], list[Endpoint]]] = {}
    for item in items:
        if item.get("kind") != "EndpointSlice":
            continue
        meta = item.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            merged = slices.setdefault((str(meta.get("namespace", "")), str(owner)), {})
            for port_key, endpoints in _slice_endpoints(item).items():
                merged.setdefault(port_key, []).extend(endpoints)
    ports: list[ServicePort] = []
    for item in items:
        if item.get("kind") != "Service":
            continue
        ports.extend(_service_ports(item, slices))
    return K8sNames(tuple(ports), source)


def _service_ports(item: Mapping[str, Any],
                   slices: Mapping[tuple[str, str], Mapping[tuple[str, str], list[Endpoint]]]) -> list[ServicePort]:
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    kind = str(spec.get("type") or "ClusterIP")
    if kind == "ExternalName":
        return []
    cluster_ips = _addresses(spec.get("clusterIPs") or [spec.get("clusterIP")])
    ingress = ((item.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    external = _addresses([*(spec.get("externalIPs") or ()), *(i.get("ip") for i in ingress)])
    endpoints = slices.get((namespace, name), {})
    out = []
    for port in spec.get("ports") or ():
        if not isinstance(port.get("port"), int):
            continue
        port_name, proto = str(port.get("name") or ""), _proto(port.get("protocol"))
        out.append(ServicePort(namespace, name, port_name, proto, port["port"], kind, cluster_ips, external,
                               int(port.get("nodePort") or 0), tuple(endpoints.get((port_name, proto), ())),
                               str(spec.get("internalTrafficPolicy") or "Cluster"),
                               str(spec.get("externalTrafficPolicy") or "Cluster")))
    return out
