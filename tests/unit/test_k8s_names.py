"""kpctl.core.k8s_names: kubectl JSON -> Service ports and endpoints; the join with IPVS; doctor's checks
(kpctl.core.services.k8s, over an IPVS node's services here; every mode: test_k8s_drift_modes.py).

The fixture is `kubectl get svc,endpointslices -A -o json` of the cluster the seed snapshot
(examples/seed-ipvs-node.json) came from, plus a NodePort/LoadBalancer service, a headless and an
ExternalName service, a terminating endpoint and one endpoint the seed node lacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpctl.core.address import parse_service
from kpctl.core.k8s_names import K8S_CHECKS, K8sNames, parse_kubectl_json
from kpctl.core.services.ipvs import read_ipvs
from kpctl.core.services.k8s import k8s_findings as findings_of
from kpctl.errors import InvalidInput
from kpctl.model.doctor import Finding
from kpctl.model.ipvs import IPVSTable, RealServer, VirtualService

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "k8s" / "services.json"
NAMES = parse_kubectl_json(FIXTURE.read_text(), str(FIXTURE))


def seed_table() -> IPVSTable:
    from kpctl.backends.ipvs_snapshot import IPVSSnapshot

    doc = json.loads((ROOT / "examples" / "seed-ipvs-node.json").read_text())
    return IPVSSnapshot(doc["ipvs"], "seed").table()


def test_service_ports_and_labels() -> None:
    labels = sorted(sp.label for sp in NAMES.ports)
    assert labels == ["default/kubernetes:https", "kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp",
                      "kube-system/kube-dns:metrics", "shop/cart:80", "shop/db:pg", "shop/web:http"]
    # headless (clusterIP None) has no address; ExternalName has no ports at all
    db = next(sp for sp in NAMES.ports if sp.name == "db")
    assert db.cluster_ips == () and db.endpoints[0].pod == "shop/db-0"


def test_vip_lookup_by_protocol_and_port() -> None:
    assert NAMES.label(parse_service("10.254.0.2:53/udp")) == "kube-system/kube-dns:dns"
    assert NAMES.label(parse_service("10.254.0.2:53/tcp")) == "kube-system/kube-dns:dns-tcp"
    assert NAMES.label(parse_service("10.254.0.2:9153")) == "kube-system/kube-dns:metrics"
    assert NAMES.label(parse_service("10.254.0.2:54")) == ""
    assert NAMES.label(parse_service("fwmark:10")) == ""


def test_external_load_balancer_and_node_port_addresses() -> None:
    assert NAMES.label(parse_service("192.0.2.10:80")) == "shop/cart:80"  # spec.externalIPs
    assert NAMES.label(parse_service("198.51.100.7:80")) == "shop/cart:80"  # status.loadBalancer.ingress
    assert NAMES.label(parse_service("192.168.10.10:30080")) == "shop/web:http"  # any node address


def test_pods_for_real_servers() -> None:
    web = parse_service("10.254.199.160:8080")
    assert NAMES.pod(web, "172.30.22.4", 8080) == "shop/web-7c9f8d6b5-abcde"
    assert NAMES.pod(web, "172.30.22.4", 9999) == ""
    assert NAMES.pod(parse_service("10.254.0.1:443"), "192.168.10.10", 6443) == ""  # apiserver: no pod
    ep = NAMES.endpoint(web, "172.30.78.9", 8080)
    assert ep is not None and ep.terminating and not ep.ready and ep.node == "node-1"


def test_labels_at_an_address() -> None:
    assert NAMES.labels_at("10.254.0.2") == ["kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp",
                                             "kube-system/kube-dns:metrics"]


def test_ipv6_addresses_compare_canonically() -> None:
    doc = json.loads(FIXTURE.read_text())
    svc = next(i for i in doc["items"] if i["kind"] == "Service" and i["metadata"]["name"] == "kubernetes")
    svc["spec"]["clusterIPs"] = ["fd00:0:0::1"]
    names = parse_kubectl_json(json.dumps({"items": [svc]}))
    assert names.label(parse_service("[fd00::1]:443")) == "default/kubernetes:https"


@pytest.mark.parametrize("text, word", [("{", "not JSON"), ("[]", "no items"), ('{"kind": "Pod"}', "no items")])
def test_bad_input_names_the_source(text: str, word: str) -> None:
    with pytest.raises(InvalidInput, match=f"svc.json: .*{word}"):
        parse_kubectl_json(text, "svc.json")


# ---- doctor ---------------------------------------------------------------------------------

def k8s_findings(table: IPVSTable, names: K8sNames, checks: tuple[str, ...] = tuple(K8S_CHECKS)) -> list[Finding]:
    """doctor's k8s findings over the services of an IPVS node with ``table``."""
    return findings_of(read_ipvs(table.services, {}), names, "ipvs", checks)


