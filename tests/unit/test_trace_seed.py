"""The seed article's node (examples/seed-ipvs-node.json): the path it describes, end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kpctl.backends.snapshot import load_snapshot
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace.engine import trace
from kpctl.core.trace.request import build_packet, parse_origin
from kpctl.model.trace import Disposition
from tests.cli_helpers import kpctl

SEED = str(Path(__file__).resolve().parents[2] / "examples" / "seed-ipvs-node.json")


@pytest.fixture(scope="module")
def seed() -> NodeView:
    return NodeView(load_snapshot(SEED))


def run(view: NodeView, service: str, origin: str = "node"):
    start = parse_origin(origin)
    return trace(view, build_packet(view, service, start), str(start), service)


def hooks(steps) -> list[str]:
    out: list[str] = []
    for step in steps:
        if not out or out[-1] != step.hook:
            out.append(step.hook)
    return out


def test_node_to_kubernetes_service_is_delivered_and_masqueraded(seed: NodeView) -> None:
    result = run(seed, "10.254.0.1:443")
    assert result.mode == "ipvs"
    assert result.disposition is Disposition.DELIVERED
    (outcome,) = result.outcomes
    assert outcome.server == "192.168.10.10:6443" and outcome.probability == 1.0
    # The node's socket to a VIP on kube-ipvs0 takes the VIP as source; KUBE-SERVICES marks it
    # (! -s 172.30.0.0/16), KUBE-POSTROUTING masquerades it to eth0's address.
    assert result.packet.src == "10.254.0.1"
    assert outcome.masqueraded and outcome.final is not None and outcome.final.src == "192.168.10.11"
    steps = result.steps + outcome.steps
    assert hooks(steps) == ["ROUTING", "OUTPUT", "LOCAL_OUT", "ROUTING", "OUTPUT", "POSTROUTING"]
    marked = [s for s in steps if s.chain == "KUBE-MARK-MASQ" and s.matched]
    assert marked and marked[0].after is not None and marked[0].after.mark == 0x4000
    ipvs = next(s for s in steps if s.stage == "ipvs")
    assert ipvs.rule == "10.254.0.1:443/tcp" and ipvs.after is not None and ipvs.after.dst == "192.168.10.10"


def test_pod_to_kubernetes_service_keeps_the_pod_source(seed: NodeView) -> None:
    result = run(seed, "10.254.0.1:443", "pod:172.30.22.5")
    (outcome,) = result.outcomes
    assert outcome.disposition is Disposition.DELIVERED and outcome.server == "192.168.10.10:6443"
    assert not outcome.masqueraded and outcome.final is not None and outcome.final.src == "172.30.22.5"
    steps = result.steps + outcome.steps
    # PREROUTING → routing (VIP local on kube-ipvs0) → INPUT filter → IPVS at LOCAL_IN → POSTROUTING
    assert hooks(steps) == ["PREROUTING", "ROUTING", "INPUT", "LOCAL_IN", "ROUTING", "OUTPUT", "POSTROUTING"]
    route = next(s for s in steps if s.hook == "ROUTING")
    assert "kube-ipvs0" in route.reason
    first = next(s for s in steps if s.chain == "KUBE-SERVICES")
    assert first.rule_number == 1 and first.matched is False  # ! -s 172.30.0.0/16 does not match a pod


def test_two_endpoint_service_splits_half_and_half_and_hairpin_masquerades(seed: NodeView) -> None:
    result = run(seed, "10.254.199.160:8080", "pod:172.30.22.4")
    by_server = {o.server: o for o in result.outcomes}
    assert set(by_server) == {"172.30.22.4:8080", "172.30.78.4:8080"}
    assert all(math.isclose(o.probability or 0, 0.5) for o in result.outcomes)
    assert by_server["172.30.22.4:8080"].masqueraded  # KUBE-LOOP-BACK dst,dst,src
    assert not by_server["172.30.78.4:8080"].masqueraded


@pytest.mark.parametrize("service,server", [
    ("10.254.0.2:53/udp", "172.30.78.2:53"),
    ("10.254.0.2:53/tcp", "172.30.78.2:53"),
    ("10.254.0.2:9153", "172.30.78.2:9153"),
])
def test_every_seed_service_reaches_its_real_server(seed: NodeView, service: str, server: str) -> None:
    result = run(seed, service, "pod:172.30.22.5")
    assert [o.server for o in result.outcomes] == [server]
    assert result.delivered


def test_vip_without_that_port_goes_to_the_local_stack(seed: NodeView) -> None:
    result = run(seed, "10.254.0.1:80", "pod:172.30.22.5")
    assert result.disposition is Disposition.TO_LOCAL_STACK
    ipvs = next(s for s in result.steps + result.outcomes[0].steps if s.stage == "ipvs")
    assert ipvs.matched is False and "no IPVS service" in ipvs.reason


def test_external_client_is_masqueraded(seed: NodeView) -> None:
    result = run(seed, "10.254.0.1:443", "external:203.0.113.9")
    assert result.packet.iif == "eth0"
    assert result.outcomes[0].masqueraded


def test_vs_conntrack_off_means_no_masquerade(seed: NodeView) -> None:
    sections = dict(seed.snapshot.sections)
    sections["sysctls"] = {**sections["sysctls"], "net.ipv4.vs.conntrack": "0"}
    view = NodeView(type(seed.snapshot)(1, sections))
    result = run(view, "10.254.0.1:443")
    assert result.delivered and not result.outcomes[0].masqueraded
    assert any("vs.conntrack" in note for note in result.notes)


def test_cli_plain_output_and_exit_zero() -> None:
    outcome = kpctl("--snapshot", SEED, "trace", "10.254.0.1:443")
    assert outcome.exit_code == 0, outcome.stderr
    text = outcome.stdout
    assert text.startswith("trace 10.254.0.1:443 from node (kube-proxy ipvs mode)\n")
    assert "nat KUBE-SERVICES #1" in text and "LOCAL_OUT" in text and "192.168.10.10:6443" in text
    assert "MASQUERADE" in text and text.rstrip().endswith("disposition: DELIVERED")


def test_cli_plain_output_without_kube_proxy_rules_says_so(tmp_path: Path) -> None:
    snapshot = json.loads(Path(SEED).read_text())
    for section in ("ipvs", "ipsets", "iptables", "nftables", "mode"):  # (mode: the configured one)
        snapshot[section] = None
    snapshot["links"] = [link for link in snapshot["links"] if link["name"] != "kube-ipvs0"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(snapshot))
    outcome = kpctl("--snapshot", str(bare), "trace", "10.254.0.1:443")
    assert outcome.stdout.startswith("trace 10.254.0.1:443 from node (no kube-proxy state found)\n"), outcome.stdout


def test_cli_json_has_every_step() -> None:
    outcome = kpctl("--snapshot", SEED, "trace", "10.254.199.160:8080", "--from", "pod:172.30.22.4", "-o", "json")
    assert outcome.exit_code == 0
    doc = json.loads(outcome.stdout)
    assert doc["disposition"] == "DELIVERED" and doc["mode"] == "ipvs"
    assert len(doc["outcomes"]) == 2 and {o["server"] for o in doc["outcomes"]} == {"172.30.22.4:8080",
                                                                                     "172.30.78.4:8080"}
    assert any(s["matched"] is False for s in doc["steps"])  # non-matching rules are kept in json


def test_cli_tree_output() -> None:
    outcome = kpctl("--snapshot", SEED, "trace", "10.254.0.1:443", "-o", "tree")
    assert outcome.exit_code == 0
    assert "DELIVERED" in outcome.stdout and "LOCAL_OUT" in outcome.stdout and "├──" in outcome.stdout


def test_cli_not_delivered_exits_one() -> None:
    assert kpctl("--snapshot", SEED, "trace", "10.254.0.1:80").exit_code == 1


@pytest.mark.parametrize("args,needle", [
    (["10.254.0.1"], "10.254.0.1"),
    (["10.254.0.1:443/icmp"], "icmp"),
    (["10.254.0.1:443", "--from", "somewhere"], "somewhere"),
    (["10.254.0.1:443", "--from", "pod:300.1.1.1"], "300.1.1.1"),
    (["fwmark:5"], "fwmark:5"),
    (["10.254.0.1:443", "--from", "pod:192.168.10.11"], "192.168.10.11"),
])
def test_cli_bad_input_is_one_line_exit_two(args: list[str], needle: str) -> None:
    outcome = kpctl("--snapshot", SEED, "trace", *args)
    assert outcome.exit_code == 2, outcome.stdout
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kpctl: error: ") and needle in lines[0]
