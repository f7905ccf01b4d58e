"""SERVICE / SERVER syntax of CLI.md and inet_ntop-identical address text."""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable

import pytest
from hypothesis import given, strategies as st

from kpctl.core.address import canonical_address, format_addrport, format_address, parse_address, parse_server, parse_service
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import ServiceKey


@pytest.mark.parametrize("text, expected", [
    ("10.254.0.1:443", ServiceKey("inet", "tcp", "10.254.0.1", 443)),
    ("10.254.0.2:53/udp", ServiceKey("inet", "udp", "10.254.0.2", 53)),
    ("10.254.0.2:53/UDP", ServiceKey("inet", "udp", "10.254.0.2", 53)),
    ("10.0.0.9:3868/Sctp", ServiceKey("inet", "sctp", "10.0.0.9", 3868)),
    ("[2001:db8::10]:80", ServiceKey("inet6", "tcp", "2001:db8::10", 80)),
    ("[2001:DB8:0:0::10]:80/udp", ServiceKey("inet6", "udp", "2001:db8::10", 80)),
    ("[::ffff:1.2.3.4]:80", ServiceKey("inet6", "tcp", "::ffff:1.2.3.4", 80)),
    ("10.0.0.1:0", ServiceKey("inet", "tcp", "10.0.0.1", 0)),  # legal with -p, as ipvsadm
    ("10.0.0.1:65535", ServiceKey("inet", "tcp", "10.0.0.1", 65535)),
    ("fwmark:100", ServiceKey("inet", None, None, 0, 100)),
    ("FWMARK:100/ipv6", ServiceKey("inet6", None, None, 0, 100)),
    ("fwmark:4294967295", ServiceKey("inet", None, None, 0, 4294967295)),
])
def test_parse_service_accepts(text: str, expected: ServiceKey) -> None:
    assert parse_service(text) == expected


@pytest.mark.parametrize("text, named", [
    ("10.254.0.1", "missing ':PORT'"),
    ("10.254.0.1:", "''"),
    ("10.254.0.1:65536", "'65536'"),
    ("10.254.0.1:-1", "'-1'"),
    ("10.254.0.1:http", "'http'"),
    ("10.254.0.1:80/icmp", "'icmp'"),
    ("10.254.0.1:80/", "''"),
    ("10.254.0.256:80", "'10.254.0.256'"),
    ("010.0.0.1:80", "'010.0.0.1'"),
    ("localhost:80", "'localhost'"),
    ("2001:db8::10:80", "missing ':PORT'"),
    ("[2001:db8::10]", "missing ':PORT'"),
    ("[2001:db8::10:80", "missing ']'"),
    ("[2001:db8::10]80", "expected ':PORT'"),
    ("[fe80::1%eth0]:80", "'fe80::1%eth0'"),
    ("[10.0.0.1]:80", None),  # brackets hold IPv4: accepted as IPv4
    ("fwmark:0", "'0'"),
    ("fwmark:4294967296", "'4294967296'"),
    ("fwmark:abc", "'abc'"),
    ("fwmark:1/ipv5", "'ipv5'"),
    ("", "''"),
])
def test_parse_service_rejects_naming_the_value(text: str, named: str | None) -> None:
    if named is None:
        assert parse_service(text).family == "inet"
        return
    with pytest.raises(InvalidInput) as info:
        parse_service(text)
    assert named in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, default, expected", [
    ("172.30.1.5", 443, ("172.30.1.5", 443, "inet")),
    ("172.30.1.5:6443", 443, ("172.30.1.5", 6443, "inet")),
    ("fd00::5", 80, ("fd00::5", 80, "inet6")),
    ("[fd00::5]", 80, ("fd00::5", 80, "inet6")),
    ("[fd00::5]:8080", 80, ("fd00::5", 8080, "inet6")),
    ("172.30.1.5:0", 80, ("172.30.1.5", 0, "inet")),
])
def test_parse_server(text: str, default: int, expected: tuple[str, int, str]) -> None:
    assert parse_server(text, default) == expected


