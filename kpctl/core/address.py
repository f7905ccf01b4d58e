"""SERVICE and SERVER syntax of CLI.md, and addresses printed the way inet_ntop prints them."""

from __future__ import annotations

import functools
import ipaddress
import re
import struct
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import TYPE_CHECKING

from kpctl.errors import InvalidInput

if TYPE_CHECKING:
    from kpctl.model.service_key import ServiceKey

MAX_FWMARK = 0xFFFFFFFF


def ascii_number(text: str, digits: int = 20) -> int | None:
    """``text`` as a number when it is 1 to ``digits`` ASCII digits, else None.  (int() takes other
    digits, and fails on some that str.isdigit() takes, '²', and past 4300 of them.)"""
    return int(text) if 0 < len(text) <= digits and text.isascii() and text.isdigit() else None


_FWMARK = re.compile(r"fwmark:(?P<mark>[^/]*)(?:/(?P<family>[^/]*))?", re.IGNORECASE)


def parse_address(text: str, what: str = "address") -> tuple[str, str]:
    """``text`` as (normalised address, family); IPv4 must be dotted quad, no zone ids."""
    parsed = _parse_address(text)
    if parsed is None:
        raise InvalidInput(f"invalid {what}: {text!r} is not an IPv4 or IPv6 address")
    return parsed


def _read_address(text: str) -> tuple[str, str] | None:
    """(normalised address, family) of ``text``, or None."""
    if "%" in text:
        return None
    if ":" not in text:
        quad = _dotted_quad(text)
        return None if quad is None else (quad, "inet")
    try:
        packed = _ipv6_packed(text)
    except ValueError:
        return None
    return _ipv6_text(packed), "inet6"


# service addresses repeat (a service's key on each of its servers' lines, the same VIP on many
# ports): each is read once; a real server's address is read each time (parse_server)
_parse_address = functools.lru_cache(maxsize=65536)(_read_address)


def _dotted_quad(text: str) -> str | None:
    """An IPv4 address as inet_ntop writes it, or None (inet_pton takes exactly what IPv4Address
    takes, without the object)."""
    try:
        return inet_ntop(AF_INET, inet_pton(AF_INET, text))
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None


def canonical_address(address: object) -> str:
    """IPv6 as glibc's inet_ntop writes it (format_address: what ipvsadm and every listing of
    kpctl show; ipaddress's text of an IPv4-mapped address changed in Python 3.13); dotted IPv4
    as it is (it has one spelling); anything else as it is."""
    text = str(address)
    if ":" not in text:
        return text
    host, percent, zone = text.partition("%")  # fe80::1%eth0: a zone kept as written
    try:
        return format_address("inet6", host) + percent + zone
    except ValueError:
        return text


def canonical_ipv4(text: str) -> bool:
    """Whether ``text`` is an IPv4 address written as inet_ntop writes it (not cached as parse_address
    is: a restore meets each real server's address once)."""
    return _dotted_quad(text) == text


def pack_address(address: str | None) -> bytes:
    """The address as ``ipaddress.ip_address(address).packed`` (b"" for none), the cheap way first.

    Packed bytes are the key for comparing and indexing addresses: building an ``ipaddress``
    object per element made VIP x service comparisons cost seconds at 1,000 services.
    """
    if not address:
        return b""
    try:
        return inet_pton(AF_INET6 if ":" in address else AF_INET, address)
    except OSError:
        return ipaddress.ip_address(address).packed


def pack_address_or_none(address: str | None) -> bytes | None:
    """``pack_address`` for text that may be no address at all (None then)."""
    try:
        return pack_address(address) or None
    except ValueError:
        return None


def parse_port(text: str, what: str, low: int = 0) -> int:
    port = _port_number(text, low)
    if port is None:
        raise InvalidInput(f"invalid {what}: port {text!r} is not a number {low}..65535")
    return port


def _port_number(text: str, low: int = 0) -> int | None:
    """``text`` as a port number (``low``..65535), or None (parse_port's error)."""
    port = ascii_number(text)
    return port if port is not None and low <= port <= 65535 else None


