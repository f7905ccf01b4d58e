"""`kubectl get svc,endpointslices -A -o json` made from what a node implements (`kpctl services
-o json`), for tests that need the API to agree with a node before they change one side."""

from __future__ import annotations

from typing import Any


def kubectl_of(services: list[dict[str, Any]]) -> dict[str, Any]:
    """`kubectl get svc,endpointslices -A -o json` of the named Services the node implements: a
    ClusterIP service's address, port and endpoints, its node port; external addresses whose port
    is the Service port's."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for svc in services:
        if not svc["name"] or svc["kind"] not in ("clusterIP", "nodePort", "externalIP"):
            continue
        (namespace, name), port_name = svc["name"].rsplit(":", 1)[0].split("/"), svc["name"].rsplit(":", 1)[1]
        entry = found.setdefault((namespace, name), {"cluster": [], "external": [], "ports": {}, "slices": {}})
        port = entry["ports"].setdefault((port_name, svc["protocol"]),
                                         {"name": port_name, "protocol": svc["protocol"].upper()})
        if svc["kind"] == "clusterIP":
            port["port"] = svc["port"]
            entry["cluster"].append(svc["address"])
            for ep in svc["endpoints"]:
                entry["slices"].setdefault((port_name, svc["protocol"], ep["port"]), []).append(ep["address"])
        elif svc["kind"] == "nodePort":
            port["nodePort"] = svc["port"]
        elif port.get("port") == svc["port"]:
            entry["external"].append(svc["address"])
    items: list[dict[str, Any]] = []
    for (namespace, name), entry in found.items():
        items.append({"kind": "Service", "metadata": {"namespace": namespace, "name": name},
                      "spec": {"type": "NodePort" if any("nodePort" in p for p in entry["ports"].values()) else
                               "ClusterIP", "clusterIPs": sorted(set(entry["cluster"])),
                               "externalIPs": sorted(set(entry["external"])),
                               "ports": [p for p in entry["ports"].values() if "port" in p]}})
        for (port_name, protocol, number), addresses in entry["slices"].items():
            items.append({"kind": "EndpointSlice",
                          "metadata": {"namespace": namespace, "name": f"{name}-{port_name}-{number}",
                                       "labels": {"kubernetes.io/service-name": name}},
                          "ports": [{"name": port_name, "port": number, "protocol": protocol.upper()}],
                          "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]})
    return {"kind": "List", "items": items}
