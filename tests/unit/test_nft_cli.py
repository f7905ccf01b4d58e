"""`kpctl nft list` driven in-process on snapshot files (the bundled nftables-mode node)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import kpctl

ROOT = Path(__file__).parents[2]
NODE = str(ROOT / "examples" / "nftables-node.json")
RULESET = json.loads(Path(NODE).read_text())["nftables"]
WEB = "service-HVFWP5L3-default/web/tcp/http"


def _snapshot(tmp_path: Path, section: Any, **extra: Any) -> str:
    path = tmp_path / "node.json"
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "nftables": section, **extra}))
    return str(path)


def _rows(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


def test_plain_lists_every_table_chain_set_and_map_with_counts() -> None:
    out = kpctl("--snapshot", NODE, "nft", "list", "-o", "plain")
    assert out.exit_code == 0, out.stderr
    rows = _rows(out.stdout)
    assert rows[0] == ["FAMILY", "TABLE", "KIND", "NAME", "TYPE", "HOOK", "PRIO", "POLICY", "RULES/ELEMS"]
    by_name = {row[3]: row for row in rows[1:]}
    objects = [o for o in RULESET["nftables"] if "metainfo" not in o and "rule" not in o]
    assert len(rows) - 1 == len(objects) == 31
    assert by_name["nat-prerouting"] == ["ip", "kube-proxy", "chain", "nat-prerouting", "nat", "prerouting",
                                         "-100", "accept", "1"]
    assert by_name["nat-postrouting"][6] == "100"
    assert by_name["services"][2:] == ["chain", "services", "", "", "", "", "2"]
    assert by_name["service-ips"][2:] == ["map", "service-ips", "ipv4_addr . inet_proto . inet_service : verdict",
                                          "", "", "", "4"]
    assert by_name["cluster-ips"][8] == "5"
    assert by_name[WEB][8] == "2"


def test_table_and_wide_align_columns_and_wide_adds_flags_and_comment() -> None:
    table = kpctl("--snapshot", NODE, "nft", "list", "--chain", "services")
    wide = kpctl("--snapshot", NODE, "nft", "list", "--table", "kube-proxy", "-o", "wide")
    assert table.exit_code == wide.exit_code == 0
    lines = table.stdout.splitlines()  # not a TTY: plain, unless -o table
    assert lines[-1].split("\t")[3] == "services"
    aligned = kpctl("--snapshot", NODE, "nft", "list", "--chain", "services", "-o", "table").stdout.splitlines()
    assert aligned[0].split() == ["FAMILY", "TABLE", "KIND", "NAME", "TYPE", "HOOK", "PRIO", "POLICY", "RULES/ELEMS"]
    assert aligned[2].split() == ["ip", "kube-proxy", "chain", "services", "2"]
    assert aligned[0].index("RULES/ELEMS") + len("RULES/ELEMS") == len(aligned[2])  # right-justified count
    assert "COMMENT" in wide.stdout and "ClusterIP, ExternalIP and LoadBalancer IP traffic" in wide.stdout
    assert "\x1b" not in wide.stdout


def test_tree_follows_jumps_and_verdict_maps_down_to_the_endpoints() -> None:
    out = kpctl("--snapshot", NODE, "nft", "list", "-o", "tree")
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "table ip kube-proxy"
    assert lines[1] == "├── nat-prerouting (nat hook prerouting priority dstnat policy accept)"
    assert lines[2] == "│   └── jump services"
    text = out.stdout
    assert f"@service-ips 10.96.100.10 . tcp . 80: goto {WEB}\n" in text
    assert ("numgen random mod 3 = 1: goto endpoint-WEBBBBBB-default/web/tcp/http__10.244.2.7/8080"
            " → dnat to 10.244.2.7:8080\n") in text
    assert "@no-endpoint-services 10.96.100.30 . tcp . 80: goto reject-chain → reject" in text
    # nat-output reaches `services` too: drawn once, then named.
    assert "└── jump services (expanded above)" in text or "│   └── jump services (expanded above)" in text
    # Base chains come in the order packets meet their hooks.
    hooks = [line.split(" (")[1].split()[2] for line in lines if line[:4] in ("├── ", "└── ")]
    order = ["prerouting", "input", "forward", "output", "postrouting"]
    assert hooks == sorted(hooks, key=order.index)


def test_tree_from_a_chain_draws_only_the_graph_below_it() -> None:
    out = kpctl("--snapshot", NODE, "nft", "list", "--chain", WEB, "-o", "tree")
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:3] == ["table ip kube-proxy", f"└── {WEB}",
                         "    ├── jump mark-for-masquerade → meta mark set meta mark | 0x00004000"]
    assert len([line for line in lines if "goto endpoint-" in line]) == 3


def test_tree_shows_what_a_chain_does_as_the_iptables_tree_shows_its_targets() -> None:
    """iptables' tree shows KUBE-POSTROUTING → RETURN, MARK xset 0x4000/0x0, MASQUERADE; nft's
    masquerading chain the same steps: the verdict that ends it early, the mark set, the NAT."""
    out = kpctl("--snapshot", NODE, "nft", "list", "--chain", "nat-postrouting", "-o", "tree")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.splitlines()[2:] == [
        "    └── jump masquerading → return, meta mark set meta mark ^ 0x00004000, masquerade fully-random"]


def test_tree_names_a_jump_to_a_missing_chain_and_escapes_names(tmp_path: Path) -> None:
    chain = {"family": "ip", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": 0,
             "policy": "accept"}
    rules = [{"family": "ip", "table": "t", "chain": "in", "expr": [{"jump": {"target": "gone"}}]},
             {"family": "ip", "table": "t", "chain": "in", "expr": [{"goto": {"target": "odd\tname"}}]},
             {"family": "ip", "table": "t", "chain": "odd\tname", "expr": [{"drop": None}]}]
    section = {"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": chain},
                            {"chain": {"family": "ip", "table": "t", "name": "odd\tname"}},
                            *({"rule": rule} for rule in rules)]}
    out = kpctl("--snapshot", _snapshot(tmp_path, section), "nft", "list", "-o", "tree")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.splitlines() == ["table ip t", "└── in (filter hook input priority filter policy accept)",
                                       "    ├── jump gone (no such chain)", "    └── goto odd\\tname → drop"]


def test_tree_of_malformed_verdicts_draws_the_chains_it_can(tmp_path: Path) -> None:
    chain = {"family": "ip", "table": "t", "name": "c", "type": "filter", "hook": "input", "prio": 0}
    rule = {"family": "ip", "table": "t", "chain": "c", "expr": [{"jump": "not-an-object"}, {"vmap": {"key": 1, "data": "x"}}]}
    section = {"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": chain}, {"rule": rule}]}
    out = kpctl("--snapshot", _snapshot(tmp_path, section), "nft", "list", "-o", "tree")
    assert (out.exit_code, out.stdout.splitlines()) == (0, ["table ip t", "└── c (filter hook input priority filter policy accept)"])


def test_json_is_the_libnftables_document_filtered() -> None:
    full = kpctl("--snapshot", NODE, "nft", "list", "-o", "json")
    assert json.loads(full.stdout) == RULESET
    one = json.loads(kpctl("--snapshot", NODE, "nft", "list", "--chain", WEB, "-o", "json").stdout)
    kinds = [next(iter(o)) for o in one["nftables"]]
    assert kinds == ["metainfo", "table", "chain", "rule", "rule"]
    assert all(o[k]["chain" if k == "rule" else "name"] == WEB for o in one["nftables"] for k in o
               if k in ("chain", "rule"))


def test_save_writes_the_chain_as_nft_list_does() -> None:
    out = kpctl("--snapshot", NODE, "nft", "list", "--chain", WEB, "-o", "save")
    assert out.exit_code == 0, out.stderr
    assert out.stdout == (
        "table ip kube-proxy {\n"
        f"\tchain {WEB} {{\n"
        "\t\tip daddr 10.96.100.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n"
        "\t\tnumgen random mod 3 vmap { 0 : goto endpoint-WEBAAAAA-default/web/tcp/http__10.244.1.5/8080,"
        " 1 : goto endpoint-WEBBBBBB-default/web/tcp/http__10.244.2.7/8080,"
        " 2 : goto endpoint-WEBCCCCC-default/web/tcp/http__10.244.2.8/8080 }\n"
        "\t}\n"
        "}\n")


def test_save_of_the_whole_node_has_every_chain_and_set_once() -> None:
    out = kpctl("--snapshot", NODE, "nft", "list", "-o", "save").stdout
    assert out.startswith("table ip kube-proxy {\n\tset cluster-ips {\n\t\ttype ipv4_addr\n")
    assert out.count("\n\tchain ") == 24 and out.count("\n\tmap ") == 3 and out.count("\n\tset ") == 3
    assert "\t\ttype nat hook prerouting priority dstnat; policy accept;\n" in out
    assert "\t\telements = { 10.96.100.30 . tcp . 80 comment \"default/empty:http\" : goto reject-chain }\n" in out
    assert "\t\tupdate @affinity-STICKYA1-default/sticky/tcp/http__10.244.1.21/8080 { ip saddr }\n" in out


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--table", "nope"), 3, "kpctl: error: no nftables table nope"),
    (("--family", "ip6"), 3, "kpctl: error: no nftables table ip6"),
    (("--chain", "nope"), 3, "kpctl: error: no chain 'nope' in nftables"),
    (("--family", "bogus"), 2, "Invalid value for '--family'"),
])
def test_bad_selection_is_one_line_and_its_exit_code(args: tuple[str, ...], code: int, message: str) -> None:
    out = kpctl("--snapshot", NODE, "nft", "list", *args)
    assert out.exit_code == code
    assert message in out.stderr and out.stdout == "" and out.exception is None


def test_snapshot_without_nftables_names_the_reason(tmp_path: Path) -> None:
    path = _snapshot(tmp_path, None, absent={"nftables": "nft not found"})
    out = kpctl("--snapshot", path, "nft", "list")
    assert out.exit_code == 3
    assert out.stderr.strip().endswith("has no nftables section (nft not found)")


@pytest.mark.parametrize("section", [[1, 2], {"nftables": "x"}, {"nftables": [1]}, {"nftables": [{"a": 1, "b": 2}]}])
def test_malformed_nftables_section_is_bad_input(tmp_path: Path, section: Any) -> None:
    out = kpctl("--snapshot", _snapshot(tmp_path, section), "nft", "list", "-o", "json")
    assert out.exit_code == 2 and out.exception is None
    assert out.stderr.startswith("kpctl: error: snapshot") and len(out.stderr.splitlines()) == 1


def _with_rule(tmp_path: Path, expr: list[Any], chain: str = "c") -> str:
    section = {"nftables": [
        {"table": {"family": "ip", "name": "t", "handle": 1}},
        {"chain": {"family": "ip", "table": "t", "name": chain, "handle": 2}},
        {"rule": {"family": "ip", "table": "t", "chain": chain, "handle": 3, "expr": expr}}]}
    return _snapshot(tmp_path, section)


@pytest.mark.parametrize(("expr", "chain", "what"), [
    ([{"match": {"op": "==", "left": {"socket": {"key": "transparent"}}, "right": 1}}], "c", "expression"),
    ([{"accept": None}], "has space", "a name nft cannot read back"),
    ([{"log": {"prefix": 'say "hi"'}}], "c", "a string with a double quote"),
])
def test_save_refuses_what_it_cannot_write(tmp_path: Path, expr: list[Any], chain: str, what: str) -> None:
    path = _with_rule(tmp_path, expr, chain)
    out = kpctl("--snapshot", path, "nft", "list", "-o", "save")
    assert out.exit_code == 2 and out.stdout == "" and out.exception is None
    assert out.stderr.startswith(f"kpctl: error: cannot write nft syntax for {what}")
    assert "use -o json" in out.stderr and len(out.stderr.splitlines()) == 1
    assert kpctl("--snapshot", path, "nft", "list", "-o", "json").exit_code == 0  # the JSON still lists


def test_save_of_an_iptables_nft_rule_points_at_kpctl_iptables(tmp_path: Path) -> None:
    path = _with_rule(tmp_path, [{"xt": {"type": "match", "name": "statistic"}}, {"accept": None}])
    out = kpctl("--snapshot", path, "nft", "list", "-o", "save")
    assert (out.exit_code, out.stdout) == (2, "")
    assert out.stderr == ("kpctl: error: cannot write nft syntax for an iptables-nft rule (xt match statistic)"
                          " (list it with `kpctl iptables list`, or leave its table out with --table)\n")


def test_live_without_nft_is_a_missing_feature(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("kpctl.backends.nft._SBIN", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    out = kpctl("nft", "list")
    assert out.exit_code == 6
    assert out.stderr == "kpctl: error: nft not found (install the nftables package (nft 0.9.3 or newer," \
                         " with JSON support))\n"


def test_tree_draws_a_chain_that_sends_nowhere_by_how_each_rule_reaches_it() -> None:
    """Such a chain's node is shared between the places that reach it the same way (kube-proxy's
    mark-for-masquerade): one reached by goto is not drawn as one reached by jump."""
    from kpctl.core.nft_view import jump_trees
    from kpctl.output.nft import tree_text

    def rule(chain: str, *expr: Any) -> dict[str, Any]:
        return {"rule": {"family": "ip", "table": "t", "chain": chain, "expr": list(expr)}}

    base = {"family": "ip", "table": "t", "type": "filter", "prio": 0, "policy": "accept"}
    ruleset = {"nftables": [
        {"table": {"family": "ip", "name": "t"}},
        {"chain": {**base, "name": "in", "hook": "input"}},
        {"chain": {"family": "ip", "table": "t", "name": "leaf"}},
        {"chain": {"family": "ip", "table": "t", "name": "a"}},
        {"chain": {"family": "ip", "table": "t", "name": "b"}},
        rule("in", {"jump": {"target": "a"}}), rule("in", {"goto": {"target": "b"}}),
        rule("a", {"jump": {"target": "leaf"}}), rule("b", {"goto": {"target": "leaf"}}),
        rule("in", {"jump": {"target": "leaf"}}),
        rule("leaf", {"masquerade": None}),
    ]}
    trees = jump_trees(ruleset)
    assert list(tree_text(trees, False)) == [
        "table ip t",
        "└── in (filter hook input priority filter policy accept)",
        "    ├── jump a",
        "    │   └── jump leaf → masquerade",
        "    ├── goto b",
        "    │   └── goto leaf → masquerade",
        "    └── jump leaf → masquerade",
    ]
    in_chain = trees[0].roots[0]
    assert in_chain.children[0].children[0] is in_chain.children[2]  # (shared: the same chain, the same way)
    assert in_chain.children[1].children[0] is not in_chain.children[2]
