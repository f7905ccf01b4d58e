"""ipset over nfnetlink (NETLINK_NETFILTER, subsystem IPSET), protocol 7.

Our own requests rather than pyroute2's ``IPSet``: pyroute2 reads only the first message of a
multi-message LIST reply (pyroute2 issue #1484), has no attribute tables for several element
and header attributes (bitmask, netmask, ranges) and decodes every message into trees, which is
slow for 100,000 members.  Attribute numbers mirror include/uapi/linux/netfilter/ipset/ip_set.h.

Kernel refusals become kpctl's named errors here (see :func:`_raise_for`).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from kpctl.backends.genl import NLAHDR as _NLAHDR
from kpctl.backends.genl import NLMSGHDR as _NLMSGHDR
from kpctl.backends.genl import pack_attr as _nla
from kpctl.backends.genl import parse_attrs as _attrs
from kpctl.core.address import pack_address
from kpctl.core.ipset_entry import PROTOCOL_NAMES, entry_of
from kpctl.errors import (
    AlreadyExists,
    InvalidInput,
    KernelError,
    KernelFeatureMissing,
    KpctlError,
    NegativeAnswer,
    NotFound,
    PermissionDenied,
)
from kpctl.model.ipset import IPSet, IPSetEntry

NETLINK_NETFILTER = 12
NFNL_SUBSYS_IPSET = 6
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_EXCL, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x200, 0x300
NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK = 0x8000, 0x4000, 0x3FFF
IPSET_PROTOCOL = 7

# Commands.
CMD_CREATE, CMD_DESTROY, CMD_FLUSH, CMD_RENAME, CMD_SWAP, CMD_LIST = 2, 3, 4, 5, 6, 7
CMD_ADD, CMD_DEL, CMD_TEST, CMD_HEADER, CMD_TYPE = 9, 10, 11, 12, 13
# Command-level attributes.
ATTR_PROTOCOL, ATTR_SETNAME, ATTR_TYPENAME, ATTR_SETNAME2, ATTR_REVISION, ATTR_FAMILY = 1, 2, 3, 3, 4, 5
ATTR_FLAGS, ATTR_DATA, ATTR_ADT, ATTR_LINENO, ATTR_REVISION_MIN = 6, 7, 8, 9, 10
# CADT attributes (create and add/del/test data).
ATTR_IP, ATTR_IP_TO, ATTR_CIDR, ATTR_PORT, ATTR_PORT_TO, ATTR_TIMEOUT, ATTR_PROTO = 1, 2, 3, 4, 5, 6, 7
ATTR_CADT_FLAGS, ATTR_CADT_LINENO, ATTR_MARK, ATTR_MARKMASK, ATTR_BITMASK = 8, 9, 10, 11, 12
# Create-only / header attributes.
ATTR_INITVAL, ATTR_HASHSIZE, ATTR_MAXELEM, ATTR_NETMASK, ATTR_BUCKETSIZE = 17, 18, 19, 20, 21
ATTR_SIZE, ATTR_ELEMENTS, ATTR_REFERENCES, ATTR_MEMSIZE = 23, 24, 25, 26
# ADT-only attributes.
ATTR_ETHER, ATTR_NAME, ATTR_NAMEREF, ATTR_IP2, ATTR_CIDR2, ATTR_IP2_TO, ATTR_IFACE = 17, 18, 19, 20, 21, 22, 23
ATTR_BYTES, ATTR_PACKETS, ATTR_COMMENT, ATTR_SKBMARK, ATTR_SKBPRIO, ATTR_SKBQUEUE = 24, 25, 26, 27, 28, 29
ATTR_IPADDR_IPV4, ATTR_IPADDR_IPV6 = 1, 2
# Flags.
FLAG_LIST_SETNAME, FLAG_LIST_HEADER = 1 << 1, 1 << 2
FLAG_PHYSDEV, FLAG_NOMATCH, FLAG_WITH_COUNTERS, FLAG_WITH_COMMENT = 1 << 1, 1 << 2, 1 << 3, 1 << 4
FLAG_WITH_FORCEADD, FLAG_WITH_SKBINFO, FLAG_IFACE_WILDCARD = 1 << 5, 1 << 6, 1 << 7
NFPROTO = {None: 0, "inet": 2, "inet6": 10}
FAMILY_NAMES = {0: None, 2: "inet", 10: "inet6"}
# ipset errno values (IPSET_ERR_PRIVATE = 4096 and IPSET_ERR_TYPE_SPECIFIC = 4352 onwards).
ERR_PROTOCOL, ERR_FIND_TYPE, ERR_MAX_SETS, ERR_BUSY, ERR_EXIST_SETNAME2 = 4097, 4098, 4099, 4100, 4101
ERR_TYPE_MISMATCH, ERR_EXIST, ERR_INVALID_CIDR, ERR_INVALID_NETMASK = 4102, 4103, 4104, 4105
ERR_INVALID_FAMILY, ERR_TIMEOUT, ERR_REFERENCED = 4106, 4107, 4108
ERR_TYPE_SPECIFIC = 4352

_NFGENMSG = struct.Struct("=BBH")
_BE16, _BE32, _BE64 = struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
RECV_BUFFER = 1 << 20
BATCH_BYTES = 48 * 1024

_MESSAGES = {
    ERR_PROTOCOL: "the kernel refused the request (ipset protocol error; option unsupported by this set type or kernel?)",
    ERR_MAX_SETS: "the kernel's maximum number of sets is reached",
    ERR_INVALID_CIDR: "invalid prefix length for this set",
    ERR_INVALID_NETMASK: "invalid netmask",
    ERR_INVALID_FAMILY: "the address family does not match the set",
    ERR_TIMEOUT: "the set has no timeout support",
    4109: "an IPv4 address is expected",
    4110: "an IPv6 address is expected",
    4111: "the set has no counters",
    4112: "the set has no comment support",
    4113: "invalid markmask",
    4114: "the set has no skbinfo support",
    4115: "invalid bitmask",
}


@dataclass(frozen=True)
class Request:
    """What kind of request failed, so errors can say it in the user's words."""

    command: int
    name: str = ""
    name2: str = ""
    element: str = ""
    set_type: str = ""


