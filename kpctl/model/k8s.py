"""Kubernetes Services and their endpoints as kube-proxy sees them (from the API, not the node).

A :class:`ServicePort` is one port of one Service (kube-proxy's ServicePortName,
``namespace/name:port``) with every address it is reachable on; an :class:`Endpoint` is one
address:port behind it, from an EndpointSlice, with the pod it belongs to.
"""

from __future__ import annotations

from typing import NamedTuple


class Endpoint(NamedTuple):
    """One address:port behind a Service, from an EndpointSlice, with its pod and conditions.
    A NamedTuple: a 10,000-service cluster has 50,000 (a frozen dataclass made each in 1.3 us)."""

    address: str
    port: int
    protocol: str  # tcp|udp|sctp, lower case as kpctl writes protocols
    pod: str = ""  # namespace/name of the targetRef pod ("" when the endpoint is not a pod)
    node: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False


class ServicePort(NamedTuple):
    """One port of a Service: its addresses, node port, endpoints and traffic policies.  A
    NamedTuple, as Endpoint: a 10,000-service cluster has 10,000 or more (a frozen dataclass made
    each in ~4 us; as tuples the 10,000 take 39 ms, not 52)."""

    namespace: str
    name: str
    port_name: str  # the port's name in the Service ("" for a single unnamed port)
    protocol: str  # tcp|udp|sctp
    port: int
    service_type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()
    external_ips: tuple[str, ...] = ()  # spec.externalIPs and status.loadBalancer.ingress IPs
    node_port: int = 0
    endpoints: tuple[Endpoint, ...] = ()
    internal_policy: str = "Cluster"  # spec.internalTrafficPolicy: for the cluster IPs
    external_policy: str = "Cluster"  # spec.externalTrafficPolicy: external, LoadBalancer and node ports

    @property
    def label(self) -> str:
        """``namespace/name:port`` (the port's name, or its number when unnamed)."""
        return f"{self.namespace}/{self.name}:{self.port_name or self.port}"
