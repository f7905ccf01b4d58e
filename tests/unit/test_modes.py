"""kpctl.core.modes: which kube-proxy modes left state, and which is active."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kpctl.core.iptables_save import parse_save
from kpctl.core.modes import detect_modes, modes_of_view
from kpctl.core.snapshot_view import NodeView
from kpctl.model.snapshot import NodeSnapshot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _view(name: str, drop_hint: bool = True, **extra: Any) -> NodeView:
    document = json.loads((EXAMPLES / name).read_text())
    document.pop("format")
    version = document.pop("version")
    if drop_hint:
        document.pop("mode", None)
    document.update(extra)
    return NodeView(NodeSnapshot(version, document))


@pytest.mark.parametrize(("name", "mode"), [("seed-ipvs-node.json", "ipvs"), ("iptables-node.json", "iptables"),
                                            ("nftables-node.json", "nftables"), ("userspace-node.json", "userspace")])
def test_each_example_node_is_one_mode_without_a_hint(name: str, mode: str) -> None:
    report = modes_of_view(_view(name))
    assert report.active == mode
    assert report.leftovers == ()
    assert report.state(mode) is not None and report.state(mode).carries_services  # type: ignore[union-attr]


def test_ipvs_node_switched_to_nftables_names_the_ipvs_leftovers() -> None:
    nft = json.loads((EXAMPLES / "nftables-node.json").read_text())["nftables"]
    report = modes_of_view(_view("seed-ipvs-node.json", nftables=nft))
    assert report.active == "nftables"
    assert [s.mode for s in report.leftovers] == ["ipvs"]
    objects = report.leftovers[0].objects
    assert "5 IPVS virtual service(s)" in objects
    assert "kube-ipvs0 with 3 address(es)" in objects
    assert "ipset KUBE-CLUSTER-IP" in objects
    assert any("KUBE-SERVICES" in o for o in objects)  # the shared chains go with the old mode
    assert "coexists" in report.reason


def test_kube_services_content_tells_iptables_from_ipvs_when_both_carry_services() -> None:
    iptables_rules = parse_save("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n"
                                "-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp --dport 80 -j KUBE-SVC-A\nCOMMIT\n")
    report = detect_modes(ipvs_services=3, ipset_names=["KUBE-CLUSTER-IP"], rulesets=[iptables_rules])
    assert report.active == "iptables"
    assert report.reason == "nat KUBE-SERVICES was last written by iptables mode"
    ipvs_rules = parse_save("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-A - [0:0]\n"
                            "-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\nCOMMIT\n")
    assert detect_modes(ipvs_services=3, rulesets=[ipvs_rules]).active == "ipvs"


def test_hint_wins_and_kubelet_chains_are_nobodys() -> None:
    rules = parse_save("*filter\n:KUBE-FIREWALL - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n")
    report = detect_modes(rulesets=[rules])
    assert (report.active, report.present) == ("none", ())
    assert detect_modes(ipvs_services=1, hint="nftables").leftovers[0].mode == "ipvs"
