"""The trace's IPVS-mode fast paths give what the plain scans give.

- kpctl/core/trace/ipvs.py finds the packet's service among the snapshot's rows and builds
  only that VirtualService; find_service over every built service must agree;
- kpctl/core/ipset_find.py finds exact-point members by key; a scan of every member must agree;
- whole traces on a generated 60-service IPVS node equal those with both fast paths off.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpctl.core import ipset_find as sets
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace import ipvs as ipvs_step
from kpctl.core.trace.engine import trace
from kpctl.core.trace.request import build_packet, parse_origin
from kpctl.errors import InvalidInput
from kpctl.model.ipset import SET_TYPE_DIMENSIONS, IPSet, IPSetEntry
from kpctl.model.ipvs import VirtualService
from kpctl.model.snapshot import NodeSnapshot
from kpctl.model.trace import Packet
from kpctl.output.trace import format_text

ROOT = Path(__file__).resolve().parents[2]
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.0", "10.0.1.7", "fd00::1"]
packets = st.builds(
    Packet, st.sampled_from(ADDRESSES), st.sampled_from([0, 53, 80, 443, 43210]), st.sampled_from(ADDRESSES),
    st.sampled_from([0, 53, 80, 90, 443]), st.sampled_from(["tcp", "udp", "sctp", "icmp"]),
    st.sampled_from(["inet", "inet6"]), st.sampled_from([0, 0, 0x4000, 100]),
    st.sampled_from([None, "eth0", "cni0"]), st.sampled_from([None, "eth0", "lo"]))


# ---------------------------------------------------------------- services

rows = st.lists(st.fixed_dictionaries({}, optional={
    "family": st.sampled_from(["inet", "inet6"]), "protocol": st.sampled_from(["tcp", "udp", "sctp", None]),
    "address": st.sampled_from(ADDRESSES + [None]), "port": st.sampled_from([0, 53, 80, 443]),
    "fwmark": st.sampled_from([0, 0, 0x4000, 100]), "flags": st.sampled_from([0, 1, 2, 3]),
    "scheduler": st.sampled_from(["rr", "wlc", "sh"]), "timeout": st.sampled_from([0, 300]),
    "servers": st.just([{"address": "172.30.1.5", "port": 8080, "weight": 1}]),
}), max_size=12)


@PROFILE
@given(rows, packets)
def test_service_found_among_rows_equals_the_scan_of_built_services(services: list[dict[str, Any]],
                                                                    packet: Packet) -> None:
    built = tuple(VirtualService.from_dict(row) for row in services)
    assert ipvs_step.find_service_row(services, packet) == ipvs_step.find_service(built, packet)
    assert ipvs_step.decide(services, packet) == ipvs_step.decide(built, packet)


def test_rows_of_another_shape_are_built_as_before() -> None:
    assert ipvs_step.service_rows({"services": [{"port": 80}]}) == [{"port": 80}]
    assert ipvs_step.service_rows({}) == []
    assert ipvs_step.service_rows({"services": ({"port": 80},)}) is None
    assert ipvs_step.service_rows({"services": [{"port": 80}, "x"]}) is None


# ---------------------------------------------------------------- set members

entries = st.builds(
    lambda ip, cidr, ip_to, proto_num, port, port_to, ip2, cidr2, iface, mark, nomatch: IPSetEntry(
        raw=f"{ip}/{cidr},{proto_num}:{port}-{port_to},{ip2}/{cidr2},{iface},{mark}", ip=ip, cidr=cidr,
        ip_to=ip_to, proto_num=proto_num, port=port, port_to=port_to, ip2=ip2, cidr2=cidr2, iface=iface,
        mark=mark, nomatch=nomatch),
    st.sampled_from(ADDRESSES + [None]), st.sampled_from([None, None, 32, 24, 31, 0]),
    st.sampled_from([None, None, "10.0.0.9"]), st.sampled_from([6, 6, 17, None, 1, 132]),
    st.sampled_from([None, 0, 53, 80, 443]), st.sampled_from([None, None, 80, 90]),
    st.sampled_from(ADDRESSES + [None]), st.sampled_from([None, 32, 16]),
    st.sampled_from([None, "eth0", "cni0"]), st.sampled_from([None, 0, 0x4000]), st.booleans())
ipsets = st.builds(
    lambda kind, family, netmask, members: IPSet("S", kind, family, netmask=netmask, members=tuple(members)),
    st.sampled_from(sorted(k for k in SET_TYPE_DIMENSIONS if k != "list:set")),
    st.sampled_from(["inet", "inet", None, "inet6"]), st.sampled_from([None, None, 32, 24]),
    st.lists(entries, min_size=0, max_size=70))
flag_lists = st.lists(st.sampled_from(["src", "dst"]), min_size=1, max_size=4).map(tuple)


def _scan(ipset: IPSet, packet: Packet, flags: tuple[str, ...]) -> list[IPSetEntry]:
    return [entry for entry in ipset.members if sets._entry_matches(ipset, entry, packet, flags)]


@PROFILE
@given(ipsets, st.lists(packets, min_size=1, max_size=4), flag_lists)
def test_member_index_finds_what_the_scan_finds(ipset: IPSet, pool: list[Packet], flags: tuple[str, ...]) -> None:
    for packet in pool:
        assert sets._hits(ipset, packet, flags) == _scan(ipset, packet, flags)


@given(st.lists(packets, min_size=1, max_size=8))
@settings(max_examples=20, deadline=None)
def test_a_kube_cluster_ip_sized_set_indexes_every_member(pool: list[Packet]) -> None:
    members = tuple(IPSetEntry(raw=f"10.0.{i >> 8}.{i & 255},tcp:80", ip=f"10.0.{i >> 8}.{i & 255}", proto="tcp",
                               proto_num=6, port=80) for i in range(120))
    ipset = IPSet("KUBE-CLUSTER-IP", "hash:ip,port", "inet", members=members)
    assert not sets._index(ipset).others
    for packet in pool + [Packet("10.0.0.11", 43210, "10.0.1.7", 80)]:
        for flags in (("dst", "dst"), ("src", "dst"), ("dst", "src")):
            assert sets.lookup({"KUBE-CLUSTER-IP": ipset}, "KUBE-CLUSTER-IP", flags, packet) == \
                   _linear_lookup({"KUBE-CLUSTER-IP": ipset}, "KUBE-CLUSTER-IP", flags, packet)


def _linear_lookup(table: dict[str, IPSet], name: str, flags: tuple[str, ...], packet: Packet) -> sets.SetLookup:
    saved = sets._hits
    sets._hits = _scan  # type: ignore[assignment]
    try:
        return sets.lookup(table, name, flags, packet)
    finally:
        sets._hits = saved


# ---------------------------------------------------------------- whole traces


def _gen() -> Any:
    spec = importlib.util.spec_from_file_location("gen_snapshot", ROOT / "bench" / "gen_snapshot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(view: NodeView, service: str, origin: str) -> tuple[str, ...]:
    try:
        start = parse_origin(origin)
        result = trace(view, build_packet(view, service, start), str(start), service)
    except InvalidInput as exc:
        return ("error", str(exc))
    return (json.dumps(result.to_dict(), sort_keys=True), format_text(result), format_text(result, wide=True))


def test_generated_ipvs_node_traces_equal_those_without_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _gen()
    snap, _ = gen.ipvs_node(60, 3)
    sections = {k: v for k, v in snap.items() if k not in ("format", "version")}
    slow_sections = {**sections, "ipvs": {**sections["ipvs"], "services": tuple(sections["ipvs"]["services"])}}
    services = [f"{gen.vip(i)}:80" for i in (0, 17, 59, 60)] + [f"{gen.vip(3)}:81", f"{gen.vip(3)}:80/udp",
                                                                "10.254.0.1:443", "10.254.0.2:53/udp"]
    for service in services:
        for origin in ("node", "pod:172.30.22.5", "external:203.0.113.9"):
            fast = _outcome(NodeView(NodeSnapshot(1, sections)), service, origin)
            with monkeypatch.context() as patch:
                patch.setattr(sets, "_hits", _scan)
                slow = _outcome(NodeView(NodeSnapshot(1, slow_sections)), service, origin)
            assert fast == slow, (service, origin)


def test_fewer_flags_than_dimensions_find_what_the_scan_finds() -> None:
    # found by the property above: the index keys members by every dimension, so with one flag on a
    # hash:net,iface set of 32+ members it found none of the members the scan finds
    members = tuple(IPSetEntry(raw=f"10.0.0.1,eth{i}", ip="10.0.0.1", iface=f"eth{i}") for i in range(40))
    ipset = IPSet("S", "hash:net,iface", "inet", members=members)
    packet = Packet(src="10.0.0.1", sport=0, dst="10.0.0.1", dport=0, protocol="tcp", family="inet")
    assert sets._hits(ipset, packet, ("src",)) == _scan(ipset, packet, ("src",)) == list(members)
