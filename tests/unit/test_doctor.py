"""Every IPVS-mode (and every-mode) doctor check: quiet on the healthy IPVS node, firing (alone)
on its broken case.  The iptables/nftables checks and mode leftovers: test_doctor_modes.py."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kpctl.core.doctor import CHECKS, run_checks, select_checks
from kpctl.core.ipset_save import parse_save as parse_ipsets
from kpctl.core.iptables_save import parse_save as parse_rules
from kpctl.errors import InvalidInput
from kpctl.model.doctor import NodeState
from kpctl.model.ipset import IPSet
from kpctl.model.ipvs import IPVSTable, RealServer, Timeouts, VirtualService
from kpctl.model.links import Link
from tests import doctor_node
from tests.cli_helpers import kpctl


def healthy(rules: str = doctor_node.RULES, ipsets: str = doctor_node.IPSETS, **changes: object) -> NodeState:
    state = NodeState(
        ipvs=doctor_node.ipvs_table(),
        timeouts=doctor_node.TIMEOUTS,
        links=doctor_node.links(),
        ipsets=tuple(parse_ipsets(ipsets)),
        iptables={"ipv4": {"nft": parse_rules(rules, "ipv4", "nft")}},
        sysctls=dict(doctor_node.SYSCTLS),
    )
    return dataclasses.replace(state, **changes)  # type: ignore[arg-type]


def fired(state: NodeState) -> set[str]:
    return {f.check for f in run_checks(state, select_checks([])).findings}


def with_sysctl(name: str, value: str) -> NodeState:
    return healthy(sysctls={**doctor_node.SYSCTLS, name: value})


def with_vips(*addresses: str) -> NodeState:
    links = tuple(Link(link.name, link.kind, link.state, addresses) if link.name == "kube-ipvs0" else link
                  for link in doctor_node.links())
    return healthy(links=links)


def with_services(edit: Callable[[list[VirtualService]], None]) -> NodeState:
    services = list(doctor_node.services())
    edit(services)
    return healthy(ipvs=IPVSTable(info=doctor_node.ipvs_table().info, services=tuple(services)))


def set_servers(index: int, *servers: RealServer) -> Callable[[list[VirtualService]], None]:
    def edit(services: list[VirtualService]) -> None:
        services[index] = services[index].with_servers(tuple(servers))
    return edit


IPVS_NODE_CHECKS = tuple(c.id for c in CHECKS.values() if not c.modes or "ipvs" in c.modes)


def test_healthy_node_has_no_findings() -> None:
    report = run_checks(healthy(), select_checks([]))
    assert report.findings == ()
    assert report.mode == "ipvs"
    assert report.checks_run == IPVS_NODE_CHECKS
    assert set(report.not_applicable) == set(CHECKS) - set(IPVS_NODE_CHECKS)
    assert "iptables-svc-without-sep" in report.not_applicable and "nft-table-missing" in report.not_applicable


BROKEN: dict[str, Callable[[], NodeState]] = {
    "vip-missing": lambda: with_vips("10.254.0.2/32", "203.0.113.20/32"),
    "vip-orphan": lambda: with_vips("10.254.0.1/32", "10.254.0.2/32", "203.0.113.20/32", "10.254.9.9/32"),
    "clusterip-ipset-missing": lambda: healthy(ipsets=doctor_node.IPSETS.replace("add KUBE-CLUSTER-IP 10.254.0.1,tcp:443\n", "")),
    "ipset-orphan-member": lambda: healthy(ipsets=doctor_node.IPSETS + "add KUBE-CLUSTER-IP 10.254.0.99,tcp:80\n"),
    "service-no-servers": lambda: with_services(set_servers(0)),
    "server-weight0-drained": lambda: with_services(set_servers(1, RealServer("172.30.2.7", 53, weight=1),
                                                                RealServer("172.30.1.9", 53, weight=0))),
    "loopback-vip": lambda: with_services(lambda s: s.append(
        VirtualService(address="127.0.0.1", port=30080, servers=(RealServer("172.30.1.5", 8080),)))),
    "vs-conntrack": lambda: with_sysctl("net.ipv4.vs.conntrack", "0"),
    "sysctl-expire-nodest-conn": lambda: with_sysctl("net.ipv4.vs.expire_nodest_conn", "0"),
    "sysctl-expire-quiescent-template": lambda: with_sysctl("net.ipv4.vs.expire_quiescent_template", "0"),
    "ip-forward": lambda: with_sysctl("net.ipv4.ip_forward", "0"),
    "strict-arp": lambda: with_sysctl("net.ipv4.conf.all.arp_ignore", "0"),
    "forward-drop": lambda: healthy(rules=doctor_node.RULES.replace(
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD\n', "")),
    "iptables-hook-missing": lambda: healthy(rules=doctor_node.RULES.replace(
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n', "")),
    "iptables-backends-mixed": lambda: healthy(iptables={"ipv4": {
        "nft": parse_rules(doctor_node.RULES, "ipv4", "nft"),
        "legacy": parse_rules("*nat\n:POSTROUTING ACCEPT [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
                              "-A POSTROUTING -j KUBE-POSTROUTING\nCOMMIT\n", "ipv4", "legacy")}}),
    "ipset-near-maxelem": lambda: healthy(ipsets=doctor_node.IPSETS.replace(
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536",
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 3")),
    "ipvs-tcp-timeout": lambda: with_sysctl("net.ipv4.tcp_keepalive_time", "7200"),
    "conntrack-near-max": lambda: healthy(sysctls={**doctor_node.SYSCTLS, "net.netfilter.nf_conntrack_count": "245760",
                                                   "net.netfilter.nf_conntrack_max": "262144"}),
    "br-netfilter": lambda: healthy(links=doctor_node.links() + (Link("cni0", "bridge", "UP", ("172.30.1.1/24",)),)),
}


def test_every_ipvs_node_check_has_a_broken_case() -> None:
    leftovers = {i for i in IPVS_NODE_CHECKS if i.startswith("leftover-")}  # test_doctor_modes.py
    assert set(BROKEN) == set(IPVS_NODE_CHECKS) - leftovers


@pytest.mark.parametrize("check_id", sorted(BROKEN))
def test_check_fires_alone_on_its_broken_node(check_id: str) -> None:
    state = BROKEN[check_id]()
    assert fired(state) == {check_id}
    finding = next(f for f in run_checks(state, select_checks([check_id])).findings)
    assert finding.severity == CHECKS[check_id].severity
    assert finding.found and finding.why and finding.fix


def test_all_weight_zero_with_connections_is_no_servers_not_drained() -> None:
    state = with_services(set_servers(0, RealServer("172.30.1.5", 6443, weight=0, active_conns=3)))
    assert fired(state) == {"service-no-servers"}


def test_ipv6_forwarding_checked_only_with_ipv6_services() -> None:
    state = healthy(sysctls={**doctor_node.SYSCTLS, "net.ipv6.conf.all.forwarding": "0"})
    assert fired(state) == set()


def test_vip_missing_names_the_service_and_fix() -> None:
    finding = run_checks(BROKEN["vip-missing"](), select_checks(["vip-missing"])).findings[0]
    assert finding.subject == "10.254.0.1:443/tcp"
    assert "kpctl vip add 10.254.0.1" in finding.fix


def test_nodeport_on_node_address_is_not_a_missing_vip() -> None:
    # 10.1.0.8:30080 lives on node0, not kube-ipvs0: fine.
    assert "vip-missing" not in fired(healthy())


def test_conntrack_below_90_percent_and_bridge_with_netfilter_are_fine() -> None:
    state = healthy(sysctls={**doctor_node.SYSCTLS, "net.netfilter.nf_conntrack_count": "1000",
                             "net.netfilter.nf_conntrack_max": "262144", "net.bridge.bridge-nf-call-iptables": "1"},
                    links=doctor_node.links() + (Link("cni0", "bridge", "UP", ()),))
    assert fired(state) == set()


def test_bridge_nf_call_off_is_named() -> None:
    state = healthy(sysctls={**doctor_node.SYSCTLS, "net.bridge.bridge-nf-call-iptables": "0"},
                    links=doctor_node.links() + (Link("cni0", "bridge", "UP", ()),))
    finding = run_checks(state, select_checks(["br-netfilter"])).findings[0]
    assert "bridge-nf-call-iptables = 0" in finding.found and "(cni0)" in finding.found
    assert finding.fix == "modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1"


def test_missing_piece_skips_its_checks_with_one_info() -> None:
    state = healthy(ipvs=None, timeouts=None, unavailable={"ipvs": "the kernel has no IPVS"})
    report = run_checks(state, select_checks([]))
    assert [(f.check, f.severity, f.subject) for f in report.findings] == [("not-readable", "info", "ipvs")]
    assert "vip-missing" in report.findings[0].why
    assert report.errors == 0


def test_unknown_check_id_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="'no-such-check'"):
        select_checks(["vip-missing", "no-such-check"])


# --- the command on snapshots -----------------------------------------------------------------

def snapshot(path: Path, state: NodeState, ipsets: str = doctor_node.IPSETS, rules: str = doctor_node.RULES) -> str:
    assert state.ipvs is not None and state.links is not None
    document = {
        "format": "kpctl-snapshot", "version": 1,
        "ipvs": {**state.ipvs.to_dict(), "timeouts": (state.timeouts or Timeouts()).to_dict()},
        "links": [link.to_dict() for link in state.links],
        "ipsets": ipsets,
        "iptables": {"ipv4": {"nft": rules, "legacy": ""}},
        "sysctls": dict(state.sysctls),
        "nftables": None,  # read, none there
    }
    path.write_text(json.dumps(document))
    return str(path)


def test_doctor_on_healthy_snapshot_exits_0(tmp_path: Path) -> None:
    outcome = kpctl("--snapshot", snapshot(tmp_path / "ok.json", healthy()), "doctor", "-o", "json")
    assert outcome.exit_code == 0, outcome.stderr
    data = json.loads(outcome.stdout)
    assert data["findings"] == [] and data["errors"] == 0 and data["checks"] == list(IPVS_NODE_CHECKS)
    assert data["mode"]["active"] == "ipvs"


def test_doctor_on_broken_snapshot_exits_1_and_explains(tmp_path: Path) -> None:
    path = snapshot(tmp_path / "bad.json", with_sysctl("net.ipv4.vs.conntrack", "0"))
    outcome = kpctl("--snapshot", path, "doctor", "-o", "plain")
    assert outcome.exit_code == 1
    lines = outcome.stdout.splitlines()
    assert lines[0] == "SEVERITY\tCHECK\tSUBJECT\tFOUND"
    assert lines[1].startswith("error\tvs-conntrack\tnet.ipv4.vs.conntrack\tnet.ipv4.vs.conntrack = 0")
    assert len(lines) == 2


def test_doctor_warning_only_exits_0(tmp_path: Path) -> None:
    path = snapshot(tmp_path / "warn.json", with_sysctl("net.ipv4.tcp_keepalive_time", "7200"))
    outcome = kpctl("--snapshot", path, "doctor", "-o", "json")
    assert outcome.exit_code == 0
    assert [f["check"] for f in json.loads(outcome.stdout)["findings"]] == ["ipvs-tcp-timeout"]


def test_doctor_check_filter_and_unknown_id(tmp_path: Path) -> None:
    path = snapshot(tmp_path / "bad.json", with_sysctl("net.ipv4.ip_forward", "0"))
    assert kpctl("--snapshot", path, "doctor", "--check", "vip-missing").exit_code == 0
    assert kpctl("--snapshot", path, "doctor", "--check", "ip-forward").exit_code == 1
    outcome = kpctl("--snapshot", path, "doctor", "--check", "bogus")
    assert outcome.exit_code == 2 and "'bogus'" in outcome.stderr


def test_doctor_snapshot_without_sections_reports_what_was_skipped(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "sysctls": {"net.ipv4.ip_forward": "1"}}))
    outcome = kpctl("--snapshot", str(path), "doctor", "-o", "json")
    assert outcome.exit_code == 0, outcome.stderr
    data = json.loads(outcome.stdout)
    skipped = {f["subject"] for f in data["findings"] if f["check"] == "not-readable"}
    # No state at all: no mode, so only the every-mode checks were due; IPVS was never needed.
    assert data["mode"]["active"] == "none"
    assert skipped == {"links", "ipsets", "iptables", "nftables"}


def test_snapshot_section_null_without_reason_is_empty_not_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "nulls.json"
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "ipvs": None, "ipsets": None,
                                "iptables": None, "links": [], "sysctls": {"net.ipv4.ip_forward": "1"},
                                "nftables": None, "absent": {"nftables": "nft not found"}}))
    data = json.loads(kpctl("--snapshot", str(path), "doctor", "-o", "json").stdout)
    assert [(f["check"], f["found"]) for f in data["findings"]] == [
        ("not-readable", f"could not read nftables: snapshot {str(path)!r} has no nftables section (nft not found)")]


def test_ipset_model_used_is_the_parsed_one() -> None:
    assert all(isinstance(s, IPSet) for s in healthy().ipsets or ())


def test_list_checks_shows_every_id_with_severity() -> None:
    outcome = kpctl("doctor", "--list-checks", "-o", "json")
    assert outcome.exit_code == 0
    assert [(c["id"], c["severity"]) for c in json.loads(outcome.stdout)] == [
        (c.id, c.severity) for c in CHECKS.values()]
    assert len(CHECKS) >= 16 + 12
    modes = {c["id"]: c["modes"] for c in json.loads(outcome.stdout)}
    assert (modes["vip-missing"], modes["nft-table-missing"], modes["leftover-ipvs"]) == ("ipvs", "nftables", "any")


def test_text_format_has_found_why_fix(tmp_path: Path) -> None:
    path = snapshot(tmp_path / "bad.json", with_sysctl("net.ipv4.ip_forward", "0"))
    outcome = kpctl("--snapshot", path, "doctor", "-o", "text")
    assert outcome.exit_code == 1
    assert outcome.stdout.startswith("ERROR ip-forward: net.ipv4.ip_forward\n  found: net.ipv4.ip_forward = 0")
    assert "\n  why:   " in outcome.stdout and "\n  fix:   sysctl -w net.ipv4.ip_forward=1\n" in outcome.stdout


def test_doctor_parses_only_the_iptables_chains_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    # doctor parsed every rule of the node up front: 17 s on a 110,000-rule iptables-mode
    # node, for checks that read chain names and three chains.
    from kpctl.core import iptables_save

    parsed: list[str] = []
    real = iptables_save.parse_rule_body

    def counting(tokens: Any, lineno: int, chain: str, *rest: Any) -> Any:
        parsed.append(chain)
        return real(tokens, lineno, chain, *rest)

    monkeypatch.setattr(iptables_save, "parse_rule_body", counting)
    # An IPVS-mode node: its checks read KUBE-SERVICES, KUBE-POSTROUTING and FORWARD only. (In
    # iptables mode the dangling-jump and svc-without-sep checks read every nat rule's target.)
    outcome = kpctl("--snapshot", str(Path(__file__).parents[2] / "examples" / "seed-ipvs-node.json"),
                    "doctor", "-o", "json")
    assert outcome.exit_code in (0, 1), outcome.stderr
    assert '"findings"' in outcome.stdout
    assert parsed and set(parsed) <= {"KUBE-SERVICES", "KUBE-POSTROUTING", "FORWARD"}


def test_hooks_are_checked_only_in_rule_sets_kube_proxy_writes() -> None:
    """A rule set whose nat KUBE-SERVICES holds no rule (kubelet's chains, an untouched backend) has
    no hooks to miss; kube-proxy's own is checked whatever its family and backend, and a chain
    gone with its jump is named so."""
    kubelet_only = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-DROP - [0:0]\nCOMMIT\n"
    without_postrouting = "".join(line for line in doctor_node.RULES.replace("172.30.0.0/16", "fd00:30::/64")
                                  .splitlines(keepends=True) if "KUBE-POSTROUTING" not in line)
    state = healthy(iptables={"ipv4": {"nft": parse_rules(doctor_node.RULES, "ipv4", "nft")},
                              "ipv6": {"nft": parse_rules(kubelet_only, "ipv6", "nft"),
                                       "legacy": parse_rules(without_postrouting, "ipv6", "legacy")}})
    findings = run_checks(state, select_checks(["iptables-hook-missing"])).findings
    assert [(f.subject, f.found) for f in findings] == [
        ("ipv6/legacy nat POSTROUTING",
         "nat POSTROUTING does not jump to KUBE-POSTROUTING (KUBE-POSTROUTING does not exist) (ipv6, legacy)")]
    assert findings[0].fix.endswith('ip6tables-legacy -t nat -I POSTROUTING -m comment --comment '
                                    '"kubernetes postrouting rules" -j KUBE-POSTROUTING')


def test_k8s_checks_on_an_ipvs_node_with_an_empty_table_find_every_service_missing() -> None:
    from kpctl.cli.k8s import with_k8s_findings
    from kpctl.core.k8s_names import parse_kubectl_json

    fixture = Path(__file__).parent / "fixtures" / "k8s" / "services.json"
    names = parse_kubectl_json(fixture.read_text(), str(fixture))
    node = healthy(ipvs=IPVSTable(info=doctor_node.ipvs_table().info, services=()), mode="ipvs")
    report = with_k8s_findings(run_checks(node, []), node, names, ["k8s-service-missing"])
    missing = [f for f in report.findings if f.check == "k8s-service-missing"]
    assert report.checks_run == ("k8s-service-missing",) and len(missing) == 8  # every Service address


def test_kube_proxy_rules_left_unhooked_in_the_other_backend_are_a_stale_copy() -> None:
    """kube-proxy writes one backend: a copy of its rules in the other one whose jumps were all
    flushed reaches no packet; iptables-backends-mixed names it, the jumps are not to be put back.
    The same copy alone (no other backend hooked) is kube-proxy's own, and is reported."""
    unhooked = "".join(line for line in doctor_node.RULES.splitlines(keepends=True)
                       if not (line.startswith(("-A PREROUTING ", "-A OUTPUT ", "-A POSTROUTING "))
                               and "KUBE-" in line))
    both = healthy(iptables={"ipv4": {"nft": parse_rules(doctor_node.RULES, "ipv4", "nft"),
                                      "legacy": parse_rules(unhooked, "ipv4", "legacy")}})
    assert fired(both) == {"iptables-backends-mixed"}
    alone = healthy(iptables={"ipv4": {"legacy": parse_rules(unhooked, "ipv4", "legacy")}})
    findings = run_checks(alone, select_checks(["iptables-hook-missing"])).findings
    assert [f.subject for f in findings] == ["ipv4/legacy nat PREROUTING", "ipv4/legacy nat OUTPUT",
                                             "ipv4/legacy nat POSTROUTING"]
