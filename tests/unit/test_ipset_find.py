"""Set-match semantics (iptables `-m set --match-set NAME FLAGS`, the trace's lookup) and `ipset find`."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpctl.core.ipset_find import find_matches, lookup, parse_find_target
from kpctl.core.ipset_save import parse_save
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSet
from kpctl.model.trace import Packet

FIXTURES = Path(__file__).parent / "fixtures" / "ipset"
KUBE = {s.name: s for s in parse_save((FIXTURES / "kube-proxy.save").read_text())}


def _sets(text: str) -> dict[str, IPSet]:
    return {s.name: s for s in parse_save(text)}


def _packet(src: str = "192.0.2.1", dst: str = "192.0.2.2", proto: str = "tcp", sport: int = 0, dport: int = 0,
            **more: object) -> Packet:
    return Packet(src, sport, dst, dport, proto, "inet6" if ":" in dst else "inet", **more)  # type: ignore[arg-type]


def set_match(ipset: IPSet, packet: Packet, flags: list[str], sets: dict[str, IPSet] | None = None) -> str | None:
    """The member deciding a positive match of ``--match-set ipset.name FLAGS``, or None."""
    found = lookup(sets or {ipset.name: ipset}, ipset.name, tuple(flags), packet)
    return found.element if found.found else None


def test_cluster_ip_dst_dst() -> None:
    cluster = KUBE["KUBE-CLUSTER-IP"]
    to_dns = _packet(src="172.30.1.9", dst="10.254.0.2", proto="udp", sport=40000, dport=53)
    assert set_match(cluster, to_dns, ["dst", "dst"]) == "10.254.0.2,udp:53"
    # same address, wrong protocol / port / direction
    assert set_match(cluster, _packet(src="1.1.1.1", dst="10.254.0.2", proto="udp", sport=1, dport=54),
                     ["dst", "dst"]) is None
    assert set_match(cluster, _packet(src="1.1.1.1", dst="10.254.0.2", proto="sctp", sport=1, dport=53),
                     ["dst", "dst"]) is None
    assert set_match(cluster, to_dns, ["src", "dst"]) is None
    # fewer flags than dimensions never match (the kernel's rule)
    assert set_match(cluster, to_dns, ["dst"]) is None


def test_loop_back_dst_dst_src() -> None:
    loop = KUBE["KUBE-LOOP-BACK"]
    hairpin = _packet(src="172.30.22.4", dst="172.30.22.4", proto="tcp", sport=5555, dport=8080)
    assert set_match(loop, hairpin, ["dst", "dst", "src"]) is not None
    other_client = _packet(src="172.30.22.9", dst="172.30.22.4", proto="tcp", sport=5555, dport=8080)
    assert set_match(loop, other_client, ["dst", "dst", "src"]) is None


def test_source_cidr_and_bitmap_port() -> None:
    cidr = KUBE["KUBE-LOAD-BALANCER-SOURCE-CIDR"]
    packet = _packet(src="198.51.100.77", dst="203.0.113.10", proto="tcp", sport=1234, dport=443)
    assert set_match(cidr, packet, ["dst", "dst", "src"]) is not None
    assert set_match(cidr, _packet(src="198.51.101.1", dst="203.0.113.10", proto="tcp", sport=1, dport=443),
                     ["dst", "dst", "src"]) is None
    node_port = KUBE["KUBE-NODE-PORT-TCP"]
    assert set_match(node_port, _packet(dst="192.168.10.2", proto="tcp", dport=30080), ["dst"]) is not None
    assert set_match(node_port, _packet(dst="192.168.10.2", proto="tcp", dport=30081), ["dst"]) is None
    # bitmap:port sees TCP and UDP ports only (the kernel's ip_set_get_ip_port)
    assert set_match(node_port, _packet(dst="192.168.10.2", proto="udp", dport=30080), ["dst"]) is not None
    assert set_match(node_port, _packet(dst="192.168.10.2", proto="sctp", dport=30080), ["dst"]) is None


def test_nomatch_most_specific_wins() -> None:
    sets = _sets("create n hash:net family inet\nadd n 10.0.0.0/8\nadd n 10.1.0.0/16 nomatch\nadd n 10.1.2.0/24\n")
    net = sets["n"]
    assert set_match(net, _packet(dst="10.9.9.9"), ["dst"]) == "10.0.0.0/8"
    assert set_match(net, _packet(dst="10.1.9.9"), ["dst"]) is None
    assert set_match(net, _packet(dst="10.1.2.3"), ["dst"]) == "10.1.2.0/24"
    # the nomatch member itself does match, and decides
    assert lookup(sets, "n", ("dst",), _packet(dst="10.1.9.9")).reason == "10.1.9.9 hits nomatch element 10.1.0.0/16 of n"


def test_list_set_matches_through_its_members() -> None:
    text = ("create a hash:ip family inet\nadd a 10.0.0.1\ncreate b hash:ip,port family inet\n"
            "add b 10.0.0.2,tcp:80\ncreate l list:set size 8\nadd l a\nadd l b\n")
    sets = _sets(text)
    lst = sets["l"]
    via = lookup(sets, "l", ("src", "src"), _packet(src="10.0.0.2", dst="9.9.9.9", proto="tcp", sport=80, dport=1))
    assert via.found and via.reason == "l → 10.0.0.2,tcp:80 is in b (member 10.0.0.2,tcp:80)"
    assert set_match(lst, _packet(src="10.0.0.1"), ["src"], sets) == "10.0.0.1"
    assert set_match(lst, _packet(src="10.0.0.3"), ["src"], sets) is None


def test_hash_ip_netmask_and_icmp() -> None:
    sets = _sets("create m hash:ip family inet netmask 24\nadd m 10.1.2.0\n"
                 "create i hash:ip,port family inet\nadd i 10.0.0.1,icmp:echo-request\n")
    assert set_match(sets["m"], _packet(dst="10.1.2.200"), ["dst"]) is not None
    # a traced packet carries no ICMP type: an ICMP member matches neither it nor a TCP port 0x0800
    assert set_match(sets["i"], _packet(dst="10.0.0.1", proto="icmp"), ["dst", "dst"]) is None
    assert set_match(sets["i"], _packet(dst="10.0.0.1", proto="tcp", dport=8 << 8), ["dst", "dst"]) is None


def test_wildcard_iface_and_markmask() -> None:
    sets = _sets("create w hash:net,iface family inet\nadd w 10.0.0.0/8,veth wildcard\nadd w 10.0.0.0/8,eth0\n"
                 "create k hash:ip,mark family inet markmask 0xff00\nadd k 10.0.0.1,0x4000\n")
    assert set_match(sets["w"], _packet(src="10.2.3.4", iif="veth1234"), ["src", "src"]) == "10.0.0.0/8,veth"
    assert set_match(sets["w"], _packet(src="10.2.3.4", iif="eth01"), ["src", "src"]) is None
    assert set_match(sets["w"], _packet(src="10.2.3.4", iif="eth0"), ["src", "src"]) == "10.0.0.0/8,eth0"
    assert set_match(sets["k"], _packet(dst="10.0.0.1", mark=0x4011), ["dst", "dst"]) == "10.0.0.1,0x00004000"
    assert set_match(sets["k"], _packet(dst="10.0.0.1", mark=0x8000), ["dst", "dst"]) is None


def test_find_every_set_and_member() -> None:
    found = find_matches(KUBE.values(), "10.254.0.2")
    assert sorted((m.set_name, m.member.raw) for m in found) == [
        ("KUBE-CLUSTER-IP", "10.254.0.2,tcp:53"), ("KUBE-CLUSTER-IP", "10.254.0.2,tcp:9153"),
        ("KUBE-CLUSTER-IP", "10.254.0.2,udp:53"), ("KUBE-IPVS-IPS", "10.254.0.2")]
    with_port = find_matches(KUBE.values(), "10.254.0.2", 53)
    assert sorted(m.member.raw for m in with_port) == ["10.254.0.2", "10.254.0.2,tcp:53", "10.254.0.2,udp:53"]
    udp_only = find_matches(KUBE.values(), "10.254.0.2", 53, "udp")
    assert sorted(m.member.raw for m in udp_only) == ["10.254.0.2", "10.254.0.2,udp:53"]
    # either IP dimension; nets contain the address
    assert {m.set_name for m in find_matches(KUBE.values(), "198.51.100.9")} == {"KUBE-LOAD-BALANCER-SOURCE-CIDR"}
    assert {m.set_name for m in find_matches(KUBE.values(), "172.30.22.4")} == {"KUBE-LOOP-BACK"}
    # a port alone finds bitmap:port sets, whatever the address
    assert {m.set_name for m in find_matches(KUBE.values(), "192.168.10.2", 31443)} == {
        "KUBE-NODE-PORT-TCP", "KUBE-NODE-PORT-LOCAL-TCP"}
    assert {m.set_name for m in find_matches(KUBE.values(), "fd00:10:96::1")} == {"KUBE-6-CLUSTER-IP", "KUBE-6-IPVS-IPS"}
    assert find_matches(KUBE.values(), "8.8.8.8") == []


def test_find_reports_list_sets_via_member() -> None:
    sets = _sets("create a hash:ip family inet\nadd a 10.0.0.1\ncreate l list:set size 8\nadd l a\n")
    found = find_matches(sets.values(), "10.0.0.1")  # type: ignore[arg-type]
    assert [(m.set_name, m.via) for m in found] == [("a", None), ("l", "a")]


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", ("10.0.0.1", None, None)),
    ("10.0.0.1:443", ("10.0.0.1", 443, None)),
    ("10.0.0.1:53/UDP", ("10.0.0.1", 53, "udp")),
    ("fd00::1", ("fd00::1", None, None)),
    ("[fd00::1]:80", ("fd00::1", 80, None)),
    ("[fd00::1]:80/sctp", ("fd00::1", 80, "sctp")),
    ("10.0.0.1:80/17", ("10.0.0.1", 80, "17")),
])
def test_parse_find_target(text: str, expected: tuple[str, int | None, str | None]) -> None:
    assert parse_find_target(text) == expected


@pytest.mark.parametrize("text", ["10.0.0", "10.0.0.1:99999", "10.0.0.1:x", "10.0.0.1:80/bogus", "[10.0.0.1]:80",
                                  "[fd00::1", "host.example:80", "10.0.0.1/tcp",
                                  "10.0.0.1:80/256", "10.0.0.1:80/0017", "10.0.0.1:80/"])
def test_parse_find_target_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_find_target(text)
