"""core/nft_syntax: libnftables JSON statements written as nft syntax (the netns tier loads them back)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kpctl.core.nft_syntax import rule_text, statement
from kpctl.errors import InvalidInput

DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
MARK = {"meta": {"key": "mark"}}


@pytest.mark.parametrize(("stmt", "text"), [
    ({"match": {"op": "==", "left": DADDR, "right": "10.96.0.1"}}, "ip daddr 10.96.0.1"),
    ({"match": {"op": "!=", "left": DADDR, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
     "ip daddr != 10.0.0.0/8"),
    # numbers met by a mark are written as nft writes marks (kube-proxy's 0x4000: 0x00004000)
    ({"match": {"op": "==", "left": {"&": [MARK, 16384]}, "right": 0}}, "meta mark & 0x00004000 == 0x00000000"),
    ({"match": {"op": "==", "left": MARK, "right": 1}}, "meta mark 0x00000001"),
    ({"match": {"op": "==", "left": {"ct": {"key": "mark"}}, "right": {"set": [1, 2]}}},
     "ct mark { 0x00000001, 0x00000002 }"),
    ({"match": {"op": "==", "left": {"ct": {"key": "state"}}, "right": {"set": [1, 2]}}}, "ct state { 1, 2 }"),
    ({"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "dport"}}, 255]}, "right": 1}},
     "tcp dport & 255 == 1"),
    ({"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "ack"]]},
                "right": "syn"}}, "tcp flags syn / syn,ack"),
    ({"match": {"op": "!=", "left": {"&": [{"ct": {"key": "state"}}, ["established", "related"]]},
                "right": ["established"]}}, "ct state != established / established,related"),
    ({"match": {"op": "==", "left": {"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, "syn"]},
                "right": "syn"}}, "tcp flags & syn == syn"),
    ({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
     "ct state established,related"),
    ({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, 'iifname "lo"'),
    ({"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@names"}}, "iifname @names"),
    ({"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, 'iif "lo"'),
    ({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, "meta l4proto tcp"),
    ({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
     "fib daddr type local"),
    ({"vmap": {"key": {"concat": [DADDR, {"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th",
                                                                                     "field": "dport"}}]},
               "data": "@service-ips"}}, "ip daddr . meta l4proto . th dport vmap @service-ips"),
    ({"vmap": {"key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}},
               "data": {"set": [[0, {"goto": {"target": "a"}}], [1, {"jump": {"target": "b"}}]]}}},
     "numgen random mod 2 vmap { 0 : goto a, 1 : jump b }"),
    ({"mangle": {"key": MARK, "value": {"|": [MARK, 16384]}}}, "meta mark set meta mark | 0x00004000"),
    # an operation on the left written without parentheses where it binds tighter (& before ^ before |)
    ({"mangle": {"key": MARK, "value": {"^": [{"&": [MARK, 255]}, 1]}}},
     "meta mark set meta mark & 0x000000ff ^ 0x00000001"),
    ({"mangle": {"key": MARK, "value": {"&": [{"|": [MARK, 16]}, 255]}}},
     "meta mark set (meta mark | 0x00000010) & 0x000000ff"),
    ({"mangle": {"key": MARK, "value": {"<<": [MARK, 2]}}}, "meta mark set meta mark << 2"),
    ({"mangle": {"key": {"ct": {"key": "mark"}}, "value": 16}}, "ct mark set 0x00000010"),
    ({"mangle": {"key": {"ct": {"key": "mark"}}, "value": MARK}}, "ct mark set meta mark"),
    ({"dnat": {"addr": "10.244.1.5", "port": 8080}}, "dnat to 10.244.1.5:8080"),
    ({"dnat": {"family": "ip6", "addr": "fd00::1", "port": 80}}, "dnat ip6 to [fd00::1]:80"),
    ({"masquerade": {"flags": "fully-random"}}, "masquerade fully-random"),
    ({"masquerade": None}, "masquerade"),
    ({"reject": {"type": "icmp", "expr": "port-unreachable"}}, "reject with icmp port-unreachable"),
    ({"reject": {"type": "tcp reset"}}, "reject with tcp reset"),
    ({"counter": {"packets": 3, "bytes": 180}}, "counter packets 3 bytes 180"),
    ({"log": {"prefix": "x: ", "level": "info", "flags": "all"}}, 'log prefix "x: " level info flags all'),
    ({"log": {"flags": ["tcp options", "ip options", "skuid"]}}, "log flags tcp options flags ip options flags skuid"),
    ({"set": {"op": "update", "elem": {"payload": {"protocol": "ip", "field": "saddr"}}, "set": "@aff"}},
     "update @aff { ip saddr }"),
    ({"goto": {"target": "endpoint-X-ns/svc/tcp/p__10.0.0.1/80"}}, "goto endpoint-X-ns/svc/tcp/p__10.0.0.1/80"),
])
def test_statement(stmt: dict[str, Any], text: str) -> None:
    assert statement(stmt) == text


def test_rule_comment_is_quoted_at_the_end() -> None:
    rule = {"family": "ip", "table": "t", "chain": "c", "handle": 4, "comment": "default/empty:http",
            "expr": [{"match": {"op": "==", "left": DADDR, "right": "@cluster-ips"}}, {"reject": None}]}
    assert rule_text(rule) == 'ip daddr @cluster-ips reject comment "default/empty:http"'


@pytest.mark.parametrize("stmt", [{"xt": {"name": "conntrack"}}, {"dnat": {"addr": "1.1.1.1", "type_flags": []}},
                                  {"match": {"op": "==", "left": {"osf": {}}, "right": "Linux"}}, "accept"])
def test_unknown_shapes_raise_instead_of_printing_guesses(stmt: Any) -> None:
    with pytest.raises(InvalidInput, match="cannot write nft syntax"):
        statement(stmt)


TABLE = {"table": {"family": "ip", "name": "t"}}
CHAIN = {"chain": {"family": "ip", "table": "t", "name": "c"}}


@pytest.mark.parametrize(("item", "refused"), [
    ({"table": {"family": "ip", "name": "t", "owner": 1}}, "table option ['owner']"),
    ({"chain": {"family": "ip", "table": "t", "name": "d", "flags": 1, "zone": 2}}, "chain option ['flags', 'zone']"),
    ({"set": {"family": "ip", "table": "t", "name": "s", "type": "ipv4_addr", "stmt": []}}, "set option ['stmt']"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [], "position": 3}}, "rule option ['position']"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c",
               "expr": [{"dnat": {"addr": "10.0.0.1", "persistent": True}}]}}, "dnat option ['persistent']"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c",
               "expr": [{"log": {"prefix": "x", "future": 1}}]}}, "log option ['future']"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c",
               "expr": [{"log": {"flags": ["tcp options", "future"]}}]}}, "log flag ['tcp options', 'future']"),
])
def test_objects_with_options_not_written_here_are_refused_by_their_names(item: Any, refused: str) -> None:
    from kpctl.core.nft_syntax import save_text

    assert save_text({"nftables": [TABLE, CHAIN]}).startswith("table ip t {\n\tchain c {")
    with pytest.raises(InvalidInput, match=re.escape(f"cannot write nft syntax for {refused}")):
        save_text({"nftables": [TABLE, CHAIN, item]} if "table" not in item else {"nftables": [item, CHAIN]})


def test_rules_go_to_their_own_table_and_chain_and_a_rule_of_no_chain_is_refused() -> None:
    from kpctl.core.nft_syntax import save_text

    other = {"table": {"family": "inet", "name": "t"}}
    other_chain = {"chain": {"family": "inet", "table": "t", "name": "c"}}
    rules = [{"rule": {"family": family, "table": "t", "chain": "c", "expr": [{"jump": {"target": target}}]}}
             for family, target in (("inet", "x"), ("ip", "y"))]
    assert save_text({"nftables": [TABLE, CHAIN, other, other_chain, *rules]}) == (
        "table ip t {\n\tchain c {\n\t\tjump y\n\t}\n}\ntable inet t {\n\tchain c {\n\t\tjump x\n\t}\n}\n")
    stray = {"rule": {"family": "ip", "table": "t", "chain": "d", "expr": []}}
    with pytest.raises(InvalidInput, match=re.escape("rule in 'd' of table ip t: no such chain")):
        save_text({"nftables": [TABLE, CHAIN, stray]})


def test_a_table_is_laid_out_as_nft_lists_it_blocks_a_tab_in_and_apart_rules_and_elements_two() -> None:
    from kpctl.core.nft_syntax import save_text

    elements = {"set": {"family": "ip", "table": "t", "name": "s", "type": "ipv4_addr",
                        "elem": ["10.0.0.1", "10.0.0.2"]}}
    empty = {"chain": {"family": "ip", "table": "t", "name": "empty"}}
    rules = [{"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"jump": {"target": "empty"}}]}},
             {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"drop": None}]}}]
    assert save_text({"nftables": [TABLE, elements, CHAIN, empty, *rules]}) == (
        "table ip t {\n"
        "\tset s {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1, 10.0.0.2 }\n\t}\n\n"
        "\tchain c {\n\t\tjump empty\n\t\tdrop\n\t}\n\n"
        "\tchain empty {\n\t}\n"
        "}\n")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (30, "30s"), (90, "1m30s"), (10800, "3h"), (86400, "1d"),
                                               (90061, "1d1h1m1s"), (3601, "1h1s")])
def test_durations_as_nft_writes_them(seconds: int, text: str) -> None:
    from kpctl.core.nft_syntax import duration

    assert duration(seconds) == text


@pytest.mark.parametrize(("family", "hook", "value", "text"), [
    ("ip", "prerouting", -100, "dstnat"), ("ip", "output", -100, "-100"), ("ip", "prerouting", -110, "dstnat - 10"),
    ("inet", "input", 10, "filter + 10"), ("inet", "input", 11, "11"), ("ip6", "postrouting", 110, "srcnat + 10"),
    ("ip", "input", 110, "110"), ("ip", "forward", -300, "raw"), ("ip", "input", 40, "security - 10"),
    ("bridge", "output", 100, "out"), ("bridge", "input", -200, "filter"), ("bridge", "forward", 0, "0"),
    ("arp", "input", 0, "filter"), ("netdev", "ingress", 10, "filter + 10"), ("unknown", "input", 0, "0"),
])
def test_priorities_as_nft_writes_them(family: str, hook: str, value: int, text: str) -> None:
    from kpctl.core.nft_syntax import priority_text

    assert priority_text(family, hook, value) == text
