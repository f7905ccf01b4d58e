"""Selection (--table/--chain/--kube), the jump graph and the backend comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpctl.core.iptables_save import format_save, parse_save
from kpctl.core.iptables_view import (
    compare_backends,
    jump_tree,
    select,
    select_state,
)
from kpctl.errors import InvalidInput, NotFound
from kpctl.model.iptables import IptablesState, Ruleset

SHARED = Path(__file__).parents[1] / "fixtures"
OTHER_RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A INPUT -i lo -j ACCEPT
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
"""


def _load(name: str, family: str = "ipv4", backend: str = "nft") -> Ruleset:
    return parse_save((SHARED / name).read_text(), family, backend)


def test_kube_selection_keeps_kube_chains_and_builtin_jumps_only() -> None:
    mixed = parse_save((SHARED / "kube-ipvs-mode.rules").read_text().replace(
        "-A INPUT -j KUBE-FIREWALL\n", "-A INPUT -j KUBE-FIREWALL\n-A INPUT -i lo -j ACCEPT\n"))
    kube = select(mixed, kube=True)
    filter_table = kube.tables["filter"]
    assert [r.number for r in filter_table.chains["INPUT"].rules] == [1, 2, 3, 4]  # the lo rule (5) is gone
    assert all(n.startswith("KUBE-") or filter_table.chains[n].builtin for n in filter_table.chains)
    assert "KUBE-IPVS-FILTER" in filter_table.chains and "KUBE-KUBELET-CANARY" in filter_table.chains
    assert "POSTROUTING" not in kube.tables["mangle"].chains  # built-in without kube jumps
    assert not any(c.rules for c in kube.tables["mangle"].chains.values() if c.builtin)
    # what --kube shows still loads: every jump has its chain declared
    assert parse_save(format_save(kube)) == kube


def test_kube_selection_of_non_kube_rules_is_empty() -> None:
    other = parse_save(OTHER_RULES)
    assert select(other, kube=True).tables == {}


def test_table_and_chain_selection() -> None:
    ruleset = _load("kube-iptables-mode.rules")
    only_nat = select(ruleset, table="nat")
    assert list(only_nat.tables) == ["nat"]
    one = select(ruleset, table="nat", chain="KUBE-MARK-MASQ")
    assert list(one.tables["nat"].chains) == ["KUBE-MARK-MASQ"]
    both = select(ruleset, chain="KUBE-SERVICES")
    assert sorted(both.tables) == ["filter", "nat"]


def test_select_state_raises_not_found_naming_the_chain() -> None:
    state = IptablesState((_load("kube-iptables-mode.rules"),))
    with pytest.raises(NotFound, match="chain 'KUBE-NOPE' not found in table 'nat'"):
        select_state(state, table="nat", chain="KUBE-NOPE")
    with pytest.raises(NotFound, match="table 'broute' not found"):
        select_state(state, table="broute")


def test_select_state_skips_empty_backends_unless_asked() -> None:
    state = IptablesState((parse_save("", backend="legacy"), _load("kube-iptables-mode.rules")))
    assert [r.backend for r in select_state(state).rulesets] == ["nft"]
    assert [r.backend for r in select_state(state, backend="legacy").rulesets] == ["legacy"]
    only_empty = IptablesState((parse_save("*nat\nCOMMIT\n", backend="legacy"),))
    assert len(select_state(only_empty).rulesets) == 1


def test_jump_tree_of_iptables_mode() -> None:
    ruleset = _load("kube-iptables-mode.rules")
    roots = {n.chain: n for n in jump_tree(ruleset, "nat")}
    assert list(roots) == ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
    services = roots["PREROUTING"].children[0]
    assert services.chain == "KUBE-SERVICES" and services.via is not None and services.via.number == 1
    svc = next(c for c in services.children if c.chain == "KUBE-SVC-WEBHTTP00000000000")
    assert [c.chain for c in svc.children][:4] == [
        "KUBE-MARK-MASQ", "KUBE-SEP-WEB1AAAAAAAAAAAA", "KUBE-SEP-WEB2BBBBBBBBBBBB", "KUBE-SEP-WEB3CCCCCCCCCCCC"]
    sep = svc.children[1]
    assert sep.actions == ("DNAT 172.30.1.5:8080",)
    # OUTPUT reaches KUBE-SERVICES again: shown once, then marked
    assert roots["OUTPUT"].children[0].seen_above and roots["OUTPUT"].children[0].children == ()
    assert roots["POSTROUTING"].children[0].actions == ("RETURN", "MARK xset 0x4000/0x0", "MASQUERADE")