def _nest(kind: int, parts: Iterable[bytes]) -> bytes:
    return _nla(kind | NLA_F_NESTED, b"".join(parts))


# The fixed-size attributes, padded to 4 bytes (what pack_attr makes of them), in two steps.
_U8_PADDED, _BE16_PADDED = struct.Struct("B3x"), struct.Struct(">H2x")


def _u8(kind: int, value: int) -> bytes:
    return _NLAHDR.pack(5, kind) + _U8_PADDED.pack(value)


def _be16(kind: int, value: int) -> bytes:
    return _NLAHDR.pack(6, kind | NLA_F_NET_BYTEORDER) + _BE16_PADDED.pack(value)


def _be32(kind: int, value: int) -> bytes:
    return _NLAHDR.pack(8, kind | NLA_F_NET_BYTEORDER) + _BE32.pack(value)


def _be64(kind: int, value: int) -> bytes:
    return _NLAHDR.pack(12, kind | NLA_F_NET_BYTEORDER) + _BE64.pack(value)


def _str(kind: int, value: str) -> bytes:
    return _nla(kind, value.encode() + b"\0")


def _ip(kind: int, text: str) -> bytes:
    packed = pack_address(text)
    head = _IP_HEADS.get((kind, len(packed)))
    if head is None:  # (the nest's header and its address attribute's, made once per kind)
        inner = ATTR_IPADDR_IPV6 if len(packed) == 16 else ATTR_IPADDR_IPV4
        head = _IP_HEADS[(kind, len(packed))] = _nest(kind, [_nla(inner | NLA_F_NET_BYTEORDER, packed)])[:8]
    return head + packed


_IP_HEADS: dict[tuple[int, int], bytes] = {}


def _iter_attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    while start + 4 <= end:
        length, kind = _NLAHDR.unpack_from(buf, start)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3


def _get_uint(buf: bytes, span: tuple[int, int]) -> int:
    return int.from_bytes(buf[span[0]:span[1]], "big")


def _get_str(buf: bytes, span: tuple[int, int]) -> str:
    return buf[span[0]:span[1]].split(b"\0", 1)[0].decode("utf-8", "replace")


def _get_ip(buf: bytes, span: tuple[int, int]) -> str:
    # One nested IPSET_ATTR_IPADDR_IPV4/IPV6 attribute; inet_ntop prints as ipset does.
    length, kind = _NLAHDR.unpack_from(buf, span[0])
    payload = buf[span[0] + 4:span[0] + length]
    if kind & NLA_TYPE_MASK == ATTR_IPADDR_IPV6:
        return socket.inet_ntop(socket.AF_INET6, payload)
    return socket.inet_ntop(socket.AF_INET, payload)


