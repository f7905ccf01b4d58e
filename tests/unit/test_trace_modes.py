"""iptables, nftables and userspace mode nodes, and IPVS scheduler/refusal details."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from kpctl.backends.snapshot import load_snapshot
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace import ipvs as ipvs_step
from kpctl.core.trace.engine import trace
from kpctl.core.trace.request import build_packet, parse_origin
from kpctl.model.ipvs import SVC_F_PERSISTENT, RealServer, VirtualService
from kpctl.model.snapshot import NodeSnapshot
from kpctl.model.trace import Disposition, Packet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def node(name: str) -> NodeView:
    return NodeView(load_snapshot(str(EXAMPLES / name)))


def run(view: NodeView, service: str, origin: str = "node"):
    start = parse_origin(origin)
    return trace(view, build_packet(view, service, start), str(start), service)


# ---------------------------------------------------------------- iptables mode


def test_iptables_three_endpoints_one_third_each_with_hairpin_masquerade() -> None:
    result = run(node("iptables-node.json"), "10.254.199.160:8080", "pod:172.30.1.5")
    assert result.mode == "iptables"
    chances = {o.server: o.probability for o in result.outcomes}
    assert set(chances) == {"172.30.1.5:8080", "172.30.1.6:8080", "172.30.2.8:8080"}
    assert all(math.isclose(p or 0, 1 / 3, rel_tol=1e-6) for p in chances.values())
    masq = {o.server: o.masqueraded for o in result.outcomes}
    assert masq == {"172.30.1.5:8080": True, "172.30.1.6:8080": False, "172.30.2.8:8080": False}
    assert any("session affinity" in n for n in result.notes)


def test_iptables_service_without_endpoints_is_rejected() -> None:
    for origin in ("node", "pod:172.30.1.5"):
        result = run(node("iptables-node.json"), "10.254.0.50:80", origin)
        assert result.disposition is Disposition.REJECTED
        assert "has no endpoints" in result.outcomes[0].reason
        assert "icmp-port-unreachable" in result.outcomes[0].reason


def test_iptables_node_source_is_masqueraded_pod_source_is_not() -> None:
    view = node("iptables-node.json")
    assert run(view, "10.254.0.1:443").outcomes[0].server == "10.0.0.10:6443"
    from_pod = run(view, "10.254.0.1:443", "pod:172.30.1.7").outcomes[0]
    assert not from_pod.masqueraded
    external = run(view, "10.254.0.1:443", "external:198.51.100.1").outcomes[0]
    assert external.masqueraded  # ! -s 172.30.0.0/16 → KUBE-MARK-MASQ


def test_iptables_unknown_port_leaves_the_node_untranslated() -> None:
    result = run(node("iptables-node.json"), "10.254.0.1:80", "pod:172.30.1.5")
    assert result.disposition is Disposition.EXITS_NODE


# ---------------------------------------------------------------- nftables mode


def test_nftables_numgen_random_mod_3() -> None:
    result = run(node("nftables-node.json"), "10.96.100.10:80", "pod:10.244.1.9")
    assert result.mode == "nftables"
    assert {o.server for o in result.outcomes} == {"10.244.1.5:8080", "10.244.2.7:8080", "10.244.2.8:8080"}
    assert all(math.isclose(o.probability or 0, 1 / 3) for o in result.outcomes)
    assert all(not o.masqueraded for o in result.outcomes)


def test_nftables_no_endpoints_reject_and_wrong_port_reject() -> None:
    view = node("nftables-node.json")
    assert run(view, "10.96.100.30:80").disposition is Disposition.REJECTED
    wrong_port = run(view, "10.96.0.1:8443", "pod:10.244.1.9")
    assert wrong_port.disposition is Disposition.REJECTED
    assert "cluster-ips" in wrong_port.outcomes[0].reason


def test_nftables_external_client_is_masqueraded_and_affinity_noted() -> None:
    result = run(node("nftables-node.json"), "10.96.100.20:80", "external:203.0.113.7")
    assert len(result.outcomes) == 2 and all(o.masqueraded for o in result.outcomes)
    assert any("session affinity" in s.reason for s in result.steps if s.matched is False)


def test_nftables_udp_dns() -> None:
    result = run(node("nftables-node.json"), "10.96.0.10:53/udp", "pod:10.244.1.9")
    assert [o.server for o in result.outcomes] == ["10.244.1.3:53"]


# ---------------------------------------------------------------- userspace mode


def test_userspace_redirect_to_the_proxy_port() -> None:
    view = node("userspace-node.json")
    from_pod = run(view, "1.2.3.4:8888", "pod:10.1.0.8")
    assert from_pod.mode == "userspace"
    assert from_pod.disposition is Disposition.TO_LOCAL_STACK
    assert from_pod.outcomes[0].final is not None and from_pod.outcomes[0].final.dport == 32890
    assert "REDIRECT" in from_pod.outcomes[0].reason
    from_node = run(view, "1.2.3.4:8888")
    assert from_node.disposition is Disposition.TO_LOCAL_STACK
    assert from_node.outcomes[0].final is not None and from_node.outcomes[0].final.dst == "192.168.1.21"


# ---------------------------------------------------------------- IPVS details


def svc(*servers: RealServer, scheduler: str = "rr", **kw: object) -> VirtualService:
    return VirtualService(protocol="tcp", address="10.254.0.9", port=80, scheduler=scheduler, servers=servers,
                          **kw)  # type: ignore[arg-type]


PKT = Packet("172.30.1.5", 40000, "10.254.0.9", 80)


def test_ipvs_wrr_chances_follow_weights_and_weight_zero_is_never_picked() -> None:
    service = svc(RealServer("1.1.1.1", 80, weight=3), RealServer("1.1.1.2", 80, weight=1),
                  RealServer("1.1.1.3", 80, weight=0), scheduler="wrr")
    decision = ipvs_step.decide((service,), PKT)
    chances = {c.endpoint: c.probability for c in decision.candidates}
    assert chances == {"1.1.1.1:80": 0.75, "1.1.1.2:80": 0.25}
    assert all(c.exact for c in decision.candidates)


def test_ipvs_all_weight_zero_or_no_servers_is_port_unreachable() -> None:
    assert ipvs_step.decide((svc(RealServer("1.1.1.1", 80, weight=0)),), PKT).refusal
    assert ipvs_step.decide((svc(),), PKT).refusal


def test_ipvs_live_count_schedulers_are_not_exact() -> None:
    decision = ipvs_step.decide((svc(RealServer("1.1.1.1", 80), RealServer("1.1.1.2", 80), scheduler="lc"),), PKT)
    assert not any(c.exact for c in decision.candidates)


def test_ipvs_fwmark_service_is_looked_up_first() -> None:
    by_mark = VirtualService(protocol=None, address=None, port=0, fwmark=7, scheduler="rr",
                             servers=(RealServer("2.2.2.2", 80),))
    by_addr = svc(RealServer("1.1.1.1", 80))
    assert ipvs_step.decide((by_addr, by_mark), PKT.with_(mark=7)).service is by_mark
    assert ipvs_step.decide((by_addr, by_mark), PKT).service is by_addr


def test_ipvs_persistence_is_noted() -> None:
    decision = ipvs_step.decide((svc(RealServer("1.1.1.1", 80), flags=SVC_F_PERSISTENT | 2, timeout=10800),), PKT)
    assert any("persistent" in note and "10800" in note for note in decision.notes)


def test_seed_weight_zero_rejects_in_the_trace() -> None:
    view = node("seed-ipvs-node.json")
    sections = dict(view.snapshot.sections)
    ipvs = dict(sections["ipvs"])
    ipvs["services"] = [dict(s, servers=[dict(r, weight=0) for r in s["servers"]]) for s in ipvs["services"]]
    sections["ipvs"] = ipvs
    result = run(NodeView(NodeSnapshot(1, sections)), "10.254.0.1:443", "pod:172.30.22.5")
    assert result.disposition is Disposition.REJECTED
    assert "ICMP port unreachable" in result.outcomes[0].reason


def test_routing_without_a_route_is_no_route() -> None:
    view = node("seed-ipvs-node.json")
    sections = dict(view.snapshot.sections)
    sections["routes"] = {"local": sections["routes"]["local"], "main": []}
    result = run(NodeView(NodeSnapshot(1, sections)), "10.254.0.1:443", "pod:172.30.22.5")
    assert result.disposition is Disposition.NO_ROUTE


@pytest.mark.parametrize("example", ["seed-ipvs-node.json", "iptables-node.json", "nftables-node.json",
                                     "userspace-node.json"])
def test_trace_is_a_pure_function(example: str) -> None:
    view = node(example)
    service = {"seed-ipvs-node.json": "10.254.0.1:443", "iptables-node.json": "10.254.0.1:443",
               "nftables-node.json": "10.96.0.1:443", "userspace-node.json": "1.2.3.4:8888"}[example]
    first, second = run(view, service), run(node(example), service)
    assert first.to_dict() == second.to_dict()
    assert replace(first, notes=()).outcomes == second.outcomes


# ---------------------------------------------------------------- modern IPVS rules (KUBE-IPVS-FILTER)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def modern_ipvs_node() -> NodeView:
    """The seed node with today's kube-proxy IPVS rules and sets (tests/fixtures/kube-ipvs-mode.*)."""
    view = node("seed-ipvs-node.json")
    sections = dict(view.snapshot.sections)
    sections["iptables"] = {"ipv4": {"nft": (FIXTURES / "kube-ipvs-mode.rules").read_text(), "legacy": None}}
    sections["ipsets"] = (FIXTURES / "kube-ipvs-mode.ipset").read_text()
    return NodeView(NodeSnapshot(1, sections))