def test_jump_tree_from_a_named_chain_and_goto() -> None:
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n"
            "-A INPUT -g A\n-A A -j B\n-A B -j DROP\nCOMMIT\n")
    ruleset = parse_save(text)
    (root,) = jump_tree(ruleset, "filter")
    assert root.children[0].chain == "A" and root.children[0].via.goto  # type: ignore[union-attr]
    assert root.children[0].children[0].actions == ("DROP",)
    (sub,) = jump_tree(ruleset, "filter", ("A",))
    assert sub.chain == "A" and sub.via is None and [c.chain for c in sub.children] == ["B"]
    assert jump_tree(ruleset, "filter", ("NOPE",)) == ()


def _state(*pairs: tuple[str, str, str]) -> IptablesState:
    return IptablesState(tuple(parse_save(text, family, backend) for family, backend, text in pairs))


IPVS = (SHARED / "kube-ipvs-mode.rules").read_text()
IPT = (SHARED / "kube-iptables-mode.rules").read_text()


def test_backends_not_mixed_when_kube_rules_live_in_one_backend() -> None:
    report = compare_backends(_state(("ipv4", "nft", IPT), ("ipv4", "legacy", OTHER_RULES),
                                     ("ipv6", "nft", ""), ("ipv6", "legacy", "")))
    assert not report.mixed and report.kube_backends == ("nft",)
    usage = {(u.family, u.backend): u for u in report.usages}
    assert usage[("ipv4", "nft")].kube_rules == 75 and usage[("ipv4", "nft")].kube_chains == 34
    assert usage[("ipv4", "legacy")].holds_rules and not usage[("ipv4", "legacy")].holds_kube
    assert not usage[("ipv6", "nft")].holds_rules
    assert report.verdict == "KUBE-* rules are only in nft"


def test_backends_mixed_when_kube_rules_in_both() -> None:
    report = compare_backends(_state(("ipv4", "nft", IPT), ("ipv4", "legacy", IPVS)))
    assert report.mixed and report.mixed_families == ("ipv4",)
    assert report.to_dict()["mixed"] is True and "split across legacy and nft" in report.verdict


def test_backends_mixed_across_families() -> None:
    report = compare_backends(_state(("ipv4", "nft", IPT), ("ipv6", "legacy", IPVS.replace(
        "127.0.0.0/8", "::1/128").replace("172.30.0.0/16", "fd00::/56"))))
    assert report.mixed and report.mixed_families == ()


def test_backends_with_no_rules_anywhere() -> None:
    report = compare_backends(IptablesState(), {("ipv4", "nft"): True})
    assert not report.mixed and report.verdict == "no KUBE-* rules in any backend"
    assert [u.available for u in report.usages] == [True, False, False, False]


def test_a_lone_kube_jump_counts_as_kube() -> None:
    text = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n"
    report = compare_backends(_state(("ipv4", "legacy", text), ("ipv4", "nft", IPT)))
    assert report.mixed


def test_the_jump_graphs_leave_no_reference_cycle_behind() -> None:
    """A cycle around the walk (a closure that calls itself) keeps the whole table alive after the
    command, for the cycle collector to walk at exit (0.25 s of a 110,000-rule tree)."""
    import gc
    import json

    from kpctl.core.nft_view import jump_trees

    ruleset = _load("kube-iptables-mode.rules")
    nft = json.loads((Path(__file__).parents[2] / "examples" / "nftables-node.json").read_text())["nftables"]
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        assert jump_tree(ruleset, "nat")
        assert jump_trees(nft)
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()


def test_backends_count_kube_rules_without_reading_them() -> None:
    # counted from a lazily read node as from a fully read one; a KUBE-* rule kpctl cannot parse
    # (a port out of range) is still counted, where reading it fails
    usage = {(u.family, u.backend): u for u in compare_backends(_state(("ipv4", "nft", IPT))).usages}
    lazy = IptablesState((parse_save(IPT, lazy=True),))
    assert {(u.family, u.backend): u for u in compare_backends(lazy).usages} == usage
    head, _, tail = IPT.rpartition("COMMIT")  # the nat table's
    odd = head + "-A KUBE-SERVICES -p tcp --dport 99999 -j ACCEPT\nCOMMIT" + tail
    with pytest.raises(InvalidInput):
        parse_save(odd)
    (counted,) = [u for u in compare_backends(IptablesState((parse_save(odd, lazy=True),))).usages if u.available]
    before = usage[("ipv4", "nft")]
    assert counted.rules == before.rules + 1 and counted.kube_rules == before.kube_rules + 1