def _address(parts: list[bytes], ip: str | None, ip_to: str | None, cidr: int | None,
             kinds: tuple[int, int, int]) -> None:
    """One of a member's addresses as attributes: the address, its range's end, its prefix."""
    if ip is not None:
        parts.append(_ip(kinds[0], ip))
        if ip_to:
            parts.append(_ip(kinds[1], ip_to))
        if cidr is not None:
            parts.append(_u8(kinds[2], cidr))


def entry_attrs(ipset: IPSet, entry: IPSetEntry, lineno: int = 0) -> bytes:
    """The IPSET_ATTR_DATA payload for ``entry`` of ``ipset`` (add/del/test)."""
    parts: list[bytes] = []
    flags = 0
    if entry.name is not None:
        parts.append(_str(ATTR_NAME, entry.name))
    _address(parts, entry.ip, entry.ip_to, entry.cidr, (ATTR_IP, ATTR_IP_TO, ATTR_CIDR))
    if entry.port is not None:
        parts.append(_be16(ATTR_PORT, entry.port))
        if entry.port_to is not None:
            parts.append(_be16(ATTR_PORT_TO, entry.port_to))
        if entry.proto_num is not None:
            parts.append(_u8(ATTR_PROTO, entry.proto_num))
    _address(parts, entry.ip2, entry.ip2_to, entry.cidr2, (ATTR_IP2, ATTR_IP2_TO, ATTR_CIDR2))
    if entry.iface is not None:
        parts.append(_str(ATTR_IFACE, entry.iface))
        flags |= (FLAG_PHYSDEV if entry.physdev else 0) | (FLAG_IFACE_WILDCARD if entry.wildcard else 0)
    if entry.mark is not None:
        parts.append(_be32(ATTR_MARK, entry.mark))
    if entry.mac is not None:
        parts.append(_nla(ATTR_ETHER, bytes(int(b, 16) for b in entry.mac.split(":"))))
    if entry.timeout is not None:
        parts.append(_be32(ATTR_TIMEOUT, entry.timeout))
    if entry.nomatch:
        flags |= FLAG_NOMATCH
    if flags:
        parts.append(_be32(ATTR_CADT_FLAGS, flags))
    if entry.packets is not None:
        parts.append(_be64(ATTR_PACKETS, entry.packets))
    if entry.bytes is not None:
        parts.append(_be64(ATTR_BYTES, entry.bytes))
    if entry.comment is not None:
        parts.append(_str(ATTR_COMMENT, entry.comment))
    if entry.skbmark is not None:
        mask = entry.skbmarkmask if entry.skbmarkmask is not None else 0xFFFFFFFF
        parts.append(_be64(ATTR_SKBMARK, entry.skbmark << 32 | mask))
    if entry.skbprio is not None:
        major, _, minor = entry.skbprio.partition(":")
        parts.append(_be32(ATTR_SKBPRIO, int(major, 16) << 16 | int(minor, 16)))
    if entry.skbqueue is not None:
        parts.append(_be16(ATTR_SKBQUEUE, entry.skbqueue))
    if lineno:
        parts.append(_be32(ATTR_CADT_LINENO, lineno))
    return b"".join(parts)


def entry_data(ipset: IPSet, entry: IPSetEntry, lineno: int = 0) -> bytes:
    """The IPSET_ATTR_DATA nest of ``entry`` in an add/del request (what the ADT nest holds)."""
    body = entry_attrs(ipset, entry, lineno)  # (attributes: a multiple of 4 bytes)
    return _NLAHDR.pack(4 + len(body), ATTR_DATA | NLA_F_NESTED) + body


def create_attrs(ipset: IPSet) -> bytes:
    """The IPSET_ATTR_DATA payload of a create request for ``ipset``'s header."""
    parts: list[bytes] = []
    if ipset.range is not None:
        low, _, high = ipset.range.partition("-")
        if ipset.type == "bitmap:port":
            parts += [_be16(ATTR_PORT, int(low)), _be16(ATTR_PORT_TO, int(high))]
        else:
            parts += [_ip(ATTR_IP, low), _ip(ATTR_IP_TO, high)]
    for kind, value in ((ATTR_HASHSIZE, ipset.hashsize), (ATTR_MAXELEM, ipset.maxelem),
                        (ATTR_TIMEOUT, ipset.timeout), (ATTR_SIZE, ipset.size), (ATTR_MARKMASK, ipset.markmask),
                        (ATTR_INITVAL, ipset.initval)):
        if value is not None:
            parts.append(_be32(kind, value))
    if ipset.netmask is not None:
        parts.append(_u8(ATTR_NETMASK, ipset.netmask))
    if ipset.bitmask is not None:
        parts.append(_ip(ATTR_BITMASK, ipset.bitmask))
    if ipset.bucketsize is not None:
        parts.append(_u8(ATTR_BUCKETSIZE, ipset.bucketsize))
    flags = (FLAG_WITH_COUNTERS if ipset.counters else 0) | (FLAG_WITH_COMMENT if ipset.comment else 0) \
        | (FLAG_WITH_SKBINFO if ipset.skbinfo else 0) | (FLAG_WITH_FORCEADD if ipset.forceadd else 0)
    if flags:
        parts.append(_be32(ATTR_CADT_FLAGS, flags))
    return b"".join(parts)