def test_kube_ipvs_filter_rejects_a_vip_port_without_service() -> None:
    result = run(modern_ipvs_node(), "10.254.0.1:80", "pod:172.30.22.5")
    assert result.disposition is Disposition.REJECTED
    assert "KUBE-IPVS-FILTER" in result.outcomes[0].reason
    steps = result.steps + result.outcomes[0].steps
    assert not any(s.stage == "ipvs" for s in steps)  # filter INPUT (priority 0) runs before IPVS (98)


def test_kube_ipvs_filter_lets_cluster_ip_ports_through() -> None:
    result = run(modern_ipvs_node(), "10.254.0.1:443", "pod:172.30.22.5")
    assert result.delivered and result.outcomes[0].server == "192.168.10.10:6443"
    returned = [s for s in result.steps if s.chain == "KUBE-IPVS-FILTER" and s.action == "RETURN"]
    assert returned and "KUBE-CLUSTER-IP" in (returned[0].rule or "")


def test_ipvs_local_real_server_from_the_node_is_masqueraded_through_lo() -> None:
    view = node("seed-ipvs-node.json")
    sections = dict(view.snapshot.sections)
    ipvs = dict(sections["ipvs"])
    ipvs["services"] = [dict(s, servers=[dict(r, address="192.168.10.11") for r in s["servers"]])
                        if s["port"] == 443 else s for s in ipvs["services"]]
    sections["ipvs"] = ipvs
    local = NodeView(NodeSnapshot(1, sections))
    from_node = run(local, "10.254.0.1:443")
    assert from_node.delivered and from_node.outcomes[0].server == "192.168.10.11:6443"
    # marked in nat OUTPUT (source is the VIP), MASQUERADE on lo picks the first global address
    assert from_node.outcomes[0].masqueraded and from_node.outcomes[0].final.src == "192.168.10.11"
    from_pod = run(local, "10.254.0.1:443", "pod:172.30.22.5")
    assert from_pod.delivered and not from_pod.outcomes[0].masqueraded