@pytest.mark.parametrize("text", ["172.30.1", "172.30.1.5:99999", "[fd00::5]x", "host:80", "172.30.1.5:a"])
def test_parse_server_rejects(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_server(text, 80)
    assert repr(text) in str(info.value) or text.split(":")[-1] in str(info.value)


@given(st.binary(min_size=16, max_size=16))
def test_format_address_is_inet_ntop(packed: bytes) -> None:
    text = str(ipaddress.IPv6Address(packed))
    assert format_address("inet6", text) == socket.inet_ntop(socket.AF_INET6, packed)


@pytest.mark.parametrize("words", [
    "0:0:0:0:0:ffff:102:304", "0:0:0:0:0:0:102:304", "0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:0", "1:0:0:1:0:0:0:1",
    "0:0:0:0:1:ffff:102:304", "fe80:0:0:0:0:0:0:0", "1:0:1:0:1:0:1:0",
])
def test_format_address_special_forms(words: str) -> None:
    packed = ipaddress.IPv6Address(words).packed
    assert format_address("inet6", words) == socket.inet_ntop(socket.AF_INET6, packed)


@pytest.mark.parametrize("text, expected", [
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("0:0:0:0:0:FFFF:0102:0304", "::ffff:1.2.3.4"), ("::1.2.3.4", "::1.2.3.4"),
    ("FD00:0:0:0:0:0:0:0001", "fd00::1"), ("fe80::1%eth0", "fe80::1%eth0"), ("10.0.0.1", "10.0.0.1"),
    ("not:an:address", "not:an:address"), ("", ""),
])
def test_canonical_address_spells_ipv6_as_inet_ntop_whatever_the_python(text: str, expected: str) -> None:
    # ipaddress writes ::ffff:1.2.3.4 as ::ffff:102:304 before Python 3.13: services and the
    # listings (inet_ntop's text, as ipvsadm's) would name one address two ways
    assert canonical_address(text) == expected


@given(st.binary(min_size=16, max_size=16))
def test_canonical_address_of_any_ipv6_text_is_inet_ntop(packed: bytes) -> None:
    for text in (str(ipaddress.IPv6Address(packed)), ipaddress.IPv6Address(packed).exploded.upper()):
        assert canonical_address(text) == socket.inet_ntop(socket.AF_INET6, packed)


def test_format_addrport_brackets_ipv6_only() -> None:
    assert format_addrport("inet", "10.0.0.1", 80) == "10.0.0.1:80"
    assert format_addrport("inet6", "fd00::1", 80) == "[fd00::1]:80"


_OCTET_TEXT = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "", " 1", "1 ", "٣", "0x1", "+1", "\x00"]))


@given(st.lists(_OCTET_TEXT, min_size=1, max_size=6).map(".".join))
def test_parse_address_takes_the_dotted_quads_ipaddress_takes(text: str) -> None:
    """IPv4 text is read without an ipaddress object: what it accepts, and how, must stay ipaddress's."""
    _read_as(text, lambda text: (str(ipaddress.IPv4Address(text)), "inet"))


def _read_as(text: str, expected: Callable[[str], tuple[str, str]]) -> None:
    """parse_address(text) is ``expected(text)`` (ipaddress's reading), refused where that raises ValueError."""
    try:
        value = expected(text)
    except ValueError:
        with pytest.raises(InvalidInput):
            parse_address(text)
        return
    assert parse_address(text) == value


_WORD = st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xA, 0x1234])


@given(st.lists(_WORD, min_size=8, max_size=8))
def test_format_address_is_inet_ntop_for_runs_of_zero_words(words: list[int]) -> None:
    """Zero words in every place and run length (random bytes seldom have any), the IPv4 tails too."""
    packed = b"".join(word.to_bytes(2, "big") for word in words)
    assert format_address("inet6", str(ipaddress.IPv6Address(packed))) == socket.inet_ntop(socket.AF_INET6, packed)


_GROUP_TEXT = st.one_of(st.sampled_from(["0", "1", "ffff", "FFFF", "00000", "12345", "g", "", " 1", "٣", "\x00",
                                          "1.2.3.4", "01.2.3.4", "1.2.3", "256.1.1.1"]),
                        st.integers(0, 0xFFFF).map("{:x}".format))


@given(st.lists(_GROUP_TEXT, min_size=1, max_size=10).map(":".join))
def test_parse_address_takes_the_ipv6_texts_ipaddress_takes(text: str) -> None:
    """IPv6 text is read with inet_pton, not an ipaddress object: what it accepts must stay ipaddress's."""
    _read_as(text if ":" in text else "::" + text,
             lambda text: (socket.inet_ntop(socket.AF_INET6, ipaddress.IPv6Address(text).packed), "inet6"))