def _decode_header(buf: bytes, top: dict[int, tuple[int, int]], data: dict[int, tuple[int, int]]) -> IPSet:
    set_type = _get_str(buf, top[ATTR_TYPENAME]) if ATTR_TYPENAME in top else ""
    family = FAMILY_NAMES.get(_get_uint(buf, top[ATTR_FAMILY]) if ATTR_FAMILY in top else 0)
    if set_type.startswith("bitmap:") and set_type != "bitmap:port":
        family = "inet"
    values: dict[str, object] = {}
    for kind, field_name in ((ATTR_HASHSIZE, "hashsize"), (ATTR_MAXELEM, "maxelem"), (ATTR_TIMEOUT, "timeout"),
                             (ATTR_SIZE, "size"), (ATTR_MARKMASK, "markmask"), (ATTR_INITVAL, "initval"),
                             (ATTR_NETMASK, "netmask"), (ATTR_BUCKETSIZE, "bucketsize"),
                             (ATTR_MEMSIZE, "size_in_memory"), (ATTR_REFERENCES, "references"),
                             (ATTR_ELEMENTS, "entries")):
        if kind in data:
            values[field_name] = _get_uint(buf, data[kind])
    if ATTR_BITMASK in data:
        values["bitmask"] = _get_ip(buf, data[ATTR_BITMASK])
    if set_type == "bitmap:port" and ATTR_PORT in data:
        values["range"] = f"{_get_uint(buf, data[ATTR_PORT])}-{_get_uint(buf, data[ATTR_PORT_TO])}"
    elif ATTR_IP in data and ATTR_IP_TO in data:
        values["range"] = f"{_get_ip(buf, data[ATTR_IP])}-{_get_ip(buf, data[ATTR_IP_TO])}"
    flags = _get_uint(buf, data[ATTR_CADT_FLAGS]) if ATTR_CADT_FLAGS in data else 0
    return IPSet(
        name=_get_str(buf, top[ATTR_SETNAME]),
        type=set_type,
        family=family,
        revision=_get_uint(buf, top[ATTR_REVISION]) if ATTR_REVISION in top else None,
        counters=bool(flags & FLAG_WITH_COUNTERS),
        comment=bool(flags & FLAG_WITH_COMMENT),
        skbinfo=bool(flags & FLAG_WITH_SKBINFO),
        forceadd=bool(flags & FLAG_WITH_FORCEADD),
        **values,  # type: ignore[arg-type]
    )


def _decode_entry(buf: bytes, start: int, end: int, ipset: IPSet) -> IPSetEntry:
    values: dict[str, object] = {}
    flags = 0
    host_bits = 128 if ipset.family == "inet6" else 32
    for kind, a, b in _iter_attrs(buf, start, end):
        if kind == ATTR_IP:
            values["ip"] = _get_ip(buf, (a, b))
        elif kind == ATTR_CIDR:
            values["cidr"] = buf[a]
        elif kind == ATTR_PORT:
            values["port"] = _BE16.unpack_from(buf, a)[0]
        elif kind == ATTR_PROTO:
            values["proto_num"] = buf[a]
            values["proto"] = PROTOCOL_NAMES.get(buf[a], str(buf[a]))
        elif kind == ATTR_IP2:
            values["ip2"] = _get_ip(buf, (a, b))
        elif kind == ATTR_CIDR2:
            values["cidr2"] = buf[a]
        elif kind == ATTR_IFACE:
            values["iface"] = _get_str(buf, (a, b))
        elif kind == ATTR_NAME:
            values["name"] = _get_str(buf, (a, b))
        elif kind == ATTR_MARK:
            values["mark"] = _BE32.unpack_from(buf, a)[0]
        elif kind == ATTR_ETHER:
            values["mac"] = ":".join(f"{x:02X}" for x in buf[a:a + 6])
        elif kind == ATTR_TIMEOUT:
            values["timeout"] = _BE32.unpack_from(buf, a)[0]
        elif kind == ATTR_CADT_FLAGS:
            flags = _BE32.unpack_from(buf, a)[0]
        elif kind == ATTR_PACKETS:
            values["packets"] = _BE64.unpack_from(buf, a)[0]
        elif kind == ATTR_BYTES:
            values["bytes"] = _BE64.unpack_from(buf, a)[0]
        elif kind == ATTR_COMMENT:
            values["comment"] = _get_str(buf, (a, b))
        elif kind == ATTR_SKBMARK:
            both = _BE64.unpack_from(buf, a)[0]
            values["skbmark"], values["skbmarkmask"] = both >> 32, both & 0xFFFFFFFF
        elif kind == ATTR_SKBPRIO:
            prio = _BE32.unpack_from(buf, a)[0]
            values["skbprio"] = f"{prio >> 16:x}:{prio & 0xFFFF:x}"
        elif kind == ATTR_SKBQUEUE:
            values["skbqueue"] = _BE16.unpack_from(buf, a)[0]
    if values.get("cidr") == host_bits:
        values["cidr"] = None
    if values.get("cidr2") == host_bits:
        values["cidr2"] = None
    if ipset.type == "bitmap:port":
        values.pop("proto_num", None)
        values.pop("proto", None)
    if flags:  # else all three are False, the fields' defaults
        values["nomatch"], values["physdev"] = bool(flags & FLAG_NOMATCH), bool(flags & FLAG_PHYSDEV)
        values["wildcard"] = bool(flags & FLAG_IFACE_WILDCARD)
    return entry_of(values, ipset.type)


