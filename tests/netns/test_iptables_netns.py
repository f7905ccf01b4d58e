"""`kpctl iptables` against the real kernel, inside namespaces the tests create.

Cross-checks: rules loaded with iptables-restore / iptables-legacy-restore / ip6tables-restore
(the reference tools) are read back by kpctl and compared with the file; kpctl's `-o save`
output is fed to `iptables-restore --test` and loaded into a fresh namespace, whose
`iptables-save` must equal the original; `backends` sees mixed legacy+nft KUBE-* rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kpctl.core.iptables_save import parse_save
from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in

FIXTURES = Path(__file__).parents[1] / "fixtures"
UNIT_FIXTURES = Path(__file__).parents[1] / "unit" / "fixtures" / "iptables"
RULE_FILES = ["kube-ipvs-mode.rules", "kube-iptables-mode.rules"]
RESTORE = {("ipv4", "nft"): "iptables-nft-restore", ("ipv4", "legacy"): "iptables-legacy-restore",
           ("ipv6", "nft"): "ip6tables-nft-restore", ("ipv6", "legacy"): "ip6tables-legacy-restore"}
SAVE = {("ipv4", "nft"): "iptables-nft-save", ("ipv4", "legacy"): "iptables-legacy-save",
        ("ipv6", "nft"): "ip6tables-nft-save", ("ipv6", "legacy"): "ip6tables-legacy-save"}


def _prepare(ns: str) -> None:
    """The ipsets kube-proxy's IPVS-mode rules refer to (the set match needs them to exist)."""
    run_in(ns, "ipset", "restore", input=(FIXTURES / "kube-ipvs-mode.ipset").read_text())
    run_in(ns, "ipset", "create", "KUBE-6-CLUSTER-IP", "hash:ip,port", "family", "inet6")


def _load(ns: str, text: str, family: str = "ipv4", backend: str = "nft", counters: bool = False) -> None:
    run_in(ns, RESTORE[(family, backend)], *(["-c"] if counters else []), input=text)


def _by_table(ruleset_dict: dict[str, Any]) -> dict[str, Any]:
    """Tables keyed by name (legacy and nft list tables in different orders)."""
    return {t["name"]: t for t in ruleset_dict["tables"]}


def _list_json(ns: str, *args: str) -> dict[str, Any]:
    out = kpctl("--netns", ns, "iptables", "list", "-o", "json", *args)
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def kube_ns(netns: str) -> str:
    _prepare(netns)
    return netns


@pytest.mark.parametrize("backend", ["nft", "legacy"])
@pytest.mark.parametrize("name", RULE_FILES)
def test_list_json_matches_the_loaded_file(kube_ns: str, name: str, backend: str) -> None:
    text = (FIXTURES / name).read_text()
    _load(kube_ns, text, backend=backend)
    document = _list_json(kube_ns, "--family", "ipv4", "--backend", backend)
    (ruleset,) = document["rulesets"]
    expected = parse_save(text, "ipv4", backend).to_dict()
    assert (ruleset["family"], ruleset["backend"]) == ("ipv4", backend)
    assert _by_table(ruleset) == _by_table(expected)
    # without --family/--backend kpctl shows exactly the backend that holds rules
    assert [(r["family"], r["backend"]) for r in _list_json(kube_ns)["rulesets"]] == [("ipv4", backend)]


@pytest.mark.parametrize("backend", ["nft", "legacy"])
@pytest.mark.parametrize("name", RULE_FILES)
def test_save_output_is_accepted_by_restore_and_round_trips(kube_ns: str, netns_factory: Callable[[], str],
                                                            name: str, backend: str) -> None:
    _load(kube_ns, (FIXTURES / name).read_text(), backend=backend)
    out = kpctl("--netns", kube_ns, "iptables", "list", "--backend", backend, "-o", "save")
    assert out.exit_code == 0, out.stderr
    restore = RESTORE[("ipv4", backend)]
    run_in(kube_ns, restore, "--test", input=out.stdout)
    # byte for byte what the reference iptables-save prints, less its comment lines
    reference = run_in(kube_ns, SAVE[("ipv4", backend)]).stdout
    assert out.stdout.splitlines() == [line for line in reference.splitlines() if not line.startswith("#")]
    # and loaded into another namespace it is the same rule set again
    other = netns_factory()
    _prepare(other)
    _load(other, out.stdout, backend=backend)
    again = run_in(other, SAVE[("ipv4", backend)]).stdout
    assert _by_table(parse_save(again, "ipv4", backend).to_dict()) == _by_table(
        parse_save(out.stdout, "ipv4", backend).to_dict())  # legacy's table order follows load order