def test_a_bare_policy_drop_is_not_ignored() -> None:
    """Found in the VM: a FORWARD chain with no rules but policy DROP must drop forwarded packets."""
    view = node("nftables-node.json")
    sections = dict(view.snapshot.sections)
    sections["iptables"] = {"ipv4": {"nft": "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n"
                                            ":OUTPUT ACCEPT [0:0]\nCOMMIT\n", "legacy": None}}
    dropped = run(NodeView(NodeSnapshot(1, sections)), "10.96.100.10:80", "pod:10.244.1.9")
    assert dropped.disposition is Disposition.DROPPED
    assert all("policy" in o.reason for o in dropped.outcomes)
    # the node's own connections do not cross FORWARD
    assert run(NodeView(NodeSnapshot(1, sections)), "10.96.100.10:80").delivered


# ---------------------------------------------------------------- userspace queues (NFQUEUE, nft queue)


def _with_filter_output_rule(rule: str) -> NodeView:
    """The iptables example with ``rule`` first in filter OUTPUT."""
    view = node("iptables-node.json")
    sections = dict(view.snapshot.sections)
    rules = sections["iptables"]["ipv4"]["nft"]
    at = rules.index("\n-A ", rules.index("*filter")) + 1
    sections["iptables"] = {"ipv4": {"nft": rules[:at] + f"-A OUTPUT {rule}\n" + rules[at:], "legacy": None}}
    return NodeView(NodeSnapshot(1, sections))


def test_nfqueue_without_bypass_is_dropped_unless_a_listener_decides() -> None:
    result = run(_with_filter_output_rule("-p tcp -j NFQUEUE --queue-num 3"), "10.254.0.1:443")
    assert result.disposition is Disposition.DROPPED
    reason = result.outcomes[0].reason
    assert "queued to userspace in iptables filter OUTPUT" in reason and "--queue-num 3" in reason
    assert "with no program listening on the queue the kernel drops the packet" in reason


def test_nfqueue_with_bypass_is_followed_as_accepted() -> None:
    plain = run(node("iptables-node.json"), "10.254.0.1:443")
    bypass = run(_with_filter_output_rule("-p tcp -j NFQUEUE --queue-balance 0:3 --queue-bypass"), "10.254.0.1:443")
    assert bypass.disposition is plain.disposition is Disposition.DELIVERED
    assert [o.server for o in bypass.outcomes] == [o.server for o in plain.outcomes]
    step = next(s for s in bypass.steps if s.rule and "NFQUEUE" in s.rule)
    assert step.action.startswith("NFQUEUE to userspace queue 0:3 with bypass")