# Copying a set (a restore's staging) sends each member as the kernel dumped it, with the flags
# an add request needs: NLA_F_NET_BYTEORDER on the addresses in the IP and IP2 nests, which a dump
# lacks (nla_put_ipaddr4/6 write them with nla_put_in_addr), and NLA_F_NESTED on those nests and
# on DATA (dumps carry it already: set so that a copy never depends on it).  Every other
# attribute (ports, timeouts, counters, comments, names…) is dumped as an add request carries it.
# No member is decoded: copying a set of any type costs what moving its bytes costs.
_NESTS = frozenset({ATTR_IP, ATTR_IP2})
_HIGH = 3 if sys.byteorder == "little" else 2  # the byte of a header (native order) with the type's flags


def _headers(buf: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(offset from ``start``, flag an add request needs) of every attribute header of the DATA
    nest ``buf[start:end]``, its own first; the flag 0 for a header taken as it is."""
    found = [(0, NLA_F_NESTED)]
    for kind, a, b in _iter_attrs(buf, start + 4, end):
        nested = kind in _NESTS
        found.append((a - 4 - start, NLA_F_NESTED if nested else 0))
        if nested:
            found.extend((x - 4 - start, NLA_F_NET_BYTEORDER) for _kind, x, _end in _iter_attrs(buf, a, b))
    return found


def readd_members(buf: bytes, start: int, end: int) -> list[bytes]:
    """The DATA nest of every member of one dump message's ADT nest (``buf[start:end]``) as an add
    request carries it (see above): all at once when they share the first one's layout (the
    same attributes of the same lengths: any set without comments or interface names), else
    each on its own."""
    together = _same_layout(buf, start, end)
    if together is not None:
        return together
    out = []
    for kind, a, b in _iter_attrs(buf, start, end):
        if kind == ATTR_DATA:
            if b > end:
                raise KernelError(f"a set member the kernel dumped is cut short ({b - a + 4} bytes announced)")
            member = bytearray(buf[a - 4:a + ((b - a + 3) & ~3)])
            for offset, flag in _headers(buf, a - 4, b):
                member[offset + _HIGH] |= flag >> 8
            out.append(bytes(member))
    return out


def _same_layout(buf: bytes, start: int, end: int) -> list[bytes] | None:
    """readd_members of ``buf[start:end]`` when it is DATA nests of one layout, else None: each
    header is checked and flagged across all of them at once, a byte at a time in strided slices."""
    length = _NLAHDR.unpack_from(buf, start)[0] if end - start >= 4 else 0
    size = (length + 3) & ~3
    count = (end - start) // size if length >= 4 else 0
    if not count or count * size != end - start or len(buf) < end:
        return None
    dumped = buf[start:end]
    data = bytearray(dumped)
    for offset, flag in _headers(buf, start, start + length):
        head = dumped[offset:offset + 4]
        if any(dumped[offset + k::size] != head[k:k + 1] * count for k in range(4)):
            return None  # another layout among them
        if flag:
            data[offset + _HIGH::size] = bytes((head[_HIGH] | flag >> 8,)) * count
    return [bytes(data[at:at + size]) for at in range(0, len(data), size)]


class IPSetNetlink:
    """One nfnetlink socket in the current network namespace."""

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except PermissionError:
            raise PermissionDenied("cannot open a netfilter netlink socket") from None
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> IPSetNetlink:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _send(self, command: int, attrs: bytes, flags: int, family: int = socket.AF_INET) -> int:
        self._seq += 1
        body = _NFGENMSG.pack(family, 0, 0) + _u8(ATTR_PROTOCOL, IPSET_PROTOCOL) + attrs
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), NFNL_SUBSYS_IPSET << 8 | command,
                                flags | NLM_F_REQUEST, self._seq, 0)
        self._sock.send(header + body)
        return self._seq

    def _replies(self, seq: int, request: Request) -> Iterator[tuple[bytes, int, int]]:
        """Yield (buffer, attrs start, end) of every reply message until DONE or the ACK."""
        while True:
            buf = self._sock.recv(RECV_BUFFER)
            offset = 0
            while offset + _NLMSGHDR.size <= len(buf):
                length, kind, _flags, msg_seq, _ = _NLMSGHDR.unpack_from(buf, offset)
                if length < _NLMSGHDR.size:
                    return
                if msg_seq != seq:
                    offset += (length + 3) & ~3
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", buf, offset + _NLMSGHDR.size)[0]
                    if code == 0:
                        return
                    _raise_for(code, request, _error_lineno(buf, offset, length))
                yield buf, offset + _NLMSGHDR.size + _NFGENMSG.size, offset + length
                offset += (length + 3) & ~3

    def _do(self, command: int, attrs: bytes, request: Request, exist: bool = True) -> None:
        seq = self._send(command, attrs, NLM_F_ACK | (0 if exist else NLM_F_EXCL))
        for _ in self._replies(seq, request):
            pass

    # -- reads -------------------------------------------------------------------------------

    def list_sets(self, name: str | None = None, header_only: bool = False) -> list[IPSet]:
        """Every set (or one) with all its members, however many messages the dump takes."""
        attrs = _str(ATTR_SETNAME, name) if name else b""
        if header_only:
            attrs += _be32(ATTR_FLAGS, FLAG_LIST_HEADER)
        seq = self._send(CMD_LIST, attrs, NLM_F_DUMP)
        headers: dict[str, IPSet] = {}
        members: dict[str, list[IPSetEntry]] = {}
        for buf, start, end in self._replies(seq, Request(CMD_LIST, name or "")):
            top = _attrs(buf, start, end)
            set_name = _get_str(buf, top[ATTR_SETNAME])
            if ATTR_DATA in top:
                headers[set_name] = _decode_header(buf, top, _attrs(buf, *top[ATTR_DATA]))
                members.setdefault(set_name, [])
            if ATTR_ADT in top and set_name in headers:
                header, bucket = headers[set_name], members[set_name]
                for kind, a, b in _iter_attrs(buf, *top[ATTR_ADT]):
                    if kind == ATTR_DATA:
                        bucket.append(_decode_entry(buf, a, b, header))
        if header_only:
            return list(headers.values())
        return [replace(h, members=tuple(members[n])) for n, h in headers.items()]

    def member_data(self, name: str) -> list[bytes]:
        """Each member of set ``name`` as an add request carries it (no lineno): what copying a
        set sends (readd_members)."""
        seq = self._send(CMD_LIST, _str(ATTR_SETNAME, name), NLM_F_DUMP)
        items: list[bytes] = []
        for buf, start, end in self._replies(seq, Request(CMD_LIST, name)):
            top = _attrs(buf, start, end)
            if ATTR_ADT in top:
                items.extend(readd_members(buf, *top[ATTR_ADT]))
        return items

    def names(self) -> list[str]:
        seq = self._send(CMD_LIST, _be32(ATTR_FLAGS, FLAG_LIST_SETNAME), NLM_F_DUMP)
        found: list[str] = []
        for buf, start, end in self._replies(seq, Request(CMD_LIST)):
            name = _get_str(buf, _attrs(buf, start, end)[ATTR_SETNAME])
            if name not in found:
                found.append(name)
        return found

    def header(self, name: str) -> IPSet:
        sets = self.list_sets(name, header_only=True)
        if not sets:
            raise NotFound(f"set {name!r} does not exist")
        return sets[0]

    def type_revisions(self, set_type: str, family: str | None) -> tuple[int, int]:
        """(min, max) revision the kernel has for ``set_type``; KernelFeatureMissing if none."""
        attrs = _str(ATTR_TYPENAME, set_type) + _u8(ATTR_FAMILY, NFPROTO.get(family, 0))
        seq = self._send(CMD_TYPE, attrs, NLM_F_ACK)
        revision = minimum = 0
        for buf, start, end in self._replies(seq, Request(CMD_TYPE, set_type=set_type)):
            top = _attrs(buf, start, end)
            revision = _get_uint(buf, top[ATTR_REVISION]) if ATTR_REVISION in top else revision
            minimum = _get_uint(buf, top[ATTR_REVISION_MIN]) if ATTR_REVISION_MIN in top else minimum
        return minimum, revision

    # -- writes ------------------------------------------------------------------------------

    def create(self, ipset: IPSet, exist: bool = False) -> None:
        _, revision = self.type_revisions(ipset.type, ipset.family)
        attrs = (_str(ATTR_SETNAME, ipset.name) + _str(ATTR_TYPENAME, ipset.type) + _u8(ATTR_REVISION, revision)
                 + _u8(ATTR_FAMILY, NFPROTO.get(ipset.family, 0)) + _nest(ATTR_DATA, [create_attrs(ipset)]))
        self._do(CMD_CREATE, attrs, Request(CMD_CREATE, ipset.name, set_type=ipset.type), exist)

    def add(self, ipset: IPSet, entry: IPSetEntry, exist: bool = False) -> None:
        self._adt(CMD_ADD, ipset, entry, exist)

    def delete(self, ipset: IPSet, entry: IPSetEntry, exist: bool = False) -> None:
        self._adt(CMD_DEL, ipset, entry, exist)

    def test(self, ipset: IPSet, entry: IPSetEntry) -> bool:
        try:
            self._adt(CMD_TEST, ipset, entry, False)
        except NegativeAnswer:
            return False
        return True

    def _adt(self, command: int, ipset: IPSet, entry: IPSetEntry, exist: bool) -> None:
        attrs = _str(ATTR_SETNAME, ipset.name) + _nest(ATTR_DATA, [entry_attrs(ipset, entry)])
        self._do(command, attrs, Request(command, ipset.name, element=entry.raw, set_type=ipset.type), exist)

    def add_many(self, ipset: IPSet, entries: Sequence[IPSetEntry], exist: bool = False,
                 command: int = CMD_ADD, linenos: Sequence[int] | None = None) -> None:
        """Add (or delete) many entries, batched into few messages (one ADT nest each)."""
        items: list[bytes] = []
        elements: dict[int, str] = {}
        for index, entry in enumerate(entries):
            lineno = linenos[index] if linenos else index + 1
            items.append(entry_data(ipset, entry, lineno))
            elements.setdefault(lineno, entry.raw)
        self.add_packed(ipset, items, exist, command, elements.get)

    def add_packed(self, ipset: IPSet, items: Sequence[bytes], exist: bool = False, command: int = CMD_ADD,
                   element: Callable[[int], str | None] | None = None) -> None:
        """Send members' IPSET_ATTR_DATA nests, batched into few messages (one ADT nest each).

        A kernel refusal names the element ``element(lineno)`` gives for the line it reports."""
        batch: list[bytes] = []
        size = 0
        last = len(items) - 1
        for index, data in enumerate(items):
            batch.append(data)
            size += len(data)
            if size >= BATCH_BYTES or index == last:
                attrs = _str(ATTR_SETNAME, ipset.name) + _be32(ATTR_LINENO, 0) + _nest(ATTR_ADT, batch)
                try:
                    self._do(command, attrs, Request(command, ipset.name, set_type=ipset.type), exist)
                except KpctlError as exc:
                    bad = getattr(exc, "lineno", 0)
                    if not bad:
                        raise
                    culprit = element(bad) if element is not None else None
                    if culprit is not None:
                        exc.message = exc.message.replace("an element", f"element {culprit!r}")
                        exc.args = (exc.message,)
                    raise
                batch, size = [], 0

    def flush(self, name: str | None = None) -> None:
        self._do(CMD_FLUSH, _str(ATTR_SETNAME, name) if name else b"", Request(CMD_FLUSH, name or ""), exist=False)

    def destroy(self, name: str | None = None) -> None:
        self._do(CMD_DESTROY, _str(ATTR_SETNAME, name) if name else b"", Request(CMD_DESTROY, name or ""), exist=False)

    def rename(self, old: str, new: str) -> None:
        self._do(CMD_RENAME, _str(ATTR_SETNAME, old) + _str(ATTR_SETNAME2, new), Request(CMD_RENAME, old, new), exist=False)

    def swap(self, first: str, second: str) -> None:
        self._do(CMD_SWAP, _str(ATTR_SETNAME, first) + _str(ATTR_SETNAME2, second), Request(CMD_SWAP, first, second), exist=False)


def _error_lineno(buf: bytes, offset: int, length: int) -> int:
    """The IPSET_ATTR_LINENO the kernel wrote into the echoed request of an error (batched adds)."""
    inner = offset + _NLMSGHDR.size + 4  # past the error code: the original request follows
    if inner + _NLMSGHDR.size + _NFGENMSG.size > offset + length:
        return 0
    start = inner + _NLMSGHDR.size + _NFGENMSG.size
    top = _attrs(buf, start, offset + length)
    if ATTR_LINENO in top:
        return _get_uint(buf, top[ATTR_LINENO])
    return 0


def _raise_for(code: int, request: Request, lineno: int = 0) -> None:
    name, command = request.name, request.command
    what = f"{request.element!r}" if request.element else "an element"
    error: KpctlError
    if code in (errno.EPERM, errno.EACCES):
        raise PermissionDenied(f"ipset: {os.strerror(code).lower()}")
    if code == errno.ENOENT:
        error = NotFound(f"set {name!r} does not exist" if name else "no such set")
    elif code == errno.EEXIST:
        error = AlreadyExists(f"set {name!r} already exists", "use --exist to accept an identical set")
    elif code == ERR_FIND_TYPE:
        error = KernelFeatureMissing(f"set type {request.set_type!r} is not supported by this kernel")
    elif code == ERR_EXIST_SETNAME2:
        if command == CMD_RENAME:
            error = AlreadyExists(f"set {request.name2!r} already exists")
        else:
            error = NotFound(f"set {request.name2!r} does not exist")
    elif code == ERR_EXIST:
        if command == CMD_TEST:
            error = NegativeAnswer(f"{what} is NOT in set {name!r}")
        elif command == CMD_DEL:
            error = NotFound(f"{what} is not in set {name!r}", "use --exist to ignore")
        else:
            error = AlreadyExists(f"{what} is already in set {name!r}", "use --exist to ignore")
    elif code == ERR_BUSY:
        error = KernelError(f"set {name!r} is in use by a kernel component (an iptables rule?)")
    elif code == ERR_REFERENCED:
        error = KernelError(f"set {name!r} is referenced by another set or rule")
    elif code == ERR_TYPE_MISMATCH:
        error = InvalidInput(f"sets {name!r} and {request.name2!r} cannot be swapped: their type or family differ")
    elif code in _MESSAGES:
        error = InvalidInput(f"set {name!r}: {_MESSAGES[code]}") if code != ERR_MAX_SETS else KernelError(_MESSAGES[code])
        if code == ERR_PROTOCOL:
            error = KernelFeatureMissing(f"set {name!r}: {_MESSAGES[code]}")
    elif code >= ERR_TYPE_SPECIFIC:
        error = _type_specific(code, request, what)
    else:
        error = KernelError(f"ipset: set {name!r}: {os.strerror(code) if code < 4096 else f'error {code}'}")
    if lineno:
        error.lineno = lineno  # type: ignore[attr-defined]
    raise error


def _type_specific(code: int, request: Request, what: str) -> KpctlError:
    offset, name, kind = code - ERR_TYPE_SPECIFIC, request.name, request.set_type
    if kind.startswith("hash:"):
        messages = ["set is full (maxelem reached)", f"{what} is invalid for this set",
                    "invalid protocol", "protocol missing", "ranges are not supported", "invalid range"]
        text = messages[offset] if offset < len(messages) else f"error {code}"
        return KernelError(f"set {name!r}: {text}") if offset == 0 else InvalidInput(f"set {name!r}: {text}")
    if kind.startswith("bitmap:"):
        text = f"{what} is outside the set's range" if offset == 0 else "range too large"
        return InvalidInput(f"set {name!r}: {text}")
    if kind == "list:set" or not kind:
        if offset == 0:
            return NotFound(f"set {name!r}: the member set of {what} does not exist")
        messages = ["", "a list:set cannot contain itself or another list:set", "reference set missing",
                    "reference set is not in the list", "list is full", "the member is already referenced"]
        text = messages[offset] if offset < len(messages) else f"error {code}"
        return KernelError(f"set {name!r}: {text}") if offset == 4 else InvalidInput(f"set {name!r}: {text}")
    return KernelError(f"set {name!r}: ipset error {code}")
