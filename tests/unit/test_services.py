"""`kpctl services` on the bundled example snapshots: exact services, endpoints and chances per mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import kpctl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
K8S_FIXTURE = ROOT / "tests" / "unit" / "fixtures" / "k8s" / "services.json"


def _doc(snapshot: Path, *args: str) -> dict[str, Any]:
    out = kpctl("--snapshot", str(snapshot), "services", *args, "-o", "json")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _summary(doc: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {s["service"]: (s["mode"], s["kind"], s["verdict"], s["policy"], s["affinity_timeout"],
                           sorted((f"{e['address']}:{e['port']}", round(e["chance"], 3)) for e in s["endpoints"]))
            for s in doc["services"]}


def test_iptables_node_every_address_with_its_endpoints_and_chances() -> None:
    doc = _doc(EXAMPLES / "iptables-node.json")
    assert doc["read"] == ["iptables"] and doc["coexisting"] is False
    web = [("172.30.1.5:8080", 0.333), ("172.30.1.6:8080", 0.333), ("172.30.2.8:8080", 0.333)]
    assert _summary(doc) == {
        "10.254.0.1:443/tcp": ("iptables", "clusterIP", "dnat", "Cluster", None, [("10.0.0.10:6443", 1.0)]),
        "10.254.0.2:53/tcp": ("iptables", "clusterIP", "dnat", "Cluster", None, [("172.30.2.7:53", 1.0)]),
        "10.254.0.2:9153/tcp": ("iptables", "clusterIP", "dnat", "Cluster", None, [("172.30.2.7:9153", 1.0)]),
        "10.254.0.2:53/udp": ("iptables", "clusterIP", "dnat", "Cluster", None, [("172.30.2.7:53", 1.0)]),
        "10.254.0.50:80/tcp": ("iptables", "clusterIP", "reject", None, None, []),
        "10.254.199.160:8080/tcp": ("iptables", "clusterIP", "dnat", "Cluster", 10800, web),
        "10.254.199.161:8080/tcp": ("iptables", "clusterIP", "dnat", "Cluster", None, [("172.30.1.9:8080", 1.0)]),
        "203.0.113.10:80/tcp": ("iptables", "externalIP", "dnat", "Cluster", 10800, web),
        "*:30080/tcp": ("iptables", "nodePort", "dnat", "Cluster", 10800, web),
        "*:30081/tcp": ("iptables", "nodePort", "dnat", "Local", None, [("172.30.1.9:8080", 1.0)]),
        "*:30999/tcp": ("iptables", "nodePort", "reject", None, None, []),
    }
    by_address = {s["service"]: s for s in doc["services"]}
    assert by_address["10.254.199.160:8080/tcp"]["masquerade"] == "src !172.30.0.0/16"
    assert by_address["*:30080/tcp"]["masquerade"] == "all"
    assert by_address["10.254.199.160:8080/tcp"]["name"] == "default/web:http"
    # the statistic probabilities 1/3, then 1/2 of the rest, then the rest: each a third
    assert sum(e["chance"] for e in by_address["*:30080/tcp"]["endpoints"]) == pytest.approx(1.0, abs=1e-5)


def test_nftables_node_numgen_shares_affinity_and_no_endpoint_reject() -> None:
    doc = _doc(EXAMPLES / "nftables-node.json")
    assert doc["read"] == ["nftables"]
    assert _summary(doc) == {
        "10.96.0.1:443/tcp": ("nftables", "clusterIP", "dnat", "Cluster", None, [("192.168.56.10:6443", 1.0)]),
        "10.96.0.10:53/udp": ("nftables", "clusterIP", "dnat", "Cluster", None, [("10.244.1.3:53", 1.0)]),
        "10.96.100.10:80/tcp": ("nftables", "clusterIP", "dnat", "Cluster", None,
                                [("10.244.1.5:8080", 0.333), ("10.244.2.7:8080", 0.333), ("10.244.2.8:8080", 0.333)]),
        "10.96.100.20:80/tcp": ("nftables", "clusterIP", "dnat", "Cluster", 10800,
                                [("10.244.1.21:8080", 0.5), ("10.244.2.22:8080", 0.5)]),
        "10.96.100.30:80/tcp": ("nftables", "clusterIP", "reject", None, None, []),
    }
    names = {s["service"]: s["name"] for s in doc["services"]}
    assert names["10.96.100.20:80/tcp"] == "default/sticky:http" and names["10.96.100.30:80/tcp"] == "default/empty:http"


def test_ipvs_node_weight_shares_scheduler_and_masquerade_from_the_sets() -> None:
    doc = _doc(EXAMPLES / "seed-ipvs-node.json")
    assert doc["read"] == ["ipvs"]
    summary = _summary(doc)
    assert summary["10.254.199.160:8080/tcp"] == (
        "ipvs", "clusterIP", "dnat", None, None, [("172.30.22.4:8080", 0.5), ("172.30.78.4:8080", 0.5)])
    assert set(summary) == {"10.254.0.1:443/tcp", "10.254.0.2:53/tcp", "10.254.0.2:9153/tcp", "10.254.0.2:53/udp",
                            "10.254.199.160:8080/tcp"}
    web = next(s for s in doc["services"] if s["service"] == "10.254.199.160:8080/tcp")
    assert web["scheduler"] == "rr" and web["masquerade"] == "src !172.30.0.0/16"
    assert [e["weight"] for e in web["endpoints"]] == [1, 1]


def test_two_modes_coexisting_are_both_listed_and_said(tmp_path: Path) -> None:
    """A node switched from IPVS to nftables mode without clean-up."""
    ipvs = json.loads((EXAMPLES / "seed-ipvs-node.json").read_text())
    nft = json.loads((EXAMPLES / "nftables-node.json").read_text())
    ipvs["nftables"] = nft["nftables"]
    del ipvs["mode"]
    path = tmp_path / "switched.json"
    path.write_text(json.dumps(ipvs))
    out = kpctl("--snapshot", str(path), "services", "-o", "json")
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["read"] == ["nftables", "ipvs"] and doc["coexisting"] is True
    assert {s["mode"] for s in doc["services"]} == {"ipvs", "nftables"}
    assert "coexists (nftables, ipvs)" in out.stderr
    plain = kpctl("--snapshot", str(path), "services", "-o", "plain")
    assert "\tipvs\t" in plain.stdout and "\tnftables\t" in plain.stdout


@pytest.mark.parametrize("example", ["iptables-node.json", "seed-ipvs-node.json"])
def test_rules_no_built_in_chain_jumps_to_are_noted(tmp_path: Path, example: str) -> None:
    """A firewall reload flushed nat POSTROUTING: the listing is still the rules', a note says what
    no longer reaches them."""
    node = json.loads((EXAMPLES / example).read_text())
    assert _doc(EXAMPLES / example)["notes"] == []
    rules = node["iptables"]["ipv4"]["nft"]
    jump = '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING\n'
    assert jump in rules
    node["iptables"]["ipv4"]["nft"] = rules.replace(jump, "")
    path = tmp_path / "flushed.json"
    path.write_text(json.dumps(node))
    out = kpctl("--snapshot", str(path), "services", "-o", "json")
    note = ("nat POSTROUTING does not jump to KUBE-POSTROUTING (ipv4, nft): packets kube-proxy marked 0x4000 "
            "for masquerading leave with their source unchanged (kpctl doctor --check iptables-hook-missing)")
    assert (out.exit_code, json.loads(out.stdout)["notes"], out.stderr) == (0, [note], f"kpctl: note: {note}\n")


def test_one_service_and_its_node_port_on_a_local_address() -> None:
    doc = _doc(EXAMPLES / "nftables-node.json", "10.96.0.10:53/UDP")
    assert [s["service"] for s in doc["services"]] == ["10.96.0.10:53/udp"]
    node = json.loads((EXAMPLES / "iptables-node.json").read_text())
    local = next(a.split("/")[0] for link in node["links"] for a in link["addresses"] if not a.startswith("127."))
    doc = _doc(EXAMPLES / "iptables-node.json", f"{local}:30080")
    assert [s["service"] for s in doc["services"]] == ["*:30080/tcp"]


@pytest.mark.parametrize("node", ["iptables-node.json", "nftables-node.json", "seed-ipvs-node.json"])
def test_one_service_is_its_entry_of_the_whole_listing(node: str) -> None:
    every = _doc(EXAMPLES / node)["services"]
    for asked in {s["service"] for s in every if not s["service"].startswith("*")}:
        assert _doc(EXAMPLES / node, asked)["services"] == [s for s in every if s["service"] == asked]


def test_one_service_follows_only_its_own_chains(tmp_path: Path) -> None:
    # another service's chain holds a rule no reader takes: the whole listing fails on it, one
    # service's does not read it
    node = json.loads((EXAMPLES / "iptables-node.json").read_text())
    saved = node["iptables"]["ipv4"]["nft"]
    broken = "-A KUBE-SVC-JD5MR3NA4I4DYORP -m comment --comment"
    assert broken in saved
    node["iptables"]["ipv4"]["nft"] = saved.replace(broken, "-A KUBE-SVC-JD5MR3NA4I4DYORP -s 10.0.0.300 -m comment --comment", 1)
    path = tmp_path / "node.json"
    path.write_text(json.dumps(node))
    whole = kpctl("--snapshot", str(path), "services")
    assert whole.exit_code == 2 and "10.0.0.300" in whole.stderr
    one = kpctl("--snapshot", str(path), "services", "10.254.0.2:53/tcp", "-o", "json")
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["services"] == _doc(EXAMPLES / "iptables-node.json", "10.254.0.2:53/tcp")["services"]


@pytest.mark.parametrize("bad", ["10.96.0.10", "10.96.0.10:99999", "10.96.0.10:53/icmp", "fwmark:5", "nope:80"])
def test_bad_service_is_exit_2_with_one_line(bad: str) -> None:
    out = kpctl("--snapshot", str(EXAMPLES / "nftables-node.json"), "services", bad)
    assert out.exit_code == 2 and out.stderr.startswith("kpctl: error: ") and out.stderr.count("\n") == 1
    assert out.stdout == ""


def test_unknown_service_is_exit_3() -> None:
    out = kpctl("--snapshot", str(EXAMPLES / "nftables-node.json"), "services", "10.96.0.10:53/tcp")
    assert out.exit_code == 3 and "not implemented on this node" in out.stderr


def test_k8s_join_names_and_reports_missing_endpoints_with_exit_1() -> None:
    out = kpctl("--snapshot", str(EXAMPLES / "seed-ipvs-node.json"), "services", "--services", str(K8S_FIXTURE),
                "-o", "json")
    assert out.exit_code == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["drift"] is True and doc["k8s"] == str(K8S_FIXTURE)
    web = next(s for s in doc["services"] if s["service"] == "10.254.199.160:8080/tcp")
    assert web["name"] == "shop/web:http" and web["missing_endpoints"] == ["172.30.22.9:8080"]
    assert all(e["drift"] is None for e in web["endpoints"])
    clean = [s for s in doc["services"] if s["service"] != "10.254.199.160:8080/tcp"]
    assert all(not s["missing_endpoints"] and all(e["drift"] is None for e in s["endpoints"]) for s in clean)


def _k8s_list(address: str, port: int, endpoints: list[str]) -> dict[str, Any]:
    return {"kind": "List", "items": [
        {"kind": "Service", "metadata": {"namespace": "default", "name": "web"},
         "spec": {"type": "ClusterIP", "clusterIP": address, "ports": [{"name": "http", "port": port,
                                                                        "protocol": "TCP"}]}},
        {"kind": "EndpointSlice", "metadata": {"namespace": "default", "name": "web-x",
                                               "labels": {"kubernetes.io/service-name": "web"}},
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in endpoints]}]}


def test_k8s_join_stale_endpoint_in_the_nft_rules(tmp_path: Path) -> None:
    path = tmp_path / "svc.json"
    path.write_text(json.dumps(_k8s_list("10.96.100.10", 80, ["10.244.1.5", "10.244.2.7", "10.244.3.3"])))
    out = kpctl("--snapshot", str(EXAMPLES / "nftables-node.json"), "services", "10.96.100.10:80",
                "--services", str(path), "-o", "plain")
    assert out.exit_code == 1
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    assert lines[0][-1] == "DRIFT"
    drift = {row[5]: row[-1] for row in lines[1:]}
    assert drift == {"10.244.1.5:8080": "-", "10.244.2.7:8080": "-", "10.244.2.8:8080": "stale",
                     "10.244.3.3:8080": "missing"}


def test_no_drift_is_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "svc.json"
    path.write_text(json.dumps(_k8s_list("10.96.100.10", 80, ["10.244.1.5", "10.244.2.7", "10.244.2.8"])))
    out = kpctl("--snapshot", str(EXAMPLES / "nftables-node.json"), "services", "10.96.100.10:80/tcp",
                "--services", str(path), "-o", "json")
    assert out.exit_code == 0 and json.loads(out.stdout)["drift"] is False


def test_ipv6_iptables_and_nftables_services() -> None:
    from kpctl.core.iptables_save import parse_save
    from kpctl.core.services.iptables import read_ruleset
    from kpctl.core.services.nftables import read_nftables

    rules = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
-A KUBE-SERVICES -d fd00:10::1/128 -p sctp -m comment --comment "default/s:x cluster IP" -m sctp --dport 9000 -j KUBE-SVC-A
-A KUBE-SVC-A -m statistic --mode random --probability 0.25000000000 -j KUBE-SEP-A
-A KUBE-SVC-A -j KUBE-SEP-B
-A KUBE-SEP-A -p sctp -m sctp -j DNAT --to-destination [fd00:20::1]:9000
-A KUBE-SEP-B -p sctp -m sctp -j DNAT --to-destination [fd00:20::2]:9000
COMMIT
"""
    (service,) = read_ruleset(parse_save(rules, family="ipv6"))
    assert (service.address_text, service.family) == ("[fd00:10::1]:9000/sctp", "inet6")
    assert [(e.address, e.port, e.chance) for e in service.endpoints] == [
        ("fd00:20::1", 9000, 0.25), ("fd00:20::2", 9000, 0.75)]
    nft = {"nftables": [
        {"table": {"family": "ip6", "name": "kube-proxy"}},
        {"map": {"family": "ip6", "table": "kube-proxy", "name": "service-ips", "map": "verdict",
                 "elem": [[{"concat": ["fd00:10::a", "udp", 53]}, {"goto": {"target": "service-X-ns/dns/udp/dns"}}]]}},
        {"chain": {"family": "ip6", "table": "kube-proxy", "name": "service-X-ns/dns/udp/dns"}},
        {"rule": {"family": "ip6", "table": "kube-proxy", "chain": "service-X-ns/dns/udp/dns", "expr": [
            {"vmap": {"key": {"numgen": {"mode": "random", "mod": 2}}, "data": {"set": [
                [0, {"goto": {"target": "endpoint-1"}}], [1, {"goto": {"target": "endpoint-2"}}]]}}}]}},
        {"rule": {"family": "ip6", "table": "kube-proxy", "chain": "endpoint-1",
                  "expr": [{"dnat": {"addr": "fd00:20::5", "port": 53}}]}},
        {"rule": {"family": "ip6", "table": "kube-proxy", "chain": "endpoint-2",
                  "expr": [{"dnat": {"addr": "fd00:20::6", "port": 53}}]}}]}
    (service,) = read_nftables(nft)
    assert (service.address_text, service.name, service.kind) == ("[fd00:10::a]:53/udp", "ns/dns:dns", "external")
    assert [(e.address, e.chance) for e in service.endpoints] == [("fd00:20::5", 0.5), ("fd00:20::6", 0.5)]


def test_plain_and_wide_columns_and_the_mode_title() -> None:
    snapshot = str(EXAMPLES / "iptables-node.json")
    plain = kpctl("--snapshot", snapshot, "services", "10.254.0.50:80", "-o", "plain")
    assert plain.stdout.splitlines() == [
        "SERVICE\tMODE\tKIND\tNAME\tPOLICY\tENDPOINT\tCHANCE",
        "10.254.0.50:80/tcp\tiptables\tclusterIP\tdefault/no-endpoints:http\t-\t-\treject"]
    wide = kpctl("--snapshot", snapshot, "services", "10.254.199.160:8080", "-o", "wide")
    lines = wide.stdout.splitlines()
    assert "mode iptables (configured mode iptables)" in lines[0]
    assert lines[1].split() == ["SERVICE", "MODE", "KIND", "NAME", "POLICY", "AFFINITY", "SCHEDULER", "MASQUERADE",
                                "ENDPOINT", "CHANCE"]
    assert lines[2].split() == ["10.254.199.160:8080/tcp", "iptables", "clusterIP", "default/web:http", "Cluster",
                                "10800s", "random", "src", "!172.30.0.0/16", "172.30.1.5:8080", "33.3%"]
