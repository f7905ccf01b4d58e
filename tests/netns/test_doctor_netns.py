"""`kpctl doctor` live on the host kernel inside a throwaway namespace: no IPVS here, so the
IPVS checks are reported as skipped while the ipset, iptables and sysctl checks run for real."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import doctor_node
from tests.cli_helpers import kpctl
from tests.k8s_fixture import kubectl_of
from tests.netns.conftest import run_in


def load_kube_state(ns: str) -> None:
    run_in(ns, "ipset", "restore", input=doctor_node.IPSETS)
    run_in(ns, "iptables-nft-restore", input=doctor_node.RULES)
    run_in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def doctor(ns: str) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    outcome = kpctl("--netns", ns, "doctor", "-o", "json")
    assert outcome.stderr == ""
    return outcome.exit_code, json.loads(outcome.stdout)["findings"]


def test_kube_shaped_namespace_is_clean_apart_from_missing_ipvs(netns: str) -> None:
    load_kube_state(netns)
    status, findings = doctor(netns)
    assert status == 0, findings
    assert [(f["check"], f["severity"], f["subject"]) for f in findings] == [("not-readable", "info", "ipvs")]


def test_live_breakages_are_found(netns: str) -> None:
    load_kube_state(netns)
    run_in(netns, "iptables-nft", "-D", "FORWARD", "-m", "comment", "--comment", "kubernetes forwarding rules",
           "-j", "KUBE-FORWARD")
    run_in(netns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    run_in(netns, "ipset", "create", "KUBE-TEST-FULL", "hash:ip", "maxelem", "2")
    run_in(netns, "ipset", "add", "KUBE-TEST-FULL", "10.9.9.1")
    run_in(netns, "ipset", "add", "KUBE-TEST-FULL", "10.9.9.2")
    status, findings = doctor(netns)
    assert status == 1
    assert {f["check"] for f in findings} == {"forward-drop", "ip-forward", "ipset-near-maxelem", "not-readable"}
    full = next(f for f in findings if f["check"] == "ipset-near-maxelem")
    assert full["subject"] == "KUBE-TEST-FULL" and "2 of maxelem 2" in full["found"]
    only = kpctl("--netns", netns, "doctor", "--check", "ipset-near-maxelem")
    assert only.exit_code == 0  # a warning alone does not fail


# ------------------------------------------------------------------ iptables and nftables modes
# kube-proxy's rules as written by kube-proxy itself (examples/sources), loaded with the reference
# tools into a namespace; then one thing is broken at a time, as an operator or a crash would.

SOURCES = Path(__file__).resolve().parents[2] / "examples" / "sources"
WEB_SVC = "service-HVFWP5L3-default/web/tcp/http"
K8S_SVC = "service-2QRHZV4L-default/kubernetes/tcp/https"


def load_iptables_mode(ns: str) -> None:
    run_in(ns, "iptables-nft-restore", input=(SOURCES / "iptables.rules").read_text())
    # kube-proxy sets both itself (localhost NodePorts are on in these rules).
    run_in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=1")


def load_nftables_mode(ns: str) -> None:
    run_in(ns, "nft", "-f", str(SOURCES / "nftables.nft"))
    run_in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def report(ns: str, tmp_path: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    """doctor live in NS, and the same from a snapshot of NS: both must agree."""
    outcome = kpctl("--netns", ns, "doctor", "-o", "json")
    assert outcome.stderr == "", outcome.stderr
    saved = tmp_path / f"{ns}.json"
    assert kpctl("--netns", ns, "snapshot", "save", str(saved)).exit_code == 0
    again = kpctl("--snapshot", str(saved), "doctor", "-o", "json")
    live, from_snapshot = json.loads(outcome.stdout), json.loads(again.stdout)
    assert (again.exit_code, from_snapshot["findings"], from_snapshot["mode"]) == (
        outcome.exit_code, live["findings"], live["mode"])
    return outcome.exit_code, live


def problems(data: dict) -> set[str]:  # type: ignore[type-arg]
    """The ids of the error and warning findings (info: IPVS is not readable on this host kernel)."""
    return {f["check"] for f in data["findings"] if f["severity"] != "info"}


def test_iptables_mode_namespace_is_healthy(netns: str, tmp_path: Path) -> None:
    load_iptables_mode(netns)
    status, data = report(netns, tmp_path)
    assert (status, data["mode"]["active"], data["findings"]) == (0, "iptables", [])
    assert "iptables-svc-without-sep" in data["checks"] and "vip-missing" in data["not_applicable"]


def test_iptables_mode_deleted_sep_chain_is_found(netns: str, tmp_path: Path) -> None:
    load_iptables_mode(netns)
    run_in(netns, "iptables-nft", "-t", "nat", "-D", "KUBE-SVC-NPX46M4PTMTKRN6Y", "-m", "comment", "--comment",
           "default/kubernetes:https -> 10.0.0.10:6443", "-j", "KUBE-SEP-IT2ZTR26TO4XFPTO")
    run_in(netns, "iptables-nft", "-t", "nat", "-F", "KUBE-SEP-IT2ZTR26TO4XFPTO")
    run_in(netns, "iptables-nft", "-t", "nat", "-X", "KUBE-SEP-IT2ZTR26TO4XFPTO")
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"iptables-svc-without-sep"})
    assert data["findings"][0]["subject"] == "nat/KUBE-SVC-NPX46M4PTMTKRN6Y"


def test_iptables_mode_unhooked_no_endpoint_rejects_are_found(netns: str, tmp_path: Path) -> None:
    load_iptables_mode(netns)
    run_in(netns, "iptables-nft", "-D", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-m", "comment",
           "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"iptables-no-endpoints-not-rejected"})
    assert "but OUTPUT does not jump to it" in data["findings"][0]["found"]


def test_iptables_mode_route_localnet_off_is_found(netns: str, tmp_path: Path) -> None:
    load_iptables_mode(netns)
    run_in(netns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=0")
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (0, {"route-localnet"})  # a warning: exit 0


def test_iptables_mode_flushed_hooks_are_found_and_their_fix_puts_them_back(netns: str, tmp_path: Path) -> None:
    load_iptables_mode(netns)
    before = run_in(netns, "iptables-nft-save").stdout
    # what a firewall reload does to kube-proxy's jumps (the built-in chains flushed), and a
    # loadBalancerSourceRanges rule in KUBE-PROXY-FIREWALL, left unreachable from FORWARD
    run_in(netns, "iptables-nft", "-t", "nat", "-F", "PREROUTING")
    run_in(netns, "iptables-nft", "-A", "KUBE-PROXY-FIREWALL", "-d", "203.0.113.9/32", "-j", "DROP")
    run_in(netns, "iptables-nft", "-D", "FORWARD", "-m", "conntrack", "--ctstate", "NEW", "-m", "comment",
           "--comment", "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL")
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"iptables-hook-missing"})
    assert [f["subject"] for f in data["findings"]] == ["ipv4/nft nat PREROUTING", "ipv4/nft filter FORWARD"]
    for finding in data["findings"]:  # the command each fix names, run as it is printed
        run_in(netns, *shlex.split(finding["fix"].split("by hand: ", 1)[1]))
    status, data = report(netns, tmp_path)
    assert (status, data["findings"]) == (0, [])
    # each jump is back as kube-proxy wrote it
    after = run_in(netns, "iptables-nft-save").stdout
    for line in ('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
                 '-j KUBE-PROXY-FIREWALL'):
        assert line in before and line in after


def test_nftables_mode_namespace_is_healthy(netns: str, tmp_path: Path) -> None:
    load_nftables_mode(netns)
    status, data = report(netns, tmp_path)
    assert (status, data["mode"]["active"], data["findings"]) == (0, "nftables", [])


def test_nftables_mode_flushed_service_chain_is_found(netns: str, tmp_path: Path) -> None:
    load_nftables_mode(netns)
    run_in(netns, "nft", "flush", "chain", "ip", "kube-proxy", WEB_SVC)
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"nft-service-without-endpoint"})
    assert data["findings"][0]["subject"] == f"ip kube-proxy chain {WEB_SVC}"


def test_nftables_mode_removed_service_element_and_chain_is_found(netns: str, tmp_path: Path) -> None:
    load_nftables_mode(netns)
    run_in(netns, "nft", "delete", "element", "ip", "kube-proxy", "service-ips", "{ 10.96.0.1 . tcp . 443 }")
    run_in(netns, "nft", "flush", "chain", "ip", "kube-proxy", K8S_SVC)
    run_in(netns, "nft", "delete", "chain", "ip", "kube-proxy", K8S_SVC)
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"nft-cluster-ip-unserved"})
    assert [f["subject"] for f in data["findings"]] == ["ip kube-proxy cluster-ips 10.96.0.1"]


def test_nftables_mode_flushed_map_is_found(netns: str, tmp_path: Path) -> None:
    load_nftables_mode(netns)
    run_in(netns, "nft", "flush", "map", "ip", "kube-proxy", "service-ips")
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"nft-cluster-ip-unserved"})
    assert len(data["findings"]) == 4  # every ClusterIP but the one in no-endpoint-services


def test_nftables_mode_missing_masquerading_chain_is_found(netns: str, tmp_path: Path) -> None:
    load_nftables_mode(netns)
    run_in(netns, "nft", "flush", "chain", "ip", "kube-proxy", "nat-postrouting")
    run_in(netns, "nft", "flush", "chain", "ip", "kube-proxy", "masquerading")
    run_in(netns, "nft", "delete", "chain", "ip", "kube-proxy", "masquerading")
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (1, {"nft-table-incomplete"})
    assert data["findings"][0]["found"] == "ip kube-proxy lacks chain masquerading"


def test_nftables_mode_unhooked_cluster_ips_check_is_found(netns: str, tmp_path: Path) -> None:
    load_nftables_mode(netns)
    run_in(netns, "nft", "flush", "chain", "ip", "kube-proxy", "filter-output-post-dnat")
    listing = run_in(netns, "nft", "-a", "list", "chain", "ip", "kube-proxy", "filter-forward").stdout
    handle = next(line.split("# handle ")[1].strip() for line in listing.splitlines()
                  if "jump cluster-ips-check" in line)
    run_in(netns, "nft", "delete", "rule", "ip", "kube-proxy", "filter-forward", "handle", handle)
    status, data = report(netns, tmp_path)
    assert (status, problems(data)) == (0, {"nft-cluster-ips-check"})


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_kubernetes_drift_is_found_live_in_every_mode(netns: str, tmp_path: Path, mode: str) -> None:
    (load_iptables_mode if mode == "iptables" else load_nftables_mode)(netns)
    services = json.loads(kpctl("--netns", netns, "services", "-o", "json").stdout)["services"]
    api = kubectl_of(services)
    slices = [item for item in api["items"] if item["kind"] == "EndpointSlice"]
    gone = slices[0]["endpoints"].pop()["addresses"][0]  # a pod deleted since kube-proxy last synced
    kubectl = tmp_path / "kubectl.json"
    kubectl.write_text(json.dumps(api))
    outcome = kpctl("--netns", netns, "doctor", "--services", str(kubectl), "-o", "json")
    saved = tmp_path / "node.json"
    assert kpctl("--netns", netns, "snapshot", "save", str(saved)).exit_code == 0
    again = kpctl("--snapshot", str(saved), "doctor", "--services", str(kubectl), "-o", "json")
    live = json.loads(outcome.stdout)
    assert (outcome.exit_code, live["findings"]) == (again.exit_code, json.loads(again.stdout)["findings"])
    assert outcome.exit_code == 1 and live["mode"]["active"] == mode
    stale = [f for f in live["findings"] if f["check"] == "k8s-server-stale"]
    assert stale and {f["check"] for f in live["findings"]} == {"k8s-server-stale"}
    assert all(f["subject"].split(" -> ")[1].rsplit(":", 1)[0] == gone for f in stale)


def test_kubernetes_checks_without_a_readable_ipvs_table_say_so(netns: str) -> None:
    load_kube_state(netns)  # an IPVS-mode node's sets and rules; this kernel has no IPVS to read
    fixture = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "k8s" / "services.json"
    outcome = kpctl("--netns", netns, "doctor", "--services", str(fixture), "--check", "k8s-server-stale", "-o", "json")
    report = json.loads(outcome.stdout)
    assert (outcome.exit_code, report["mode"]["active"], report["checks"]) == (0, "ipvs", [])
    [finding] = report["findings"]
    assert (finding["check"], finding["severity"], finding["subject"]) == ("not-readable", "info", "ipvs")
    assert finding["why"].endswith("skipped: k8s-server-stale")


def test_ipvs_namespace_switched_to_nftables_names_the_leftovers(netns: str, tmp_path: Path) -> None:
    load_kube_state(netns)  # IPVS mode's sets and rules (the kernel here has no IPVS itself)
    load_nftables_mode(netns)
    status, data = report(netns, tmp_path)
    assert data["mode"]["active"] == "nftables"
    # IPVS mode's FORWARD policy DROP stays, and its KUBE-FORWARD accepts only marked and established
    # traffic: nftables mode's unmasqueraded Service connections are dropped there (a warning)
    assert (status, problems(data)) == (1, {"leftover-ipvs", "forward-drop"})
    finding = data["findings"][0]
    assert "ipsets: KUBE-CLUSTER-IP, " in finding["found"]
    assert " chains: " in finding["found"] and "filter/KUBE-IPVS-FILTER (ipv4/nft)" in finding["found"]
    assert finding["fix"].startswith("kube-proxy --cleanup (with mode: ipvs), or by hand: remove the jumps to the KUBE-*")
    assert "&& ipset destroy KUBE-CLUSTER-IP && " in finding["fix"]


def test_stale_nft_table_beside_iptables_mode_is_named(netns: str, tmp_path: Path) -> None:
    load_iptables_mode(netns)
    load_nftables_mode(netns)
    status, data = report(netns, tmp_path)
    # Both carry services and nothing says which kube-proxy runs: the newer mode is taken as the
    # one switched to (core/modes), so the iptables chains are the ones named as left behind.
    assert (status, data["mode"]["active"], problems(data)) == (1, "nftables", {"leftover-iptables"})


def test_nftables_mode_forward_drop_is_found_and_its_fix_lets_service_connections_through(
        netns: str, tmp_path: Path) -> None:
    """kube-proxy's nftables mode writes no KUBE-FORWARD: an iptables FORWARD policy DROP (what
    Docker sets) drops forwarded Service traffic unless that chain accepts it itself."""
    load_nftables_mode(netns)
    run_in(netns, "iptables-nft", "-P", "FORWARD", "DROP")
    status, data = report(netns, tmp_path)
    assert (status, [(f["check"], f["severity"]) for f in data["findings"]]) == (0, [("forward-drop", "warning")])
    fix = data["findings"][0]["fix"]
    command = fix[fix.index("iptables-nft -I"):fix.index(", or accept")]
    run_in(netns, *shlex.split(command))
    assert "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT\n" in run_in(
        netns, "iptables-nft-save").stdout
    status, data = report(netns, tmp_path)
    assert (status, data["mode"]["active"], data["findings"]) == (0, "nftables", [])


@pytest.mark.parametrize("load", [load_nftables_mode, load_iptables_mode])
def test_a_firewall_nft_forward_drop_is_found_and_its_fix_accepts_service_connections(
        netns: str, tmp_path: Path, load: Callable[[str], None]) -> None:
    load(netns)
    run_in(netns, "nft", "-f", "-", input=(
        "table inet fw {\n chain forward { type filter hook forward priority 0; policy drop;\n"
        "  iifname \"docker0\" accept\n }\n}\n"))
    status, data = report(netns, tmp_path)
    assert (status, [(f["check"], f["severity"], f["subject"]) for f in data["findings"]]) == (
        0, [("forward-drop", "warning", "inet fw chain forward")])
    fix = data["findings"][0]["fix"]
    run_in(netns, *shlex.split(fix[fix.index("nft insert"):fix.index(", or accept")]))
    assert "ct status dnat accept" in run_in(netns, "nft", "list", "chain", "inet", "fw", "forward").stdout
    status, data = report(netns, tmp_path)
    assert (status, data["findings"]) == (0, [])
