"""The short cuts of reading and copying set members read as their general steps: parse_element's
shaped reading of the canonical IPv4 elements, _parse_line's of ``add SET ELEMENT`` lines; the one
member decoder reads a dump as the element text parses; copying a set (ipset_netlink.readd_members)
flags each dumped member as its own attributes say, whether members share a layout or not.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kpctl.backends.ipset_netlink import (
    ATTR_BYTES,
    ATTR_CADT_FLAGS,
    ATTR_CIDR,
    ATTR_COMMENT,
    ATTR_DATA,
    ATTR_IFACE,
    ATTR_IP,
    ATTR_IP2,
    ATTR_IPADDR_IPV4,
    ATTR_IPADDR_IPV6,
    ATTR_PACKETS,
    ATTR_PORT,
    ATTR_PROTO,
    ATTR_TIMEOUT,
    NLA_F_NESTED,
    NLA_F_NET_BYTEORDER,
    _be16,
    _be32,
    _be64,
    _decode_entry,
    _iter_attrs,
    _nest,
    _nla,
    _str,
    _u8,
    readd_members,
)
from kpctl.errors import KernelError
from kpctl.core.ipset_entry import parse_element
from kpctl.core import ipset_entry
from kpctl.core.ipset_save import _parse_command, _parse_line
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSet

FAST_TYPES = ["hash:ip", "hash:net", "hash:ip,port", "hash:ip,port,ip", "hash:ip,port,net", "bitmap:port"]

octet = st.one_of(st.integers(min_value=0, max_value=255).map(str),
                  st.sampled_from(["00", "01", "256", "999", "1a", "", "-1", "٣"]))
quad = st.one_of(
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.lists(octet, min_size=3, max_size=5).map(".".join),
    st.sampled_from(["fd00::1", "::ffff:1.2.3.4", "10.0.0.1-10.0.0.9", "0x0a.0.0.1"]),
)
prefix = st.one_of(st.just(""), st.integers(min_value=0, max_value=40).map(lambda n: f"/{n}"),
                   st.sampled_from(["/08", "/", "/x", "/32", "/1"]))
net = st.tuples(quad, prefix).map("".join)
proto = st.sampled_from(["tcp", "udp", "sctp", "udplite", "TCP", "Udp", "icmp", "6", "17", "ip", "gre", ""])
port_number = st.one_of(st.integers(min_value=0, max_value=70000).map(str),
                        st.sampled_from(["00", "080", "65535", "65536", "99999", "80-90", "", "0x50", "echo-request"]))
port = st.one_of(st.tuples(proto, port_number).map(":".join), port_number)
ELEMENTS = {
    "hash:ip": st.one_of(quad, net),
    "hash:net": net,
    "hash:ip,port": st.tuples(quad, port).map(",".join),
    "hash:ip,port,ip": st.tuples(quad, port, quad).map(",".join),
    "hash:ip,port,net": st.tuples(quad, port, net).map(",".join),
    "bitmap:port": st.one_of(port_number, port),
}
commands = st.sampled_from(["add", "del", "add", "-A", "delete", "a"])
tails = st.sampled_from(["", "", " -exist", " -!", " --exist", " -exist -exist", " timeout 5", "  ", " nomatch"])
heads = st.sampled_from(["", "", " ", "-exist "])


def _header(set_type: str, name: str = "S") -> IPSet:
    if set_type == "bitmap:port":
        return IPSet(name=name, type=set_type, family=None, range="1000-40000")
    return IPSet(name=name, type=set_type, family="inet")


CANONICAL = {
    "hash:ip": st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    "hash:net": st.tuples(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=31))
    .map(lambda t: str(ipaddress.IPv4Network((t[0], t[1]), strict=False))),
}
CANONICAL["hash:ip,port"] = st.tuples(CANONICAL["hash:ip"], st.sampled_from(["tcp", "udp", "sctp", "udplite"]),
                                      st.integers(min_value=0, max_value=65535)).map(lambda t: f"{t[0]},{t[1]}:{t[2]}")
CANONICAL["hash:ip,port,ip"] = st.tuples(CANONICAL["hash:ip,port"], CANONICAL["hash:ip"]).map(",".join)
CANONICAL["hash:ip,port,net"] = st.tuples(CANONICAL["hash:ip,port"], st.one_of(CANONICAL["hash:net"],
                                                                               CANONICAL["hash:ip"])).map(",".join)
CANONICAL["bitmap:port"] = st.integers(min_value=1000, max_value=40000).map(str)


def _outcome(read: Any, *args: Any) -> Any:
    try:
        return "read", read(*args)
    except InvalidInput as exc:
        return "refused", exc.message, exc.hint


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FAST_TYPES), st.sampled_from(["inet", None, "inet6"]), st.data())
def test_the_shaped_reading_of_an_element_is_the_dimension_by_dimension_one(
        set_type: str, family: str | None, data: st.DataObject) -> None:
    # parse_element reads the canonical IPv4 shapes by one regular expression per set type: the same
    # entry (fields, raw, repr) and the same refusals as its general reading (shapes switched off)
    text = data.draw(st.one_of(ELEMENTS[set_type], CANONICAL[set_type]))
    shaped = _outcome(parse_element, set_type, family, text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ipset_entry, "_SHAPES", {})
        general = _outcome(parse_element, set_type, family, text)
    assert shaped == general
    if shaped[0] == "read":
        assert (shaped[1].raw, repr(shaped[1])) == (general[1].raw, repr(general[1]))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FAST_TYPES), st.data())
def test_canonical_elements_take_the_shaped_reading(set_type: str, data: st.DataObject) -> None:
    text = data.draw(CANONICAL[set_type])
    entry = ipset_entry._shaped(set_type, text)
    assert entry is not None and entry.raw == text


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FAST_TYPES), st.data())
def test_a_save_line_reads_as_the_general_reading_of_a_command(set_type: str, data: st.DataObject) -> None:
    # _parse_line takes `add|del SET ELEMENT` of a known set in a few steps; the rest go to _parse_command
    odd = st.sampled_from(["-exist", "-!", "--exist", '"10.0.0.1', '"10.0.0.1"', "10.0.0.1,tcp:80 timeout 5"])
    element = data.draw(st.one_of(ELEMENTS[set_type], CANONICAL[set_type], odd))
    line = data.draw(heads) + f"{data.draw(commands)} {data.draw(st.sampled_from('SX'))} {element}" + data.draw(tails)
    headers = {"S": _header(set_type)}
    assert _outcome(_parse_line, line, 3, headers) == _outcome(_parse_command, line, 3, headers)


def _dump(ip: str, port: int | None, proto: int | None, timeout: int | None, byte_order_flag: bool) -> bytes:
    """A member as the kernel dumps it (nla_put_ipaddr4 sets no byte-order flag on the address)."""
    v6 = ":" in ip
    inner = (ATTR_IPADDR_IPV6 if v6 else ATTR_IPADDR_IPV4) | (NLA_F_NET_BYTEORDER if byte_order_flag else 0)
    parts = [_nest(ATTR_IP, [_nla(inner, ipaddress.ip_address(ip).packed)])]
    if port is not None:
        parts.append(_be16(ATTR_PORT, port))
    if proto is not None:
        parts.append(_u8(ATTR_PROTO, proto))
    if timeout is not None:
        parts.append(_be32(ATTR_TIMEOUT, timeout))
    return b"".join(parts)


_PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 136: "udplite"}


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["hash:ip", "hash:ip,port"]), st.booleans(), st.booleans(), st.data())
def test_a_dumped_member_decodes_as_its_element_text_parses(set_type: str, v6: bool, flag: bool,
                                                            data: st.DataObject) -> None:
    # the one member decoder (listing, snapshot save, trace of a live node) against the text parser
    family = "inet6" if v6 else "inet"
    ipset = IPSet(name="S", type=set_type, family=family)
    number = data.draw(st.integers(min_value=0, max_value=2**128 - 1 if v6 else 2**32 - 1))
    packed = (ipaddress.IPv6Address(number) if v6 else ipaddress.IPv4Address(number)).packed
    ip = socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, packed)  # as ipset prints it ("::ffff:1.2.3.4")
    port = proto = None
    text = ip
    if set_type == "hash:ip,port":
        port = data.draw(st.integers(min_value=0, max_value=65535))
        proto = data.draw(st.sampled_from(sorted(_PORT_PROTOCOLS)))
        text = f"{ip},{_PORT_PROTOCOLS[proto]}:{port}"
    timeout = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2**31)))
    payload = b"\0" * 3 + _dump(ip, port, proto, timeout, flag) + b"\0" * 2
    decoded = _decode_entry(payload, 3, len(payload) - 2, ipset)
    expected = replace(parse_element(set_type, family, text), timeout=timeout)
    assert (decoded, decoded.raw, hash(decoded), repr(decoded)) == (expected, text, hash(expected), repr(expected))


# The attributes a dumped member may hold, as the kernel writes them (nests maybe without
# NLA_F_NESTED, as kernels before 5.2 wrote them; addresses without NLA_F_NET_BYTEORDER).  An IPv4
# address nest and a counter are both 12 bytes: members of one length may differ in layout.
def _dumped_ip(kind: int, packed: bytes, nested_flag: bool) -> bytes:
    inner = _nla(ATTR_IPADDR_IPV6 if len(packed) == 16 else ATTR_IPADDR_IPV4, packed)
    return _nla(kind | (NLA_F_NESTED if nested_flag else 0), inner)


_ATTRIBUTES = st.one_of(
    st.builds(_dumped_ip, st.sampled_from([ATTR_IP, ATTR_IP2]), st.binary(min_size=4, max_size=4) | st.binary(
        min_size=16, max_size=16), st.booleans()),
    st.builds(_be16, st.just(ATTR_PORT), st.integers(0, 65535)),
    st.builds(_u8, st.sampled_from([ATTR_PROTO, ATTR_CIDR]), st.integers(0, 255)),
    st.builds(_be32, st.sampled_from([ATTR_TIMEOUT, ATTR_CADT_FLAGS]), st.integers(0, 2**32 - 1)),
    st.builds(_be64, st.sampled_from([ATTR_PACKETS, ATTR_BYTES]), st.integers(0, 2**64 - 1)),
    st.builds(_str, st.sampled_from([ATTR_COMMENT, ATTR_IFACE]), st.text("abc-", min_size=0, max_size=9)),
)


def _as_added(member: bytes) -> bytes:
    """What an add request carries for a dumped DATA nest, attribute by attribute: the test's own
    reading of the rule (nests flagged nested, the addresses in them network-ordered)."""
    out = []
    for kind, a, b in _iter_attrs(member, 4, len(member)):
        if kind in (ATTR_IP, ATTR_IP2):
            out.append(_nest(kind, [_nla(inner | NLA_F_NET_BYTEORDER, member[x:y])
                                    for inner, x, y in _iter_attrs(member, a, b)]))
        else:  # as dumped, its flags and padding with it
            out.append(member[a - 4:a + ((b - a + 3) & ~3)])
    return _nest(ATTR_DATA, out)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(_ATTRIBUTES, min_size=1, max_size=5), min_size=1, max_size=6), st.booleans(),
       st.integers(1, 40))
# (an address nest and a counter whose value begins as the address's header would: the same
# lengths at the same places, other flags)
@example([[_dumped_ip(ATTR_IP, bytes([10, 0, 0, 1]), True)], [_be64(ATTR_PACKETS, 0x0800_0001_0A00_0001)]], True, 3)
def test_copying_members_flags_each_by_its_own_layout(layouts: list[list[bytes]], nested_flag: bool,
                                                      repeat: int) -> None:
    # members of one layout are flagged together, others one by one: each as its own attributes say
    members = [_nla(ATTR_DATA | (NLA_F_NESTED if nested_flag else 0), b"".join(attrs))
               for attrs in layouts for _ in range(repeat)]
    buf = b"\0" * 8 + b"".join(members) + b"\0" * 4
    assert readd_members(buf, 8, len(buf) - 4) == [_as_added(member) for member in members]


def test_a_member_cut_short_is_an_error_not_a_smaller_set() -> None:
    member = _nla(ATTR_DATA, _be16(ATTR_PORT, 80))
    cut = member + _nla(ATTR_DATA, _be16(ATTR_PORT, 81) + _u8(ATTR_PROTO, 6))[:-8]  # announces more than it holds
    with pytest.raises(KernelError, match="cut short"):
        readd_members(cut, 0, len(cut))
