"""Doctor on the example snapshots of every mode: healthy -> no finding; one fault injected into the
snapshot -> exactly its finding; a node switched between modes without clean-up -> the leftovers.

Every case goes through `kpctl --snapshot FILE doctor -o json` (the real reader, in-process)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kpctl.core.doctor import CHECKS
from tests.cli_helpers import kpctl
from tests.unit.test_doctor import BROKEN as IPVS_BROKEN

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Snapshot = dict[str, Any]


def example(name: str) -> Snapshot:
    return json.loads((EXAMPLES / f"{name}-node.json").read_text())  # type: ignore[no-any-return]


def doctor(tmp_path: Path, snapshot: Snapshot, *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "node.json"
    path.write_text(json.dumps(snapshot))
    outcome = kpctl("--snapshot", str(path), "doctor", "-o", "json", *args)
    assert outcome.stderr == ""
    return outcome.exit_code, json.loads(outcome.stdout)


def checks_of(data: dict[str, Any]) -> set[str]:
    return {f["check"] for f in data["findings"]}


@pytest.mark.parametrize("name,mode", [("seed-ipvs", "ipvs"), ("iptables", "iptables"), ("nftables", "nftables"),
                                       ("userspace", "userspace")])
def test_healthy_example_of_every_mode_has_no_findings(tmp_path: Path, name: str, mode: str) -> None:
    status, data = doctor(tmp_path, example(name))
    assert (status, data["findings"], data["mode"]["active"]) == (0, [], mode)
    assert all(not CHECKS[c].modes or mode in CHECKS[c].modes for c in data["checks"])


# ------------------------------------------------------------------ iptables mode faults

def rules_edit(edit: Callable[[str], str]) -> Snapshot:
    snapshot = example("iptables")
    snapshot["iptables"]["ipv4"]["nft"] = edit(snapshot["iptables"]["ipv4"]["nft"])
    return snapshot


def drop_lines(*needles: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        kept = [line for line in text.splitlines(keepends=True) if not any(n in line for n in needles)]
        assert len(kept) < len(text.splitlines()), needles
        return "".join(kept)
    return edit


def with_sysctls(snapshot: Snapshot, **values: str) -> Snapshot:
    snapshot["sysctls"] = {**snapshot["sysctls"], **{k.replace("__", "."): v for k, v in values.items()}}
    return snapshot


# ------------------------------------------------------------------ nftables mode faults

def nft_edit(keep: Callable[[dict[str, Any]], bool] = lambda item: True,
             change: Callable[[dict[str, Any]], None] = lambda item: None) -> Snapshot:
    snapshot = example("nftables")
    items = [item for item in snapshot["nftables"]["nftables"] if keep(item)]
    assert len(items) < len(snapshot["nftables"]["nftables"]) or change is not None
    for item in items:
        change(item)
    snapshot["nftables"]["nftables"] = items
    return snapshot


def in_chain(*names: str) -> Callable[[dict[str, Any]], bool]:
    """Keep everything but the chains named and their rules."""
    def keep(item: dict[str, Any]) -> bool:
        body = item.get("chain") or item.get("rule") or {}
        return (body.get("name") if "chain" in item else body.get("chain")) not in names
    return keep


def jumps_to(item: dict[str, Any], target: str) -> bool:
    return f'"target": "{target}"' in json.dumps(item.get("rule", {}).get("expr", []))


def flush_map(name: str) -> Callable[[dict[str, Any]], None]:
    def change(item: dict[str, Any]) -> None:
        if item.get("map", {}).get("name") == name:
            item["map"]["elem"] = []
    return change


def nft_meta(snapshot: Snapshot, version: str, kernel: str) -> Snapshot:
    snapshot["nftables"]["nftables"][0]["metainfo"]["version"] = version
    snapshot["kernel"] = kernel
    return snapshot


WEB_SVC = "service-HVFWP5L3-default/web/tcp/http"
K8S_SVC = "service-2QRHZV4L-default/kubernetes/tcp/https"

BROKEN: dict[str, Callable[[], Snapshot]] = {
    "iptables-svc-without-sep": lambda: rules_edit(drop_lines(
        '"default/kubernetes:https -> 10.0.0.10:6443" -j KUBE-SEP-IT2ZTR26TO4XFPTO')),
    "iptables-dangling-jump": lambda: rules_edit(drop_lines(":KUBE-SVC-JD5MR3NA4I4DYORP ", "-A KUBE-SVC-JD5MR3NA4I4DYORP ")),
    "iptables-no-endpoints-not-rejected": lambda: rules_edit(drop_lines(
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')),
    "iptables-hook-missing": lambda: rules_edit(drop_lines(
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING')),
    "route-localnet": lambda: with_sysctls(example("iptables"), net__ipv4__conf__all__route_localnet="0"),
    "nft-table-missing": lambda: nft_edit(lambda item: "metainfo" in item),
    "nft-table-incomplete": lambda: nft_edit(lambda item: item.get("map", {}).get("name") != "service-nodeports"),
    "nft-too-old": lambda: nft_meta(example("nftables"), "1.0.6", "5.10.0-28-amd64"),
    "nft-map-chain-missing": lambda: nft_edit(in_chain(K8S_SVC)),
    "nft-service-without-endpoint": lambda: nft_edit(
        lambda item: not (item.get("rule", {}).get("chain") == WEB_SVC and "numgen" in json.dumps(item))),
    "nft-cluster-ip-unserved": lambda: nft_edit(change=flush_map("service-ips")),
    "nft-cluster-ips-check": lambda: nft_edit(
        lambda item: in_chain("cluster-ips-check")(item) and not jumps_to(item, "cluster-ips-check")),
}


def test_every_check_has_a_broken_case_here_or_in_test_doctor() -> None:
    leftovers = {"leftover-ipvs", "leftover-iptables", "leftover-nftables", "leftover-userspace"}
    assert set(BROKEN) | set(IPVS_BROKEN) | leftovers | {"iptables-rule-count"} == set(CHECKS)


@pytest.mark.parametrize("check_id", sorted(BROKEN))
def test_fault_in_snapshot_gives_exactly_its_finding(tmp_path: Path, check_id: str) -> None:
    status, data = doctor(tmp_path, BROKEN[check_id]())
    assert checks_of(data) == {check_id}, data["findings"]
    assert status == (1 if CHECKS[check_id].severity == "error" else 0)
    finding = data["findings"][0]
    assert finding["severity"] == CHECKS[check_id].severity and finding["subject"] and finding["fix"]


def test_svc_chain_jumping_to_a_missing_sep_names_it(tmp_path: Path) -> None:
    snapshot = rules_edit(drop_lines("KUBE-SEP-IT2ZTR26TO4XFPTO - [0:0]", "-A KUBE-SEP-IT2ZTR26TO4XFPTO "))
    _status, data = doctor(tmp_path, snapshot)
    assert checks_of(data) == {"iptables-svc-without-sep"}
    assert data["findings"][0]["found"] == ("KUBE-SVC-NPX46M4PTMTKRN6Y (default/kubernetes:https, ipv4/nft) jumps to "
                                            "no KUBE-SEP chain (KUBE-SEP-IT2ZTR26TO4XFPTO does not exist)")


def test_empty_svl_chain_nothing_jumps_to_is_fine(tmp_path: Path) -> None:
    # What kube-proxy writes for externalTrafficPolicy: Local without local endpoints.
    snapshot = rules_edit(lambda text: text.replace(":KUBE-SVC-WEBHTTP00000000000 - [0:0]\n",
                                                    ":KUBE-SVC-WEBHTTP00000000000 - [0:0]\n:KUBE-SVL-EMPTY000000000000 - [0:0]\n"))
    assert checks_of(doctor(tmp_path, snapshot)[1]) == set()


def test_missing_hooks_name_the_chain_and_the_jump_to_put_back(tmp_path: Path) -> None:
    firewall_jump = ('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
                     '-j KUBE-PROXY-FIREWALL')
    snapshot = rules_edit(drop_lines(firewall_jump))
    assert checks_of(doctor(tmp_path, snapshot)[1]) == set()
    snapshot = rules_edit(drop_lines(
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES', firewall_jump))
    # (the example's KUBE-PROXY-FIREWALL is empty: an unhooked empty chain loses nothing)
    rules = snapshot["iptables"]["ipv4"]["nft"]
    assert "COMMIT\n*nat\n" in rules
    snapshot["iptables"]["ipv4"]["nft"] = rules.replace(
        "COMMIT\n*nat\n", "-A KUBE-PROXY-FIREWALL -d 203.0.113.9/32 -j DROP\nCOMMIT\n*nat\n")
    status, data = doctor(tmp_path, snapshot)
    assert status == 1
    assert [(f["subject"], f["found"]) for f in data["findings"]] == [
        ("ipv4/nft nat PREROUTING", "nat PREROUTING does not jump to KUBE-SERVICES (ipv4, nft)"),
        ("ipv4/nft filter FORWARD", "filter FORWARD does not jump to KUBE-PROXY-FIREWALL (ipv4, nft)")]
    # the jump put back as kube-proxy writes it: its comment, or the matches of the jump left in INPUT
    assert data["findings"][0]["fix"].endswith(
        'iptables-nft -t nat -I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
    assert data["findings"][1]["fix"].endswith(
        "iptables-nft -t filter -I FORWARD -m conntrack --ctstate NEW -m comment --comment "
        '"kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL')


def test_nft_findings_name_the_element_and_the_exact_fix(tmp_path: Path) -> None:
    _status, data = doctor(tmp_path, BROKEN["nft-map-chain-missing"]())
    finding = data["findings"][0]
    assert finding["subject"] == "ip kube-proxy service-ips 10.96.0.1 . tcp . 443"
    assert finding["fix"].startswith("nft delete element ip kube-proxy service-ips { 10.96.0.1 . tcp . 443 }")
    _status, data = doctor(tmp_path, BROKEN["nft-cluster-ip-unserved"]())
    assert sorted(f["subject"].split()[-1] for f in data["findings"]) == [
        "10.96.0.1", "10.96.0.10", "10.96.100.10", "10.96.100.20"]  # .30 is in no-endpoint-services


def test_nft_too_old_names_nft_and_kernel(tmp_path: Path) -> None:
    _status, data = doctor(tmp_path, nft_meta(example("nftables"), "0.9.8", "5.10.0-28-amd64"))
    assert data["findings"][0]["found"] == ("nftables mode with nft 0.9.8 (needs >= 1.0.1) and "
                                            "kernel 5.10.0-28-amd64 (needs >= 5.13)")


def test_rule_count_at_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 100k real rules would make this a benchmark: the threshold is lowered under the example's 75 rules.
    from kpctl.core.doctor import iptables

    monkeypatch.setattr(iptables, "RULES_AT_SCALE", 70)
    status, data = doctor(tmp_path, example("iptables"))
    assert (status, checks_of(data)) == (0, {"iptables-rule-count"})
    assert data["findings"][0]["found"].endswith("iptables rules (more than 70)")
    monkeypatch.setattr(iptables, "RULES_AT_SCALE", 100_000)
    assert checks_of(doctor(tmp_path, example("iptables"))[1]) == set()


def test_iptables_checks_do_not_run_on_an_nftables_node(tmp_path: Path) -> None:
    _status, data = doctor(tmp_path, example("nftables"), "--check", "iptables-svc-without-sep")
    assert data["checks"] == [] and data["not_applicable"] == ["iptables-svc-without-sep"]


# ------------------------------------------------------------------ mode switches

def merged(base: str, *others: str, mode: str | None = "keep") -> Snapshot:
    """``base`` with the kube-proxy state of ``others`` left behind (links merged by name)."""
    snapshot = copy.deepcopy(example(base))
    for other in map(example, others):
        for section in ("ipvs", "ipsets", "iptables", "nftables"):
            if other.get(section) and not snapshot.get(section):
                snapshot[section] = other[section]
        names = {link["name"] for link in snapshot["links"]}
        snapshot["links"] += [link for link in other["links"] if link["name"] not in names]
    if mode != "keep":
        snapshot.pop("mode") if mode is None else snapshot.update(mode=mode)
    return snapshot


def test_ipvs_node_switched_to_nftables_names_the_ipvs_leftovers(tmp_path: Path) -> None:
    status, data = doctor(tmp_path, merged("nftables", "seed-ipvs", mode=None))
    assert data["mode"]["active"] == "nftables"
    assert status == 1 and checks_of(data) == {"leftover-ipvs"}
    finding = data["findings"][0]
    assert "IPVS virtual service(s)" in finding["found"] and "kube-ipvs0 with" in finding["found"]
    assert "ipsets: KUBE-CLUSTER-IP, " in finding["found"] and "chains: " in finding["found"]
    assert "ipvsadm -C" in finding["fix"] and "ip link delete kube-ipvs0" in finding["fix"]


def test_stale_nft_table_on_an_iptables_node(tmp_path: Path) -> None:
    status, data = doctor(tmp_path, merged("iptables", "nftables"))
    assert (status, checks_of(data)) == (1, {"leftover-nftables"})
    assert data["findings"][0]["fix"] == "nft delete table ip kube-proxy  (or kube-proxy --cleanup)"


def test_iptables_chains_left_on_an_nftables_node(tmp_path: Path) -> None:
    status, data = doctor(tmp_path, merged("nftables", "iptables"))
    assert (status, checks_of(data)) == (1, {"leftover-iptables"})
    found = data["findings"][0]["found"]
    assert "but iptables mode left: 30 chains: nat/KUBE-EXT-LOCALWEBHTTP0000X (ipv4/nft), " in found
    assert found.endswith(", …") and "kube-proxy --cleanup" in data["findings"][0]["fix"]


def test_userspace_chains_left_on_an_nftables_node(tmp_path: Path) -> None:
    status, data = doctor(tmp_path, merged("nftables", "userspace"))
    assert (status, checks_of(data)) == (1, {"leftover-userspace"})


def test_ipv6_forwarding_checked_for_an_ip6_kube_proxy_table(tmp_path: Path) -> None:
    snapshot = with_sysctls(example("nftables"), net__ipv6__conf__all__forwarding="0")
    assert checks_of(doctor(tmp_path, snapshot)[1]) == set()  # no IPv6 Services: fine
    for item in snapshot["nftables"]["nftables"]:
        for body in item.values():
            if isinstance(body, dict) and body.get("family") == "ip":
                body["family"] = "ip6"  # the same table as a dual-stack node's IPv6 half
    status, data = doctor(tmp_path, snapshot, "--check", "ip-forward")
    assert (status, [f["subject"] for f in data["findings"]]) == (1, ["net.ipv6.conf.all.forwarding"])


def test_a_node_is_not_kept_alive_by_the_mode_memo_after_its_run(tmp_path: Path) -> None:
    """The mode memo holds its node weakly: a doctor run leaves no node behind (a 110,000-rule
    node kept alive was walked again by the collector at interpreter exit: 0.2 s)."""
    import gc

    from kpctl.model.doctor import NodeState

    code, _ = doctor(tmp_path, example("iptables"))
    assert code == 0
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is NodeState]


# ------------------------------------------------------------------ FORWARD DROP in nftables mode

FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n{rules}COMMIT\n"


def nft_node_with_filter(policy: str, *rules: str, family: str = "ipv4", backend: str = "nft") -> Snapshot:
    """The nftables example with an iptables filter table (no kube-proxy chains: nftables mode writes none)."""
    snapshot = example("nftables")
    text = FILTER.format(policy=policy, rules="".join(f"-A FORWARD {rule}\n" for rule in rules))
    snapshot["iptables"] = {family: {backend: text, "legacy" if backend == "nft" else "nft": None}}
    return snapshot


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_forward_drop_on_an_nftables_node_is_a_warning(tmp_path: Path, backend: str) -> None:
    status, data = doctor(tmp_path, nft_node_with_filter("DROP", "-i docker0 -j ACCEPT", backend=backend))
    assert data["mode"]["active"] == "nftables" and "forward-drop" in data["checks"]
    assert status == 0 and [(f["check"], f["severity"], f["subject"]) for f in data["findings"]] == [
        ("forward-drop", "warning", f"ipv4/{backend} filter FORWARD")]
    finding = data["findings"][0]
    assert "kube-proxy's nftables mode accepts nothing there" in finding["found"]
    assert finding["fix"].startswith(f"accept Service connections ahead of the policy: iptables-{backend} -I FORWARD "
                                     "-m conntrack --ctstate DNAT,RELATED,ESTABLISHED -j ACCEPT")


@pytest.mark.parametrize("policy,rules,found", [
    ("ACCEPT", (), False),
    ("DROP", ("-m conntrack --ctstate DNAT,RELATED,ESTABLISHED -j ACCEPT",), False),
    ("DROP", ("-m comment --comment \"services\" -m conntrack --ctstate DNAT -j ACCEPT",), False),
    ("DROP", ("-j ACCEPT",), False),
    ("DROP", ("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",), True),  # a Service's first packet is NEW
    ("DROP", ("-m conntrack ! --ctstate DNAT -j ACCEPT",), True),
    ("DROP", ("-s 10.0.0.0/8 -m conntrack --ctstate DNAT -j ACCEPT",), True),
    ("DROP", ("-m conntrack --ctstate DNAT -j LOG",), True),
])
def test_forward_drop_on_an_nftables_node_unless_service_connections_are_accepted(
        tmp_path: Path, policy: str, rules: tuple[str, ...], found: bool) -> None:
    _status, data = doctor(tmp_path, nft_node_with_filter(policy, *rules), "--check", "forward-drop")
    assert checks_of(data) == ({"forward-drop"} if found else set())


def test_forward_drop_agrees_with_the_trace_on_an_nftables_node(tmp_path: Path) -> None:
    """What the finding says is what a trace of a forwarded Service connection shows."""
    for rules, disposition in (((), "DROPPED"), (("-m conntrack --ctstate DNAT -j ACCEPT",), "DELIVERED")):
        path = tmp_path / "node.json"
        path.write_text(json.dumps(nft_node_with_filter("DROP", *rules)))
        traced = kpctl("--snapshot", str(path), "trace", "10.96.100.10:80", "--from", "external:203.0.113.7",
                       "-o", "json")
        assert {o["disposition"] for o in json.loads(traced.stdout)["outcomes"]} == {disposition}
        assert checks_of(doctor(tmp_path, nft_node_with_filter("DROP", *rules))[1]) == (
            {"forward-drop"} if disposition == "DROPPED" else set())


def with_nft_firewall(snapshot: Snapshot, *rules: list[dict[str, Any]], policy: str = "drop") -> Snapshot:
    """``snapshot`` with a firewall's nft table: a forward hook chain of ``policy`` holding ``rules``."""
    fw = [{"table": {"family": "inet", "name": "fw", "handle": 90}},
          {"chain": {"family": "inet", "table": "fw", "name": "forward", "handle": 1, "type": "filter",
                     "hook": "forward", "prio": 0, "policy": policy}}]
    fw += [{"rule": {"family": "inet", "table": "fw", "chain": "forward", "handle": 2 + at, "expr": expr}}
           for at, expr in enumerate(rules)]
    document = snapshot.get("nftables") or {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "x",
                                                                       "json_schema_version": 1}}]}
    snapshot["nftables"] = {"nftables": document["nftables"] + fw}
    return snapshot


