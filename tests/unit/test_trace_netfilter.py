"""Rule-walk semantics on small hand-built rule sets: jumps, goto, RETURN, policies, negation,
set direction flags, mark arithmetic, statistic composition, conntrack, addrtype, multiport."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from kpctl.core.iptables_save import parse_save
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace.netfilter import ConnState, steps_of, walk
from kpctl.model.snapshot import NodeSnapshot
from kpctl.model.trace import Packet, TraceStep

PKT = Packet("172.30.1.5", 40000, "10.254.0.1", 443, "tcp", iif="cni0")


def view(**sections: object) -> NodeView:
    return NodeView(NodeSnapshot(1, dict(sections)))


def run(rules: str, chain: str = "PREROUTING", table: str = "nat", packet: Packet = PKT,
        node: NodeView | None = None, policy: str = "ACCEPT"):
    builtins = {"nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"), "filter": ("INPUT", "FORWARD", "OUTPUT")}
    words = [line.split() for line in rules.strip().splitlines()]
    users = sorted({w[i + 1] for w in words for i, token in enumerate(w[:-1])
                    if token in ("-A", "-j", "-g") and w[i + 1].startswith(("X", "KUBE"))})
    head = [f"*{table}"] + [f":{c} {policy} [0:0]" for c in builtins[table]] + [f":{u} - [0:0]" for u in users]
    ruleset = parse_save("\n".join(head + rules.strip().splitlines() + ["COMMIT"]) + "\n")
    return walk(ruleset, table, chain, chain, packet, ConnState(packet), node or view())


def test_jump_and_return_continue_in_the_caller() -> None:
    branches = run("""
-A PREROUTING -j X1
-A PREROUTING -j DROP
-A X1 -j RETURN
-A X1 -j ACCEPT
""")
    assert [b.verdict for b in branches] == ["DROP"]
    actions = [s.action for s in branches[0].steps]
    assert actions[:3] == ["jump X1", "RETURN", "DROP"]


def test_falling_off_a_user_chain_returns_to_the_caller() -> None:
    branches = run("""
-A PREROUTING -j X1
-A PREROUTING -j ACCEPT
-A X1 -p udp -j DROP
""")
    assert branches[0].verdict == "ACCEPT"
    assert any(s.action == "return to PREROUTING" for s in branches[0].steps)


def test_goto_does_not_return_to_the_chain_that_went() -> None:
    # X1 goes to X2; X2 falls off: back to PREROUTING (X1's caller), skipping X1's DROP.
    branches = run("""
-A PREROUTING -j X1
-A PREROUTING -j ACCEPT
-A X1 -g X2
-A X1 -j DROP
-A X2 -p udp -j DROP
""")
    assert branches[0].verdict == "ACCEPT"


def test_goto_from_builtin_then_fall_off_applies_the_builtin_policy() -> None:
    branches = run("""