def _with_nft_output_queue(queue: dict) -> NodeView:
    """The nftables example with a `queue` statement first in its filter-output chain."""
    view = node("nftables-node.json")
    sections = dict(view.snapshot.sections)
    objects = list(sections["nftables"]["nftables"])
    at = next(i for i, o in enumerate(objects) if "chain" in o and o["chain"]["name"] == "filter-output") + 1
    objects.insert(at, {"rule": {"family": "ip", "table": "kube-proxy", "chain": "filter-output", "handle": 999,
                                 "expr": [{"queue": queue}]}})
    sections["nftables"] = {"nftables": objects}
    return NodeView(NodeSnapshot(1, sections))


def test_nft_queue_with_and_without_bypass() -> None:
    dropped = run(_with_nft_output_queue({"num": 2}), "10.96.0.1:443")
    assert dropped.disposition is Disposition.DROPPED
    assert "queued to userspace in nft kube-proxy/filter-output OUTPUT by: ip kube-proxy filter-output: queue to 2;" \
        in dropped.outcomes[0].reason
    followed = run(_with_nft_output_queue({"num": {"range": [1, 3]}, "flags": ["bypass", "fanout"]}), "10.96.0.1:443")
    assert followed.disposition is Disposition.DELIVERED
    assert any("queue to userspace queue 1-3 with bypass" in (s.reason or "") for s in followed.steps)


# ---------------------------------------------------------------- two nat chains at one hook


def _nft_node_with_iptables_nat(*prerouting: str, backend: str = "nft") -> NodeView:
    """The nftables example with an iptables nat table beside kube-proxy's (Docker's, a CNI's): of
    the nft backend, made after kube-proxy's table (a larger handle: its hooks run first)."""
    view = node("nftables-node.json")
    sections = dict(view.snapshot.sections)
    rules = "".join(f"-A PREROUTING {rule}\n" for rule in prerouting)
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":DOCKER - [0:0]\n" + rules + "COMMIT\n")
    sections["iptables"] = {"ipv4": {"nft": text if backend == "nft" else None,
                                     "legacy": text if backend == "legacy" else None}}
    if backend == "nft":  # iptables-nft's table as nft lists it
        sections["nftables"] = {"nftables": [*sections["nftables"]["nftables"],
                                             {"table": {"family": "ip", "name": "nat", "handle": 90}},
                                             {"chain": {"family": "ip", "table": "nat", "name": "PREROUTING",
                                                        "handle": 1, "type": "nat", "hook": "prerouting",
                                                        "prio": -100, "policy": "accept"}}]}
    return NodeView(NodeSnapshot(1, sections))


def test_a_nat_chain_that_translates_nothing_leaves_the_next_one_its_turn() -> None:
    """nf_nat_inet_fn consults a hook's nat chains in turn until one binds the connection."""
    result = run(_nft_node_with_iptables_nat("-m addrtype --dst-type LOCAL -j DOCKER"), "10.96.100.10:80",
                 "pod:10.244.1.9")
    assert {o.server for o in result.outcomes} == {"10.244.1.5:8080", "10.244.2.7:8080", "10.244.2.8:8080"}
    walked = result.steps + result.outcomes[0].steps
    assert [s.table for s in walked[:3]] == ["nat", "nat", "ip kube-proxy"]  # iptables-nft's, registered last, first


def test_a_nat_chain_that_translates_binds_the_connection_for_the_hook() -> None:
    dnat = "-d 10.96.100.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:9090"
    result = run(_nft_node_with_iptables_nat(dnat), "10.96.100.10:80", "pod:10.244.1.9")
    assert [o.server for o in result.outcomes] == ["10.244.1.5:9090"]
    walked = result.steps + result.outcomes[0].steps
    assert any(s.chain == "PREROUTING" and s.table == "nat" for s in walked)
    assert not any(s.chain == "nat-prerouting" for s in walked)
    # registered before kube-proxy's table (iptables-legacy's, at its module's first use: the
    # ruleset does not say when; taken as before), kube-proxy's chain runs first and binds
    result = run(_nft_node_with_iptables_nat(dnat, backend="legacy"), "10.96.100.10:80", "pod:10.244.1.9")
    assert {o.server for o in result.outcomes} == {"10.244.1.5:8080", "10.244.2.7:8080", "10.244.2.8:8080"}
    assert not any(s.chain == "PREROUTING" and s.table == "nat" for s in result.steps + result.outcomes[0].steps)