def _checks(table: IPVSTable) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for finding in k8s_findings(table, NAMES):
        out.setdefault(finding.check, []).append(finding.subject)
    return out


def test_seed_node_lacks_one_ready_endpoint_and_the_cart_service() -> None:
    found = _checks(seed_table())
    assert found["k8s-endpoint-missing"] == ["10.254.199.160:8080/tcp -> 172.30.22.9:8080"]
    assert sorted(found["k8s-service-missing"]) == ["10.254.33.7:80/tcp", "192.0.2.10:80/tcp", "198.51.100.7:80/tcp"]
    assert "k8s-server-stale" not in found and "k8s-weight0-ready" not in found


def _with_servers(table: IPVSTable, key: str, servers: tuple[RealServer, ...]) -> IPVSTable:
    wanted = parse_service(key)
    return IPVSTable(table.info, tuple(s.with_servers(servers) if s.key == wanted else s for s in table.services))


def test_stale_server_and_weight0_ready() -> None:
    table = seed_table()
    web = next(s for s in table.services if str(s.key) == "10.254.199.160:8080/tcp")
    servers = tuple(s._replace(weight=0) if s.address == "172.30.22.4" else s for s in web.servers)
    servers += (RealServer("172.30.22.66", 8080), RealServer("172.30.78.9", 8080, weight=0),
                RealServer("172.30.22.9", 8080))
    found = _checks(_with_servers(table, "10.254.199.160:8080", servers))
    assert found["k8s-server-stale"] == ["10.254.199.160:8080/tcp -> 172.30.22.66:8080"]
    # 172.30.78.9 is terminating: weight 0 is right for it
    assert found["k8s-weight0-ready"] == ["10.254.199.160:8080/tcp -> 172.30.22.4:8080"]
    assert "k8s-endpoint-missing" not in found


def test_local_traffic_policy_does_not_demand_other_nodes_endpoints() -> None:
    doc = json.loads(FIXTURE.read_text())
    for item in doc["items"]:
        if item["kind"] == "Service" and item["metadata"]["name"] == "web":
            item["spec"]["internalTrafficPolicy"] = "Local"
    names = parse_kubectl_json(json.dumps(doc))
    assert not [f for f in k8s_findings(seed_table(), names) if f.check == "k8s-endpoint-missing"]


def test_services_unknown_to_the_api_are_left_alone() -> None:
    table = IPVSTable(seed_table().info, (VirtualService(address="10.99.0.1", port=80),))
    findings = k8s_findings(table, NAMES)
    assert {f.check for f in findings} == {"k8s-service-missing"}
    assert len(findings) == 8  # kubernetes 1 + kube-dns 3 + web 1 + cart (cluster, external, LB) 3
    assert not any("10.99.0.1" in f.subject for f in findings)


def test_findings_filtered_by_check_id() -> None:
    only = k8s_findings(seed_table(), NAMES, checks=("k8s-endpoint-missing",))
    assert {f.check for f in only} == {"k8s-endpoint-missing"}