DNAT_ACCEPT = [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"counter": None},
               {"accept": None}]


@pytest.mark.parametrize("name", ["nftables", "iptables", "seed-ipvs"])
def test_a_firewall_nft_forward_chain_dropping_is_a_warning_in_every_mode(tmp_path: Path, name: str) -> None:
    status, data = doctor(tmp_path, with_nft_firewall(example(name)), "--check", "forward-drop")
    assert (status, [(f["check"], f["severity"], f["subject"]) for f in data["findings"]]) == (
        0, [("forward-drop", "warning", "inet fw chain forward")])
    assert data["findings"][0]["fix"].startswith(
        "accept Service connections ahead of the policy: nft insert rule inet fw forward ct status dnat accept")
    for fixed in (with_nft_firewall(example(name), DNAT_ACCEPT), with_nft_firewall(example(name), policy="accept"),
                  with_nft_firewall(example(name), [{"accept": None}])):
        assert checks_of(doctor(tmp_path, fixed, "--check", "forward-drop")[1]) == set()
    narrower = [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}}, {"accept": None}]
    assert checks_of(doctor(tmp_path, with_nft_firewall(example(name), narrower), "--check", "forward-drop")[1]) == {
        "forward-drop"}


def test_the_nft_forward_drop_finding_agrees_with_the_trace(tmp_path: Path) -> None:
    for rules, disposition, found in (((), "DROPPED", {"forward-drop"}), ((DNAT_ACCEPT,), "DELIVERED", set())):
        snapshot = with_nft_firewall(example("nftables"), *rules)
        path = tmp_path / "node.json"
        path.write_text(json.dumps(snapshot))
        traced = kpctl("--snapshot", str(path), "trace", "10.96.100.10:80", "--from", "external:203.0.113.7",
                       "-o", "json")
        assert {o["disposition"] for o in json.loads(traced.stdout)["outcomes"]} == {disposition}
        assert checks_of(doctor(tmp_path, snapshot)[1]) == found


def test_each_dropping_firewall_chain_is_judged_by_its_own_rules(tmp_path: Path) -> None:
    snapshot = with_nft_firewall(example("nftables"), DNAT_ACCEPT)
    snapshot["nftables"]["nftables"] += [
        {"chain": {"family": "inet", "table": "fw", "name": "forward2", "handle": 7, "type": "filter",
                   "hook": "forward", "prio": 10, "policy": "drop"}},
        {"chain": {"family": "inet", "table": "fw", "name": "forward3", "handle": 8, "type": "filter",
                   "hook": "forward", "prio": 20, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "fw", "chain": "forward3", "handle": 9, "expr": DNAT_ACCEPT}}]
    _status, data = doctor(tmp_path, snapshot, "--check", "forward-drop")
    assert [f["subject"] for f in data["findings"]] == ["inet fw chain forward2"]