def _split_host_port(text: str, what: str) -> tuple[str, str | None]:
    """'[v6]:p' / 'v4:p' / '[v6]' / 'v4' / bare v6 → (host, port text or None)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InvalidInput(f"invalid {what} {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1:]
        if rest == "":
            return host, None
        if not rest.startswith(":"):
            raise InvalidInput(f"invalid {what} {text!r}: expected ':PORT' after ']'")
        return host, rest[1:]
    if text.count(":") > 1:  # a bare IPv6 address: no port possible
        return text, None
    host, sep, port = text.partition(":")
    return host, (port if sep else None)


def parse_service(text: str) -> ServiceKey:
    """``ADDR:PORT[/PROTO]``, ``[V6]:PORT[/PROTO]``, ``fwmark:N[/ipv6]`` → ServiceKey.

    >>> str(parse_service("10.254.0.2:53/UDP"))
    '10.254.0.2:53/udp'
    """
    from kpctl.model.service_key import PROTOCOLS, ServiceKey

    text = text.strip()
    what = "service"
    match = _FWMARK.fullmatch(text)
    if match:
        return ServiceKey(family=_fwmark_family(match.group("family"), text), protocol=None,
                          fwmark=parse_fwmark(match.group("mark"), text))
    body, _slash, proto = text.rpartition("/") if "/" in text else (text, "", "tcp")
    protocol = proto.lower()
    if protocol not in PROTOCOLS:
        raise InvalidInput(f"invalid protocol {proto!r} in service {text!r}: use one of {', '.join(PROTOCOLS)}")
    host, port = _split_host_port(body, what)
    address, family = parse_address(host, f"service {text!r}")
    if port is None:
        raise InvalidInput(f"invalid service {text!r}: missing ':PORT' (e.g. 10.254.0.1:443, [fd00::1]:443)")
    return ServiceKey(family=family, protocol=protocol, address=address,
                      port=parse_port(port, f"service {text!r}"), fwmark=0)


def _fwmark_family(family: str | None, text: str) -> str:
    if family is None or family.lower() in ("ipv4", "inet"):
        return "inet"
    if family.lower() in ("ipv6", "inet6"):
        return "inet6"
    raise InvalidInput(f"invalid fwmark service {text!r}: family must be ipv6 or ipv4, not {family!r}")


def parse_fwmark(mark: str, text: str | None = None) -> int:
    number = ascii_number(mark)
    if number is None or not 1 <= number <= MAX_FWMARK:
        where = f" in {text!r}" if text and text != mark else ""
        raise InvalidInput(f"invalid fwmark {mark!r}{where}: must be a number 1..{MAX_FWMARK}")
    return number


def parse_server(text: str, default_port: int) -> tuple[str, int, str]:
    """``ADDR[:PORT]`` / ``[V6][:PORT]`` / bare IPv6 → (address, port, family); port defaults."""
    text = text.strip()
    host, port = _split_host_port(text, "server")
    parsed = _read_address(host)  # (not kept: a restore meets each server once)
    number = default_port if port is None else _port_number(port)
    if parsed is None or number is None:  # the errors' text, made only for an error
        parse_address(host, f"server {text!r}")
        parse_port(port or "", f"server {text!r}")
    address, family = parsed  # type: ignore[misc]
    return address, number, family  # type: ignore[return-value]


@functools.lru_cache(maxsize=65536)
def format_address(family: str, address: str) -> str:
    """The address as glibc's inet_ntop writes it (IPv6: '::ffff:1.2.3.4' style tails kept)."""
    if family != "inet6":
        try:  # a dotted quad, the common case: what IPv4Address would print, without the object
            return inet_ntop(AF_INET, inet_pton(AF_INET, address))
        except OSError:
            return str(ipaddress.IPv4Address(address))  # its error for anything else
    return _ipv6_text(_ipv6_packed(address))


def unpack_address(packed: bytes) -> tuple[str, str]:
    """An address packed in 16 bytes (IPv6) or 4 (IPv4), as inet_ntop writes it, and its family
    ("inet6", "inet"): what the kernel's replies and texts give."""
    if len(packed) == 16:
        return inet_ntop(AF_INET6, packed), "inet6"
    return inet_ntop(AF_INET, packed), "inet"


def _ipv6_packed(text: str) -> bytes:
    """``IPv6Address(text).packed``, without the object where inet_pton reads it (the same
    addresses: tested), IPv6Address's ValueError for what neither reads."""
    try:
        return inet_pton(AF_INET6, text)
    except (OSError, ValueError):  # (ValueError: an embedded NUL)
        return ipaddress.IPv6Address(text).packed


_WORDS = struct.Struct("!8H")
# ":0:0:…:0:" for runs of eight down to two zero words: a run's text within ":" + the words + ":"
_ZERO_RUNS = [(length, ":" + ":".join("0" * length) + ":") for length in range(8, 1, -1)]


def _ipv6_text(packed: bytes) -> str:
    """16 bytes as glibc's inet_ntop writes them: the longest run of two or more zero words (the
    first of equals) as ``::``, and ``::a.b.c.d`` / ``::ffff:a.b.c.d`` for the IPv4 forms."""
    words = _WORDS.unpack(packed)
    framed = ":%x:%x:%x:%x:%x:%x:%x:%x:" % words
    for length, run in _ZERO_RUNS:
        at = framed.find(run)
        if at >= 0:
            break
    else:
        return framed[1:-1]
    if at == 0 and (length == 6 or (length == 5 and words[5] == 0xFFFF)):
        return ("::" if length == 6 else "::ffff:") + inet_ntop(AF_INET, packed[12:])
    return framed[1:at] + "::" + framed[at + len(run):-1]


def format_addrport(family: str, address: str, port: int) -> str:
    """``10.0.0.1:80`` or ``[fd00::1]:80`` (ipvsadm's numeric addrport)."""
    return addrport(format_address(family, address), port)


def addrport(address: str, port: int) -> str:
    """``ADDR:PORT``, or ``[ADDR]:PORT`` for an IPv6 address, of an address as it is written."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
