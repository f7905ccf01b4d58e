"""ipset(8) element syntax per set type: parsing, canonical formatting, refusals."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from kpctl.core.ipset_entry import (
    format_entry,
    format_port,
    parse_element,
    parse_member,
    tokenize,
)
from kpctl.core.ipset_save import parse_create
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSetEntry


def member(ipset: Any, text: str) -> IPSetEntry:
    """A member as `ipset add` and restore lines give it: its words, read for ``ipset``."""
    return parse_member(ipset, tokenize(text))


# (type, family, input text, canonical text ipset prints)
CANONICAL = [
    ("hash:ip", "inet", "10.0.0.1", "10.0.0.1"),
    ("hash:ip", "inet", "10.0.0.0/30", "10.0.0.0/30"),
    ("hash:ip", "inet", "10.0.0.1-10.0.0.9", "10.0.0.1-10.0.0.9"),
    ("hash:ip", "inet", "10.0.0.7-10.0.0.7", "10.0.0.7"),
    ("hash:ip", "inet6", "fd00:0:0::1", "fd00::1"),
    ("hash:ip", "inet6", "::ffff:1.2.3.4", "::ffff:1.2.3.4"),
    ("hash:net", "inet", "10.1.2.3/8", "10.0.0.0/8"),
    ("hash:net", "inet", "10.0.0.1/32", "10.0.0.1"),
    ("hash:net", "inet6", "fd00::/64", "fd00::/64"),
    ("hash:ip,port", "inet", "10.254.0.1,tcp:443", "10.254.0.1,tcp:443"),
    ("hash:ip,port", "inet", "10.254.0.1,443", "10.254.0.1,tcp:443"),
    ("hash:ip,port", "inet", "10.254.0.2,UDP:53", "10.254.0.2,udp:53"),
    ("hash:ip,port", "inet", "10.254.0.2,sctp:9", "10.254.0.2,sctp:9"),
    ("hash:ip,port", "inet", "10.254.0.2,17:53", "10.254.0.2,udp:53"),
    ("hash:ip,port", "inet", "10.0.0.1,tcp:80-81", "10.0.0.1,tcp:80-81"),
    ("hash:ip,port", "inet", "10.0.0.1,icmp:ping", "10.0.0.1,icmp:echo-request"),
    ("hash:ip,port", "inet", "10.0.0.1,icmp:8/0", "10.0.0.1,icmp:echo-request"),
    ("hash:ip,port", "inet", "10.0.0.1,icmp:3/7", "10.0.0.1,icmp:host-unknown"),
    ("hash:ip,port", "inet", "10.0.0.1,icmp:255/255", "10.0.0.1,icmp:255/255"),
    ("hash:ip,port", "inet", "10.0.0.1,41:0", "10.0.0.1,ipv6:0"),
    ("hash:ip,port", "inet", "10.0.0.1,gre:0", "10.0.0.1,gre:0"),
    ("hash:ip,port", "inet6", "fd00::1,icmpv6:ping", "fd00::1,ipv6-icmp:echo-request"),
    ("hash:ip,port", "inet6", "fd00::1,tcp:443", "fd00::1,tcp:443"),
    ("hash:ip,port,ip", "inet", "172.30.1.5,tcp:8080,172.30.1.5", "172.30.1.5,tcp:8080,172.30.1.5"),
    ("hash:ip,port,net", "inet", "10.0.0.1,tcp:80,10.9.9.9/8", "10.0.0.1,tcp:80,10.0.0.0/8"),
    ("hash:ip,port,net", "inet", "10.0.0.1,tcp:80,10.0.0.2", "10.0.0.1,tcp:80,10.0.0.2"),
    ("hash:net,port", "inet", "10.0.0.0/24,tcp:30000", "10.0.0.0/24,tcp:30000"),
    ("hash:net,iface", "inet", "10.0.0.0/8,eth0", "10.0.0.0/8,eth0"),
    ("hash:net,iface", "inet", "10.0.0.0/8,physdev:eth1", "10.0.0.0/8,physdev:eth1"),
    ("hash:net,iface", "inet", "10.1.2.3/0,eth0", "0.0.0.0/0,eth0"),  # (the one type that stores /0)
    ("hash:net,iface", "inet6", "::/0,eth0", "::/0,eth0"),
    ("bitmap:port", None, "30080", "30080"),
    ("bitmap:port", None, "80-90", "80-90"),
    ("bitmap:port", None, "tcp:80", "80"),
    ("bitmap:ip", "inet", "10.0.0.3", "10.0.0.3"),
    ("bitmap:ip,mac", "inet", "10.0.0.3,02:00:00:00:00:0a", "10.0.0.3,02:00:00:00:00:0A"),
    ("bitmap:ip,mac", "inet", "10.0.0.3", "10.0.0.3"),  # (the MAC left for the kernel to learn)
    ("list:set", None, "KUBE-LOOP-BACK", "KUBE-LOOP-BACK"),
]


@pytest.mark.parametrize(("set_type", "family", "text", "expected"), CANONICAL)
def test_element_is_printed_as_ipset_prints_it(set_type: str, family: str | None, text: str, expected: str) -> None:
    entry = parse_element(set_type, family, text)
    assert entry.raw == expected
    # the canonical text parses to the same entry
    assert parse_element(set_type, family, expected) == entry


def test_parsed_parts() -> None:
    entry = parse_element("hash:ip,port,net", "inet", "10.0.0.1,udp:53,10.0.0.0/8")
    assert (entry.ip, entry.cidr, entry.proto, entry.proto_num, entry.port) == ("10.0.0.1", None, "udp", 17, 53)
    assert (entry.ip2, entry.cidr2) == ("10.0.0.0", 8)
    icmp = parse_element("hash:ip,port", "inet", "10.0.0.1,icmp:echo-request")
    assert icmp.port == 8 << 8 and icmp.proto_num == 1
    ranged = parse_element("hash:ip,port", "inet", "10.0.0.1-10.0.0.3,tcp:80-82")
    assert (ranged.ip_to, ranged.port_to) == ("10.0.0.3", 82)
    iface = parse_element("hash:net,iface", "inet", "10.0.0.0/8,physdev:eth1")
    assert (iface.iface, iface.physdev) == ("eth1", True)


BAD = [
    ("hash:ip", "inet", "10.0.0.256", "10.0.0.256"),
    ("hash:ip", "inet", "fd00::1", "fd00::1"),
    ("hash:ip", "inet6", "10.0.0.1", "10.0.0.1"),
    ("hash:ip", "inet", "10.0.0.9-10.0.0.1", "10.0.0.9-10.0.0.1"),
    ("hash:ip", "inet", "10.0.0.1,tcp:80", "10.0.0.1,tcp:80"),
    ("hash:ip,port", "inet", "10.0.0.1", "10.0.0.1"),
    ("hash:ip,port", "inet", "10.0.0.1,tcp:65536", "65536"),
    ("hash:ip,port", "inet", "10.0.0.1,tcp:x", "x"),
    ("hash:ip,port", "inet", "10.0.0.1,tcp:nosuchservice", "not a number nor a tcp service name"),
    ("hash:ip,port", "inet", "10.0.0.1,udp:22-nosuchservice", "'22-nosuchservice'"),
    ("hash:ip,port", "inet", "10.0.0.1,bogus:80", "bogus"),
    ("hash:ip,port", "inet", "10.0.0.1,gre:3", "gre:3"),
    ("hash:ip,port", "inet", "10.0.0.1,icmpv6:ping", "icmpv6:ping"),
    ("hash:ip,port", "inet", "10.0.0.1,icmp:nonsense", "nonsense"),
    ("hash:ip,port", "inet", "10.0.0.1,tcp:90-80", "90-80"),
    ("hash:ip,port", "inet", "10.0.0.1,0:0", "protocol 0"),
    ("hash:ip,port", "inet", "10.0.0.1,ip:0", "protocol 0"),
    ("hash:net", "inet", "10.0.0.0/33", "10.0.0.0/33"),
    ("hash:net", "inet", "10.0.0.0/0", "10.0.0.0/0"),
    ("hash:net,port", "inet", "0.0.0.0/0,tcp:80", "0.0.0.0/0"),
    ("hash:net", "inet", "10.0.0.0/x", "10.0.0.0/x"),
    ("hash:net,iface", "inet", "10.0.0.0/8,averyveryverylongname", "averyveryverylongname"),
    ("bitmap:port", None, "udplite:80", "udplite:80"),
    ("bitmap:ip", "inet", "fd00::1", "fd00::1"),
    ("bitmap:ip,mac", "inet", "10.0.0.3,", "expected IP,MAC"),
    ("hash:ip,mac", "inet", "10.0.0.3", "expected IP,MAC"),
    ("list:set", None, "has space", "has space"),
    ("list:set", None, "x" * 32, "x" * 32),
    ("hash:foo", "inet", "10.0.0.1", "hash:foo"),
]


@pytest.mark.parametrize(("set_type", "family", "text", "named"), BAD)
def test_malformed_entries_are_refused_naming_the_value(set_type: str, family: str | None, text: str,
                                                        named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_element(set_type, family, text)
    assert named in str(caught.value)


def test_entry_options_and_their_order() -> None:
    ipset = parse_create("s", "hash:net", ["timeout", "30", "counters", "comment", "skbinfo"])
    text = '10.0.0.0/8 comment "hi there" skbqueue 7 nomatch bytes 4 packets 3 timeout 4 skbprio 1:2 skbmark 0x5/0xf'
    entry = member(ipset, text)
    assert format_entry(entry) == (
        '10.0.0.0/8 timeout 4 nomatch packets 3 bytes 4 comment "hi there" skbmark 0x5/0xf skbprio 1:2 skbqueue 7')
    assert member(ipset, "10.0.0.0/8 skbmark 0x5").skbmarkmask == 0xFFFFFFFF
    assert format_entry(member(ipset, "10.0.0.0/8 skbmark 0x5")) == "10.0.0.0/8 skbmark 0x5"


@pytest.mark.parametrize(("header", "text", "named"), [
    ([], "10.0.0.1 timeout 5", "timeout"),
    ([], '10.0.0.1 comment "x"', "comment"),
    ([], "10.0.0.1 packets 1", "counters"),
    ([], "10.0.0.1 skbmark 1", "skbinfo"),
    ([], "10.0.0.1 nomatch", "nomatch"),
    (["comment"], '10.0.0.1 comment "a"b"', "quote"),
    (["timeout", "5"], "10.0.0.1 timeout", "needs a value"),
    (["timeout", "5"], "10.0.0.1 timeout x", "'x'"),
    (["timeout", "5"], "10.0.0.1 ttl 5", "'ttl'"),
])
def test_options_the_set_was_not_created_for_are_refused(header: list[str], text: str, named: str) -> None:
    ipset = parse_create("s", "hash:ip", header)
    with pytest.raises(InvalidInput) as caught:
        member(ipset, text)
    assert named in str(caught.value)


def test_bitmap_ranges_are_enforced() -> None:
    ports = parse_create("p", "bitmap:port", ["range", "1000-2000"])
    with pytest.raises(InvalidInput, match="outside the range"):
        member(ports, "80")
    ips = parse_create("i", "bitmap:ip", ["range", "10.0.0.0/24"])
    assert ips.range == "10.0.0.0-10.0.0.255"
    with pytest.raises(InvalidInput, match="outside the range"):
        member(ips, "10.0.1.1")


def test_tokenize_keeps_quoted_comments() -> None:
    assert tokenize('add s 10.0.0.1 comment "two words"  timeout 3') == [
        "add", "s", "10.0.0.1", "comment", '"two words"', "timeout", "3"]
    with pytest.raises(InvalidInput, match="unterminated"):
        tokenize('add s 1.2.3.4 comment "open')


def test_icmp_names_print_the_first_alias() -> None:
    assert format_port(1, 0) == "icmp:echo-reply"
    assert format_port(58, 129 << 8) == "ipv6-icmp:echo-reply"
    assert format_port(58, 135 << 8) == "ipv6-icmp:neighbour-solicitation"
    assert format_port(6, 0) == "tcp:0"
    assert format_port(200, 0) == "200:0"


def test_iface_wildcard_is_an_option_not_part_of_the_name() -> None:
    ipset = parse_create("s", "hash:net,iface", ["timeout", "10"])
    entry = member(ipset, "10.0.0.0/8,veth wildcard nomatch timeout 0")
    assert (entry.iface, entry.wildcard, entry.raw) == ("veth", True, "10.0.0.0/8,veth")
    assert format_entry(entry) == "10.0.0.0/8,veth timeout 0 nomatch wildcard"
    assert member(ipset, "10.0.0.0/8,eth+").iface == "eth+"  # a literal '+', as ipset stores it
    with pytest.raises(InvalidInput, match="wildcard"):
        member(parse_create("n", "hash:net", []), "10.0.0.0/8 wildcard")


@pytest.mark.parametrize("values", [
    {}, {"ip": "10.0.0.1", "port": 80, "proto_num": 6, "proto": "tcp"},
    {"ip": "fd00::", "cidr": 64, "nomatch": True, "timeout": 0, "comment": "x", "packets": 1, "bytes": 2},
    {"iface": "eth0", "physdev": True, "wildcard": False, "mark": 0, "skbprio": "1:2"},
])
def test_an_entry_with_some_fields_is_the_entry_the_dataclass_builds(values: dict[str, object]) -> None:
    made = IPSetEntry.with_fields(dict(values), lambda entry: f"{entry.ip}|{entry.cidr}|{entry.nomatch}")
    raw = f"{values.get('ip')}|{values.get('cidr')}|{values.get('nomatch', False)}"
    built = IPSetEntry(raw=raw, **values)  # type: ignore[arg-type]
    assert (made, hash(made), repr(made), made.to_dict()) == (built, hash(built), repr(built), built.to_dict())
    assert made.timeout == built.timeout and made.skbqueue is None
    with pytest.raises(TypeError, match="not IPSetEntry fields"):
        IPSetEntry.with_fields({**values, "prot": "tcp"}, lambda entry: "")
    with pytest.raises(FrozenInstanceError):
        made.ip = "10.0.0.2"  # type: ignore[misc]