-A INPUT -g X1
-A INPUT -j ACCEPT
-A X1 -p udp -j ACCEPT
""", chain="INPUT", table="filter", policy="DROP")
    assert branches[0].verdict == "DROP"


def test_return_in_builtin_chain_applies_policy() -> None:
    assert run("-A INPUT -j RETURN\n-A INPUT -j ACCEPT", chain="INPUT", table="filter",
               policy="DROP")[0].verdict == "DROP"


def test_policy_drop_when_nothing_matches() -> None:
    branches = run("-A FORWARD -p udp -j ACCEPT", chain="FORWARD", table="filter", policy="DROP")
    assert branches[0].verdict == "DROP" and branches[0].rule is None


@pytest.mark.parametrize("rule,verdict", [
    ("-A PREROUTING ! -s 172.30.0.0/16 -j DROP", "ACCEPT"),  # pod source: negation does not match
    ("-A PREROUTING -s 172.30.0.0/16 -j DROP", "DROP"),
    ("-A PREROUTING ! -d 10.254.0.1/32 -j DROP", "ACCEPT"),
    ("-A PREROUTING ! -p tcp -j DROP", "ACCEPT"),
    ("-A PREROUTING -p tcp ! --dport 443 -j DROP", "ACCEPT"),
    ("-A PREROUTING -p tcp --dport 400:500 -j DROP", "DROP"),
    ("-A PREROUTING -i cni+ -j DROP", "DROP"),
    ("-A PREROUTING ! -i cni0 -j DROP", "ACCEPT"),
    ("-A PREROUTING -p tcp -m multiport --dports 80,443 -j DROP", "DROP"),
    ("-A PREROUTING -p tcp -m multiport --dports 80,8443 -j DROP", "ACCEPT"),
    ("-A PREROUTING -m conntrack --ctstate NEW -j DROP", "DROP"),
    ("-A PREROUTING -m conntrack --ctstate RELATED,ESTABLISHED -j DROP", "ACCEPT"),
    ("-A PREROUTING -m conntrack ! --ctstate RELATED,ESTABLISHED -j DROP", "DROP"),
    ("-A PREROUTING -m state --state NEW -j DROP", "DROP"),
    ("-A PREROUTING -p tcp --syn -j DROP", "DROP"),
])
def test_matches_and_negation(rule: str, verdict: str) -> None:
    assert run(rule)[0].verdict == verdict


IPSETS = """create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.254.0.1,tcp:443
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add KUBE-LOOP-BACK 172.30.1.5,tcp:8080,172.30.1.5
create PODS hash:net family inet hashsize 1024 maxelem 65536
add PODS 172.30.0.0/16
add PODS 172.30.1.0/24 nomatch
create ALL list:set size 8
add ALL KUBE-CLUSTER-IP
"""


@pytest.mark.parametrize("flags,packet,hit", [
    ("dst,dst", PKT, True),
    ("src,dst", PKT, False),  # 172.30.1.5,tcp:443 is not a member
    ("dst,src", PKT, False),  # source port 40000
    ("dst", PKT, False),  # fewer flags than dimensions never match
    ("dst,dst", PKT.with_(protocol="udp"), False),
])
def test_set_direction_flags(flags: str, packet: Packet, hit: bool) -> None:
    branches = run(f"-A PREROUTING -m set --match-set KUBE-CLUSTER-IP {flags} -j DROP", packet=packet,
                   node=view(ipsets=IPSETS))
    assert (branches[0].verdict == "DROP") is hit


def test_set_three_dimensions_hairpin() -> None:
    hairpin = Packet("172.30.1.5", 40000, "172.30.1.5", 8080, "tcp")
    other = Packet("172.30.1.6", 40000, "172.30.1.5", 8080, "tcp")
    rule = "-A POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE"
    node = view(ipsets=IPSETS, links=[{"name": "cni0", "addresses": ["172.30.1.1/24"]}])
    masq = run(rule, chain="POSTROUTING", packet=hairpin.with_(oif="cni0"), node=node)[0]
    assert masq.nat == "MASQUERADE" and masq.packet.src == "172.30.1.1"
    assert run(rule, chain="POSTROUTING", packet=other.with_(oif="cni0"), node=node)[0].nat is None


def test_negated_set_and_nomatch_and_list_set() -> None:
    node = view(ipsets=IPSETS)
    assert run("-A PREROUTING -m set ! --match-set KUBE-CLUSTER-IP dst,dst -j DROP", node=node)[0].verdict == "ACCEPT"
    # 172.30.1.5 is inside 172.30.0.0/16 but the more specific 172.30.1.0/24 is nomatch.
    assert run("-A PREROUTING -m set --match-set PODS src -j DROP", node=node)[0].verdict == "ACCEPT"
    other = PKT.with_(src="172.30.9.9")
    assert run("-A PREROUTING -m set --match-set PODS src -j DROP", node=node, packet=other)[0].verdict == "DROP"
    assert run("-A PREROUTING -m set --match-set ALL dst,dst -j DROP", node=node)[0].verdict == "DROP"


def test_mark_arithmetic_through_mark_targets() -> None:
    branches = run("""
-A PREROUTING -j MARK --set-xmark 0x4000/0x4000
-A PREROUTING -j MARK --or-mark 0x8000
-A PREROUTING -j MARK --xor-mark 0x4000
-A PREROUTING -j MARK --and-mark 0xff00
-A PREROUTING -j MARK --set-xmark 0x11/0xff
-A PREROUTING -m mark --mark 0x8011/0xffff -j DROP
""", packet=PKT.with_(mark=0x12345))
    # 0x12345 → |0x4000 = 0x16345 → |0x8000 = 0x1e345 → ^0x4000 = 0x1a345 → &0xff00 = 0xa300
    # → (0xa300 & ~0xff) ^ 0x11 = 0xa311; & 0xffff = 0xa311 != 0x8011 → not dropped
    assert branches[0].packet.mark == 0xA311
    assert branches[0].verdict == "ACCEPT"


def test_kube_postrouting_xor_clears_the_masq_bit() -> None:
    branches = run("""
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -j MASQUERADE --random-fully
""", chain="POSTROUTING", packet=PKT.with_(mark=0x4001, oif="eth0"),
        node=view(links=[{"name": "eth0", "addresses": ["10.0.0.11/24"]}]))
    assert branches[0].nat == "MASQUERADE" and branches[0].packet.mark == 0x1
    assert branches[0].packet.src == "10.0.0.11"
    unmarked = run("""
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MASQUERADE
""", chain="POSTROUTING")
    assert unmarked[0].nat is None


def test_statistic_probabilities_compose_to_one_third_each() -> None:
    branches = run("""
