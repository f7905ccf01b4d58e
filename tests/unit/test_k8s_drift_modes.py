"""doctor's k8s-* checks and `services --services` drift, in every mode, from one join.

The kubectl JSON here is made from what the node itself implements (its services' names come from
kube-proxy's rule comments and chain names), so it agrees with the node; then the API is changed
as a cluster changes under a node whose kube-proxy stopped syncing: a pod deleted (its endpoint now
stale), a pod became ready (missing), a Service created (not implemented).  doctor must name
exactly those, and say what `services --services` says, endpoint for endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import kpctl
from tests.k8s_fixture import kubectl_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
K8S_IDS = ("k8s-server-stale", "k8s-endpoint-missing", "k8s-service-missing", "k8s-weight0-ready")


def node_services(snapshot: str) -> list[dict[str, Any]]:
    out = kpctl("--snapshot", snapshot, "services", "-o", "json")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)["services"]  # type: ignore[no-any-return]


def doctor_k8s(snapshot: str, kubectl: Path) -> tuple[int, list[dict[str, Any]]]:
    out = kpctl("--snapshot", snapshot, "doctor", "--services", str(kubectl), "-o", "json",
                *(arg for check in K8S_IDS for arg in ("--check", check)))
    assert out.stderr == "", out.stderr
    return out.exit_code, json.loads(out.stdout)["findings"]


def drift(snapshot: str, kubectl: Path) -> tuple[set[str], set[str]]:
    """`services --services`' stale and missing endpoints, as doctor's subjects write them."""
    out = kpctl("--snapshot", snapshot, "services", "--services", str(kubectl), "-o", "json")
    services = json.loads(out.stdout)["services"]
    stale = {f"{s['service']} -> {e['address']}:{e['port']}" for s in services for e in s["endpoints"]
             if e["drift"] == "stale"}
    missing = {f"{s['service']} -> {m}" for s in services for m in s["missing_endpoints"]}
    return stale, missing


def subjects(findings: list[dict[str, Any]], check: str) -> set[str]:
    return {f["subject"] for f in findings if f["check"] == check}


@pytest.mark.parametrize("example, mode, service, gone, ready", [
    ("iptables-node.json", "iptables", "default/web", "172.30.1.6", "172.30.1.77"),
    ("nftables-node.json", "nftables", "default/web", "10.244.2.7", "10.244.2.77"),
])
def test_drift_is_found_alike_in_every_mode(tmp_path: Path, example: str, mode: str, service: str, gone: str,
                                            ready: str) -> None:
    snapshot = str(EXAMPLES / example)
    kubectl = kubectl_of(node_services(snapshot))
    agreeing = tmp_path / "agreeing.json"
    agreeing.write_text(json.dumps(kubectl))
    status, findings = doctor_k8s(snapshot, agreeing)
    assert (status, findings) == (0, [])
    assert drift(snapshot, agreeing) == (set(), set())

    namespace, name = service.split("/")
    slices = [i for i in kubectl["items"] if i["kind"] == "EndpointSlice" and i["metadata"]["namespace"] == namespace
              and i["metadata"]["labels"]["kubernetes.io/service-name"] == name]
    endpoints = slices[0]["endpoints"]
    assert {"addresses": [gone], "conditions": {"ready": True}} in endpoints, endpoints
    endpoints.remove({"addresses": [gone], "conditions": {"ready": True}})  # the pod deleted
    endpoints.append({"addresses": [ready], "conditions": {"ready": True}})  # a new one ready
    kubectl["items"].append({"kind": "Service", "metadata": {"namespace": "default", "name": "ghost"},
                             "spec": {"type": "ClusterIP", "clusterIPs": ["10.254.9.9"],
                                      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(kubectl))
    status, findings = doctor_k8s(snapshot, changed)
    assert status == 1
    assert {f["check"] for f in findings} == {"k8s-server-stale", "k8s-endpoint-missing", "k8s-service-missing"}
    stale, missing = subjects(findings, "k8s-server-stale"), subjects(findings, "k8s-endpoint-missing")
    assert (stale, missing) == drift(snapshot, changed)  # what `services --services` says, endpoint for endpoint
    assert stale and all(s.endswith(f" -> {gone}:{s.rsplit(':', 1)[1]}") for s in stale)
    assert missing and all(f" -> {ready}:" in s for s in missing)
    assert subjects(findings, "k8s-service-missing") == {"10.254.9.9:80/tcp"}
    held = {"iptables": "an endpoint (KUBE-SEP chain) of", "nftables": "an endpoint (endpoint- chain) of"}[mode]
    assert all(held in f["found"] for f in findings if f["check"] != "k8s-service-missing")
    assert all("kube-proxy rewrites a service's rules on every sync" in f["fix"] for f in findings
               if f["check"] != "k8s-service-missing")


def test_k8s_checks_are_listed_for_every_mode() -> None:
    out = kpctl("--snapshot", str(EXAMPLES / "nftables-node.json"), "doctor", "--list-checks", "--services",
                str(Path(__file__).parent / "fixtures" / "k8s" / "services.json"), "-o", "json")
    rows = {row["id"]: row for row in json.loads(out.stdout)}
    assert all(rows[check]["modes"] == "any" for check in K8S_IDS)
