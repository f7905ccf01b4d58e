"""Fast path of `ipset restore`: ``add``/``del`` lines of the common IPv4 shapes packed straight
from the text into their IPSET_ATTR_DATA nest, without an :class:`IPSetEntry` per member.

Parsing an element into a 26-field entry, formatting its canonical text back and packing its
attributes one by one cost ~25 us of Python per member; a 100,000-member restore spent most
of its time there.  Here one regex per line accepts only text that the generic parser
(:func:`kpctl.core.ipset_entry.parse_element`) takes unchanged: canonical dotted quads
(``inet_pton``), lower-case protocol names with a real port, canonical decimal numbers, no
options.  Its bytes equal ``entry_data(…, entry, lineno)`` of the generic entry, and the
element as written equals the entry's ``raw`` (both unit-tested), so an error can quote it
from the text.  Anything else, including every line that is wrong, returns None and goes
through the generic parser, so errors and their line numbers are the generic ones.

Shapes: hash:ip ``A.B.C.D``; hash:net ``A.B.C.D[/N]``; hash:ip,port ``A.B.C.D,tcp:P``;
hash:ip,port,ip ``A.B.C.D,tcp:P,E.F.G.H``; hash:ip,port,net ``A.B.C.D,tcp:P,E.F.G.H[/N]``;
bitmap:port ``P`` (within the set's range); all of family inet.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Callable

from kpctl.core.ipset_save import LineEncoder
from kpctl.model.ipset import IPSet

# (command, exist, IPSET_ATTR_DATA nest) of one line, or None: use the generic parser.
Packed = tuple[str, bool, bytes]

_HDR = struct.Struct("=HH")
_NESTED, _NBO = 0x8000, 0x4000
_DATA, _IP, _CIDR, _PORT, _PROTO, _LINENO, _IP2, _CIDR2 = 7, 1, 3, 4, 7, 9, 20, 21
_IPV4 = 1

_QUAD = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
_PROTO_PORT = r"(tcp|udp|sctp|udplite):(0|[1-9]\d{0,4})"
_PREFIX = r"(?:/([1-9]\d?))?"
_PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136}
_INET_PTON, _AF_INET = socket.inet_pton, socket.AF_INET


def _h(length: int, kind: int) -> bytes:
    return _HDR.pack(length, kind)


_IP_NEST = _h(12, _IP | _NESTED) + _h(8, _IPV4 | _NBO)
_IP2_NEST = _h(12, _IP2 | _NESTED) + _h(8, _IPV4 | _NBO)
_PORT_H, _PROTO_H, _LINENO_H = _h(6, _PORT | _NBO), _h(5, _PROTO), _h(8, _LINENO | _NBO)
_CIDR_H, _CIDR2_H = _h(5, _CIDR), _h(5, _CIDR2)


def _data(length: int) -> bytes:
    return _h(length, _DATA | _NESTED)


# Struct layouts ('>': the values are big-endian; the 4-byte NLA headers go in as bytes).
_S_IP = struct.Struct(">4s8s4s4sI")  # DATA, IP nest, addr, LINENO hdr, lineno
_S_NET = struct.Struct(">4s8s4s4sB3x4sI")  # … + CIDR
_S_IP_PORT = struct.Struct(">4s8s4s4sH2x4sB3x4sI")  # DATA, IP, addr, PORT, PROTO, LINENO
_S_IP_PORT_IP = struct.Struct(">4s8s4s4sH2x4sB3x8s4s4sI")  # … + IP2 before LINENO
_S_IP_PORT_NET = struct.Struct(">4s8s4s4sH2x4sB3x8s4s4sB3x4sI")  # … + IP2 + CIDR2
_S_PORT = struct.Struct(">4s4sH2x4sI")  # DATA, PORT, LINENO


def _line(name: str, element: str) -> Callable[[str], re.Match[str] | None]:
    return re.compile(rf"(add|del) {re.escape(name)} {element}( -exist| -!| --exist)?", re.ASCII).fullmatch


def _masked(packed: bytes, cidr: int) -> bytes:
    mask = (0xFFFFFFFF << (32 - cidr)) & 0xFFFFFFFF
    return (int.from_bytes(packed, "big") & mask).to_bytes(4, "big")


def _hash_ip(name: str) -> LineEncoder:
    match, pack = _line(name, f"({_QUAD})"), _S_IP.pack
    data, ip, lineno_h = _data(_S_IP.size), _IP_NEST, _LINENO_H

    def encode(line: str, lineno: int) -> Packed | None:
        m = match(line)
        if m is None:
            return None
        command, address_text, exist = m.groups()
        try:
            address = _INET_PTON(_AF_INET, address_text)
        except OSError:
            return None
        return command, exist is not None, pack(data, ip, address, lineno_h, lineno)

    return encode


def _hash_net(name: str) -> LineEncoder:
    match = _line(name, rf"({_QUAD}){_PREFIX}")
    host, net = _S_IP.pack, _S_NET.pack
    host_data, net_data, ip, cidr_h, lineno_h = _data(_S_IP.size), _data(_S_NET.size), _IP_NEST, _CIDR_H, _LINENO_H

    def encode(line: str, lineno: int) -> Packed | None:
        m = match(line)
        if m is None:
            return None
        command, address_text, cidr_text, exist = m.groups()
        try:
            address = _INET_PTON(_AF_INET, address_text)
        except OSError:
            return None
        if cidr_text is None:
            return command, exist is not None, host(host_data, ip, address, lineno_h, lineno)
        cidr = int(cidr_text)
        if cidr >= 32 or _masked(address, cidr) != address:  # printed otherwise than written
            return None
        return command, exist is not None, net(net_data, ip, address, cidr_h, cidr, lineno_h, lineno)

    return encode


def _hash_ip_port(name: str) -> LineEncoder:
    match, pack = _line(name, rf"({_QUAD}),{_PROTO_PORT}"), _S_IP_PORT.pack
    data, ip, port_h, proto_h, lineno_h = _data(_S_IP_PORT.size), _IP_NEST, _PORT_H, _PROTO_H, _LINENO_H
    protocols = _PROTOCOLS

    def encode(line: str, lineno: int) -> Packed | None:
        m = match(line)
        if m is None:
            return None
        command, address_text, proto, port_text, exist = m.groups()
        port = int(port_text)
        if port > 65535:
            return None
        try:
            address = _INET_PTON(_AF_INET, address_text)
        except OSError:
            return None
        return (command, exist is not None,
                pack(data, ip, address, port_h, port, proto_h, protocols[proto], lineno_h, lineno))

    return encode


def _hash_ip_port_ip(name: str) -> LineEncoder:
    match, pack = _line(name, rf"({_QUAD}),{_PROTO_PORT},({_QUAD})"), _S_IP_PORT_IP.pack
    data, ip, ip2, port_h, proto_h, lineno_h = (_data(_S_IP_PORT_IP.size), _IP_NEST, _IP2_NEST, _PORT_H,
                                                _PROTO_H, _LINENO_H)
    protocols = _PROTOCOLS

    def encode(line: str, lineno: int) -> Packed | None:
        m = match(line)
        if m is None:
            return None
        command, address_text, proto, port_text, address2_text, exist = m.groups()
        port = int(port_text)
        if port > 65535:
            return None
        try:
            address, address2 = _INET_PTON(_AF_INET, address_text), _INET_PTON(_AF_INET, address2_text)
        except OSError:
            return None
        return (command, exist is not None,
                pack(data, ip, address, port_h, port, proto_h, protocols[proto], ip2, address2, lineno_h, lineno))

    return encode


def _hash_ip_port_net(name: str) -> LineEncoder:
    match = _line(name, rf"({_QUAD}),{_PROTO_PORT},({_QUAD}){_PREFIX}")
    host, net = _S_IP_PORT_IP.pack, _S_IP_PORT_NET.pack
    host_data, net_data = _data(_S_IP_PORT_IP.size), _data(_S_IP_PORT_NET.size)
    ip, ip2, port_h, proto_h, cidr2_h, lineno_h = _IP_NEST, _IP2_NEST, _PORT_H, _PROTO_H, _CIDR2_H, _LINENO_H
    protocols = _PROTOCOLS

    def encode(line: str, lineno: int) -> Packed | None:
        m = match(line)
        if m is None:
            return None
        command, address_text, proto, port_text, address2_text, cidr_text, exist = m.groups()
        port = int(port_text)
        if port > 65535:
            return None
        try:
            address, address2 = _INET_PTON(_AF_INET, address_text), _INET_PTON(_AF_INET, address2_text)
        except OSError:
            return None
        if cidr_text is None:
            return (command, exist is not None,
                    host(host_data, ip, address, port_h, port, proto_h, protocols[proto], ip2, address2, lineno_h,
                         lineno))
        cidr = int(cidr_text)
        if cidr >= 32 or _masked(address2, cidr) != address2:
            return None
        return (command, exist is not None,
                net(net_data, ip, address, port_h, port, proto_h, protocols[proto], ip2, address2, cidr2_h, cidr,
                    lineno_h, lineno))

    return encode


def _bitmap_port(name: str, low: int, high: int) -> LineEncoder:
    match, pack = _line(name, r"(0|[1-9]\d{0,4})"), _S_PORT.pack
    data, port_h, lineno_h = _data(_S_PORT.size), _PORT_H, _LINENO_H

    def encode(line: str, lineno: int) -> Packed | None:
        m = match(line)
        if m is None:
            return None
        command, port_text, exist = m.groups()
        port = int(port_text)
        if port < low or port > high:  # the generic parser names the range in its error
            return None
        return command, exist is not None, pack(data, port_h, port, lineno_h, lineno)

    return encode


_HASH_ENCODERS: dict[str, Callable[[str], LineEncoder]] = {
    "hash:ip": _hash_ip, "hash:net": _hash_net, "hash:ip,port": _hash_ip_port,
    "hash:ip,port,ip": _hash_ip_port_ip, "hash:ip,port,net": _hash_ip_port_net,
}


def line_encoder(ipset: IPSet) -> LineEncoder | None:
    """The fast encoder of ``add``/``del`` lines of ``ipset`` (its header), or None for none."""
    if ipset.type == "bitmap:port":
        low, dash, high = (ipset.range or "").partition("-")
        if not dash or not low.isdigit() or not high.isdigit():
            return None
        return _bitmap_port(ipset.name, int(low), int(high))
    factory = _HASH_ENCODERS.get(ipset.type)
    if factory is None or ipset.family != "inet":
        return None
    return factory(ipset.name)