-A PREROUTING -j KUBE-SVC-X
-A KUBE-SVC-X -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-A
-A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B
-A KUBE-SVC-X -j KUBE-SEP-C
-A KUBE-SEP-A -p tcp -j DNAT --to-destination 172.30.1.5:8080
-A KUBE-SEP-B -p tcp -j DNAT --to-destination 172.30.1.6:8080
-A KUBE-SEP-C -p tcp -j DNAT --to-destination 172.30.2.8:8080
""")
    chances = {b.packet.dst: b.probability for b in branches}
    assert set(chances) == {"172.30.1.5", "172.30.1.6", "172.30.2.8"}
    for chance in chances.values():
        assert math.isclose(chance, 1 / 3, rel_tol=1e-6)
    assert math.isclose(sum(chances.values()), 1.0)
    assert all(b.nat == "DNAT" and b.packet.dport == 8080 for b in branches)


@pytest.mark.parametrize("n", [2, 4, 7])
def test_statistic_composition_is_uniform_for_n_endpoints(n: int) -> None:
    lines = ["-A PREROUTING -j KUBE-SVC-X"]
    for i in range(n):
        left = n - i
        prob = f" -m statistic --mode random --probability {1 / left:.11f}" if left > 1 else ""
        lines.append(f"-A KUBE-SVC-X{prob} -j KUBE-SEP-{i}")
        lines.append(f"-A KUBE-SEP-{i} -p tcp -j DNAT --to-destination 172.30.1.{i + 10}:80")
    branches = run("\n".join(lines))
    assert len(branches) == n
    assert all(math.isclose(b.probability, 1 / n, rel_tol=1e-6) for b in branches)


def test_recent_rcheck_misses_on_a_first_connection_and_notes_affinity() -> None:
    branches = run("""
-A PREROUTING -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j DROP
-A PREROUTING -m recent --set --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j ACCEPT
""")
    assert branches[0].verdict == "ACCEPT"
    assert "KUBE-SEP-A" in branches[0].conn.recent_set
    assert any("session affinity" in note for note in branches[0].notes)


def test_addrtype_uses_the_local_table() -> None:
    node = view(routes={"local": [{"type": "local", "dst": "10.254.0.1", "dev": "kube-ipvs0"}], "main": []})
    rule = "-A PREROUTING -m addrtype --dst-type LOCAL -j DROP"
    assert run(rule, node=node)[0].verdict == "DROP"
    assert run(rule, node=node, packet=PKT.with_(dst="10.254.0.9"))[0].verdict == "ACCEPT"
    assert run("-A PREROUTING -m addrtype ! --dst-type LOCAL -j DROP", node=node)[0].verdict == "ACCEPT"


def test_reject_names_its_icmp_type_and_rule() -> None:
    branches = run("-A INPUT -p tcp --dport 443 -j REJECT --reject-with icmp-host-prohibited",
                   chain="INPUT", table="filter")
    assert branches[0].verdict == "REJECT"
    assert branches[0].reject_with == "icmp-host-prohibited"
    assert "--dport 443" in (branches[0].rule or "")


def test_steps_name_table_chain_rule_number_and_reason() -> None:
    branches = run("-A PREROUTING -p udp -j DROP\n-A PREROUTING -p tcp -j ACCEPT")
    first, second = branches[0].steps[:2]
    assert (first.table, first.chain, first.rule_number, first.matched) == ("nat", "PREROUTING", 1, False)
    assert "protocol tcp is not udp" in first.reason
    assert (second.rule_number, second.matched, second.action) == (2, True, "ACCEPT")


def test_a_trail_unrolls_oldest_first_and_forks_share_their_prefix() -> None:
    first = TraceStep(hook="PREROUTING", stage="iptables", reason="r", table="nat", chain="A")
    second = replace(first, chain="B")
    third = replace(first, chain="C")
    shared = (None, first)
    assert steps_of(None) == ()
    assert steps_of((shared, second)) == (first, second)
    assert steps_of((shared, third)) == (first, third)  # the fork's other branch: the prefix unchanged