def test_kube_save_output_loads_on_its_own(kube_ns: str) -> None:
    _load(kube_ns, (FIXTURES / "kube-iptables-mode.rules").read_text())
    run_in(kube_ns, "iptables-nft", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")
    out = kpctl("--netns", kube_ns, "iptables", "list", "--kube", "-o", "save")
    assert out.exit_code == 0 and "-A INPUT -i lo -j ACCEPT" not in out.stdout
    run_in(kube_ns, "iptables-nft-restore", "--test", input=out.stdout)


def test_ipv6_nft_rules_match_ip6tables_save(kube_ns: str) -> None:
    text = (UNIT_FIXTURES / "ipv6-nft-counters.save").read_text()
    _load(kube_ns, text, family="ipv6", counters=True)
    (ruleset,) = _list_json(kube_ns, "--family", "ipv6", "--counters")["rulesets"]
    reference = parse_save(run_in(kube_ns, "ip6tables-nft-save", "-c").stdout, "ipv6", "nft")
    assert ruleset == reference.to_dict()
    # iptables-nft-restore -c (1.8.9) restores chain counters but not rule counters
    output = next(c for t in ruleset["tables"] for c in t["chains"] if t["name"] == "nat" and c["name"] == "OUTPUT")
    assert (output["packets"], output["bytes"]) == (3, 174)
    out = kpctl("--netns", kube_ns, "iptables", "list", "--family", "ipv6", "-o", "save")
    run_in(kube_ns, "ip6tables-nft-restore", "--test", input=out.stdout)


def test_ipv6_legacy_rules_and_restored_counters(kube_ns: str) -> None:
    text = (UNIT_FIXTURES / "ipv6-nft-counters.save").read_text()
    _load(kube_ns, text, family="ipv6", backend="legacy", counters=True)
    (ruleset,) = _list_json(kube_ns, "--family", "ipv6", "--backend", "legacy", "--counters")["rulesets"]
    reference = parse_save(run_in(kube_ns, "ip6tables-legacy-save", "-c").stdout, "ipv6", "legacy")
    assert _by_table(ruleset) == _by_table(reference.to_dict())
    assert sum(len(c["rules"]) for t in ruleset["tables"] for c in t["chains"]) == 18
    kernel_counters = {(r["chain"], r["number"]): r["counters"] for t in ruleset["tables"]
                       for c in t["chains"] for r in c["rules"]}
    file_counters = {(r.chain, r.number): r.counters.to_dict() for t in parse_save(text, "ipv6").tables.values()
                     for c in t.chains.values() for r in c.rules if r.counters}
    assert kernel_counters == file_counters and kernel_counters[("KUBE-SERVICES", 3)]["packets"] == 3
    out = kpctl("--netns", kube_ns, "iptables", "list", "--family", "ipv6", "--counters", "-o", "save")
    assert "[3:174] -A KUBE-SERVICES -s ::1/128 -j RETURN" in out.stdout
    run_in(kube_ns, "ip6tables-legacy-restore", "--test", "-c", input=out.stdout)


def test_counters_follow_traffic_on_loopback(kube_ns: str) -> None:
    _load(kube_ns, (FIXTURES / "kube-ipvs-mode.rules").read_text(), backend="legacy")
    run_in(kube_ns, "python3", "-c",
           "import socket\nfor p in (9, 10, 11, 12):\n"
           "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', ('127.0.0.1', p)); s.close()")
    (ruleset,) = _list_json(kube_ns, "--counters", "-t", "nat", "--chain", "KUBE-SERVICES")["rulesets"]
    first = ruleset["tables"][0]["chains"][0]["rules"][0]
    assert first["text"] == "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN"
    assert first["counters"]["packets"] == 4
    plain = kpctl("--netns", kube_ns, "iptables", "list", "--counters", "-t", "nat", "--chain", "KUBE-SERVICES")
    header, row = plain.stdout.splitlines()[:2]
    assert header.endswith("PKTS\tBYTES") and row.split("\t")[-2] == "4"


def test_backends_single_then_mixed(kube_ns: str) -> None:
    out = kpctl("--netns", kube_ns, "iptables", "backends", "-o", "json")
    assert out.exit_code == 0 and json.loads(out.stdout)["verdict"] == "no KUBE-* rules in any backend"
    _load(kube_ns, (FIXTURES / "kube-iptables-mode.rules").read_text(), backend="nft")
    run_in(kube_ns, "iptables-legacy", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT")  # legacy, but not kube's
    out = kpctl("--netns", kube_ns, "iptables", "backends", "-o", "json")
    assert out.exit_code == 0, out.stdout
    report = json.loads(out.stdout)
    assert report["kube_backends"] == ["nft"] and not report["mixed"]
    # the counts (KUBE-* rules counted, not parsed) are what iptables-nft-save shows
    saved = run_in(kube_ns, "iptables-nft-save").stdout.splitlines()
    nft = next(b for b in report["backends"] if (b["family"], b["backend"]) == ("ipv4", "nft"))
    assert nft["rules"] == sum(line.startswith("-A ") for line in saved) > 0
    assert nft["kube_rules"] == sum(line.startswith("-A KUBE-") or (line.startswith("-A ") and "-j KUBE-" in line)
                                    for line in saved)
    assert nft["chains"] == sum(line.startswith(":") and line.split()[1] == "-" for line in saved)
    legacy = next(b for b in report["backends"] if (b["family"], b["backend"]) == ("ipv4", "legacy"))
    assert legacy["holds_rules"] and not legacy["holds_kube"] and legacy["available"]
    _load(kube_ns, (FIXTURES / "kube-ipvs-mode.rules").read_text(), backend="legacy")
    out = kpctl("--netns", kube_ns, "iptables", "backends")
    assert out.exit_code == 1
    assert "split across legacy and nft (ipv4)" in out.stderr


def test_backends_legacy_only_is_not_mixed(kube_ns: str) -> None:
    _load(kube_ns, (FIXTURES / "kube-ipvs-mode.rules").read_text(), backend="legacy")
    out = kpctl("--netns", kube_ns, "iptables", "backends", "-o", "json")
    assert out.exit_code == 0
    assert json.loads(out.stdout)["kube_backends"] == ["legacy"]


def test_rule_counters_equal_iptables_legacy_save_c(kube_ns: str) -> None:
    # kube-proxy's iptables-mode rules (the shape kpctl reads without the token parser) with
    # counters, restored by the reference tool; kpctl's rules and counters are what it saves
    lines = (FIXTURES / "kube-iptables-mode.rules").read_text().splitlines()
    counted = "\n".join(f"[{n}:{n * 60}] {line}" if line.startswith("-A ") else line for n, line in enumerate(lines))
    _load(kube_ns, counted + "\n", backend="legacy", counters=True)
    saved = run_in(kube_ns, "iptables-legacy-save", "-c").stdout
    reference = [(line.split()[2], line.partition("] ")[2], *map(int, line[1:line.index("]")].split(":")))
                 for line in saved.splitlines() if line.startswith("[") and " -A " in line]
    assert len(reference) == sum(line.startswith("-A ") for line in lines) > 20
    assert sum(packets > 0 for _chain, _text, packets, _bytes in reference) > 20  # (the counters came through)
    (ruleset,) = _list_json(kube_ns, "--backend", "legacy", "--counters")["rulesets"]
    listed = [(rule["chain"], rule["text"], rule["counters"]["packets"], rule["counters"]["bytes"])
              for table in ruleset["tables"] for chain in table["chains"] for rule in chain["rules"]]
    assert sorted(listed) == sorted(reference)
