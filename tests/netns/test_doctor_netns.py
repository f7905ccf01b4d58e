"""`kpctl doctor` live on the host kernel inside a throwaway namespace: no IPVS here, so the
IPVS checks are reported as skipped while the ipset, iptables and sysctl checks run for real."""

from __future__ import annotations

import json

from tests import doctor_node
from tests.cli_helpers import kpctl
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
