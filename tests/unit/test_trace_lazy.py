"""Trace over lazily read iptables rules: IPv4 addresses read without ipaddress, and a malformed
rule in a walked chain fails the trace as the full parse does."""

from __future__ import annotations

import ipaddress
import json
import runpy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.core.iptables_save import parse_save
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace.engine import trace
from kpctl.core.trace.request import build_packet, parse_origin
from kpctl.errors import InvalidInput
from kpctl.model.iptables import ipv4_int, ipv4_network
from kpctl.model.snapshot import NodeSnapshot
from kpctl.output.trace import format_text

ROOT = Path(__file__).resolve().parents[2]
GEN = runpy.run_path(str(ROOT / "bench" / "gen_snapshot.py"))  # its generators, not its main()

ADDRESSES = ["10.254.0.1", "10.254.0.1/32", "10.254.0.0/16", "10.100.0.7/31", "0.0.0.0/0", "10.1.2.3/24",
             "127.0.0.0/8", "172.30.0.0/16", "10.0.0.1/08", "010.0.0.1", "256.1.1.1", "10.0.0.1/33", "1.2.3",
             "10.0.0.0/255.0.0.0", "fd00::10", "fd00::/8", "10.0.0.1/", "10.0.0.1/3a", "١.2.3.4"]


@pytest.mark.parametrize("text", ADDRESSES + ["0.0.0.0", "255.255.255.255/32", "10.9.8.7/0", "1.2.3.4/7"])
def test_ipv4_networks_read_as_ipaddress_reads_them(text: str) -> None:
    found = ipv4_network(text, False)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        assert found is None
        return
    if found is None:
        assert network.version == 6 or text.split("/")[-1].startswith("0") or "/" in text and "." in text.split("/")[1]
        return
    assert network.version == 4
    assert found == (int(network.network_address), int(network.netmask), False, str(network))
    if "/" not in text:
        assert ipv4_int(text) == int(ipaddress.ip_address(text))


@settings(max_examples=300)
@given(st.integers(0, 2**32 - 1), st.one_of(st.none(), st.integers(0, 40).map(str), st.sampled_from(["", "x", "08"])))
def test_any_dotted_quad_and_prefix_read_as_ipaddress_reads_them(value: int, prefix: str | None) -> None:
    test_ipv4_networks_read_as_ipaddress_reads_them(str(ipaddress.IPv4Address(value)) + (
        "" if prefix is None else "/" + prefix))


@pytest.mark.parametrize("text", ["10.0.0.1/32", "10.0.0.01", "1.2.3", "fd00::1", "256.0.0.1", " 1.2.3.4", "١.2.3.4"])
def test_ipv4_int_takes_only_what_ipaddress_reads_as_ipv4(text: str) -> None:
    assert ipv4_int(text) is None


def _outcome(view: NodeView, service: str, origin: str, sport: int | None = None) -> tuple[str, ...]:
    try:
        start = parse_origin(origin)
        result = trace(view, build_packet(view, service, start, sport), str(start), service)
    except InvalidInput as exc:
        return ("error", str(exc))
    return (json.dumps(result.to_dict(), sort_keys=True), format_text(result), format_text(result, wide=True))


@pytest.fixture(scope="module")
def grown() -> NodeSnapshot:
    snap, _ = GEN["iptables_node"](60, 3)
    return NodeSnapshot(1, {k: v for k, v in snap.items() if k not in ("format", "version")})


def test_a_malformed_rule_fails_the_fast_walk_as_the_full_parse_does(grown: NodeSnapshot) -> None:
    vip = GEN["vip"]
    sections = dict(grown.sections)
    v4 = dict(sections["iptables"]["ipv4"])
    key = "nft" if v4.get("nft") else "legacy"
    bad = f"-d {vip(40)}/32 -p tcp"
    assert bad in v4[key]
    v4[key] = v4[key].replace(bad, f"-d {vip(40)}/33 -p tcp", 1)
    sections["iptables"] = {**sections["iptables"], "ipv4": v4}
    broken = NodeSnapshot(1, sections)
    with pytest.raises(InvalidInput) as full:
        parse_save(v4[key], "ipv4", key, origin=f"snapshot (ipv4 {key})")
    # the traced service's rule comes before the bad one: the fast walk still reads the whole chain
    assert _outcome(NodeView(broken), f"{vip(3)}:80", "node") == ("error", str(full.value))
