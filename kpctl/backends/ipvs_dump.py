"""Read the whole IPVS table into model objects: the list path of the live backend.

Like ``ipvsadm -Ln``: one GET_SERVICE dump, then one GET_DEST dump per service.  The kernel
writes the replies of a dump alike: the same attributes, in the same order, of the same sizes
(services differ only where a name's length or a fwmark does).  So the layout of a reply is
learnt once (:class:`Layout`: one ``struct`` reading every attribute header, one reading the
values) and every further message is checked against it (all its headers equal) and read
with two calls; a message with another layout is decoded by walking its attributes
(:func:`read_service`, :func:`read_server`, which give the same objects) and its layout learnt in turn.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any

from kpctl.backends import genl
from kpctl.backends.genl import (
    NLM_F_DUMP, NLM_F_REQUEST, Attrs, GenlSocket, NetlinkRefusal, attr_uint,
    parse_attrs,
)
from kpctl.backends.ipvs_messages import (
    FAMILY_NAMES,
    GENL_VERSION,
    PROTOCOL_NAMES,
    STATS_FIELDS,
    Cmd,
    CmdAttr,
    DestAttr,
    SvcAttr,
    decode_netmask,
)
from kpctl.core.address import unpack_address
from kpctl.model.ipvs import FORWARD_NAMES, TUN_TYPE_NAMES, RealServer, Stats, VirtualService

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
_NO_STATS = Stats()  # (equal to the tuple of ten zeros the counters of a quiet server read as)
_STATS_ORDER = tuple(STATS_FIELDS)  # the IPVS_STATS_ATTR_* of each counter, in Stats' field order
_BE16_OF_HOST = socket.ntohs  # a be16 attribute read as a host-order u16 -> its value
_UINT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_NLMSG_LENGTH = struct.Struct("=I")
_DONE = struct.Struct("=IH2xI4xi")  # length, type, seq, errno of an NLMSG_DONE
_REQUEST = genl.REQUEST_HEAD
_DEST_REQUEST = struct.Struct(_REQUEST.format + "HH")  # ... of GET_DEST, and the header of its SERVICE attribute
_DONE_SIZE = _DONE.size
_MAX_LAYOUTS = 16

# How Layout reads an attribute: "uint" as attr_uint (1/2/4/8 bytes, else absent), "be16" its
# first two bytes (in host order: convert with _BE16_OF_HOST), "addr" its first 16 bytes, "u32" its
# first four, "bytes" all of it.
Wanted = Sequence[tuple[int, str, Any]]  # (attribute type, how, value when absent)

# GET_DEST replies: what a RealServer needs, in the order Linux writes them (so reading needs no reordering).
_DEST_WANTED: Wanted = (
    (DestAttr.ADDR, "addr", bytes(16)), (DestAttr.PORT, "be16", 0), (DestAttr.FWD_METHOD, "uint", 0),
    (DestAttr.WEIGHT, "uint", 0), (DestAttr.TUN_TYPE, "uint", 0), (DestAttr.TUN_PORT, "be16", 0),
    (DestAttr.TUN_FLAGS, "uint", 0), (DestAttr.U_THRESH, "uint", 0), (DestAttr.L_THRESH, "uint", 0),
    (DestAttr.ACTIVE_CONNS, "uint", 0), (DestAttr.INACT_CONNS, "uint", 0), (DestAttr.PERSIST_CONNS, "uint", 0),
    (DestAttr.ADDR_FAMILY, "uint", None),  # None: the service's family
)
_DEST_STATS = (DestAttr.STATS64, DestAttr.STATS)
_SVC_WANTED: Wanted = (
    (SvcAttr.AF, "uint", 0), (SvcAttr.PROTOCOL, "uint", 0), (SvcAttr.ADDR, "addr", bytes(16)),
    (SvcAttr.PORT, "be16", 0), (SvcAttr.FWMARK, "uint", 0), (SvcAttr.SCHED_NAME, "bytes", b""),
    (SvcAttr.FLAGS, "u32", 0), (SvcAttr.TIMEOUT, "uint", 0), (SvcAttr.NETMASK, "uint", 0),
    (SvcAttr.PE_NAME, "bytes", b""),
)
_SVC_STATS = (SvcAttr.STATS64, SvcAttr.STATS)
_SVC_KEY = (SvcAttr.AF, SvcAttr.PROTOCOL, SvcAttr.ADDR, SvcAttr.PORT)  # what GET_DEST is sent back
_FWMARK_KEY = (SvcAttr.AF, SvcAttr.FWMARK)  # ... for a firewall-mark service


def _align(length: int) -> int:
    return (length + 3) & ~3


def _walk(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(place, length, type) of each attribute in buf[start:end], as parse_attrs walks them."""
    while start + 4 <= end:
        length, kind = genl.NLAHDR.unpack_from(buf, start)
        if length < 4:
            return
        yield start, length, kind & genl.NLA_TYPE_MASK
        start += _align(length)


def _stats(buf: Any, attrs: Attrs, stats64: int, stats32: int) -> tuple[int, ...]:
    """STATS64 when the kernel sent it, else the 32-bit STATS nest; counters in Stats' order."""
    span = attrs.get(stats64) or attrs.get(stats32)
    if span is None:
        return _NO_STATS
    values: dict[int, int] = {}
    for place, length, kind in _walk(buf, *span):
        if kind in STATS_FIELDS:
            width = genl.U64 if length - 4 == 8 else genl.U32
            values[kind] = int(width.unpack_from(buf, place + 4)[0])
    return tuple(values.get(kind, 0) for kind in _STATS_ORDER)


def _nest(buf: Any, start: int, end: int, kind: int) -> Attrs:
    """The attributes nested in attribute ``kind`` of the genl message buf[start:end]."""
    span = parse_attrs(buf, start + genl.GENLMSGHDR.size, end).get(kind)
    return parse_attrs(buf, span[0], span[1]) if span else {}


class Layout:
    """How the replies of one shape are laid out; :meth:`learn` makes one from a first message.

    ``headers`` unpacks a message's netlink length, type and sequence number and every attribute
    header (length, type) in it: a message whose headers equal :meth:`expected` has this layout.
    :meth:`values` reads the wanted attributes (in the order asked, counters last); ``key``
    (start, end) is where the raw attributes ``key_kinds`` are, relative to the message.
    """

    def __init__(self, headers: struct.Struct, expected: tuple[int, ...], values: struct.Struct,
                 pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None, defaults: tuple[Any, ...],
                 key_kinds: Sequence[int] = (), key: tuple[int, int] = (0, 0)) -> None:
        self.headers, self.length, self.key_kinds, self.key = headers, expected[0], tuple(key_kinds), key
        self._head, self._tail = expected[:2], expected[3:]
        self._values, self._pick, self._defaults = values.unpack_from, pick, defaults
        # values(), as one call when the attributes come in the order asked and none is missing
        self.read: Callable[[Any, int], tuple[Any, ...]] = values.unpack_from if pick is None else self.values

    def expected(self, seq: int) -> tuple[int, ...]:
        """What ``headers`` unpacks from a message of this layout answering request ``seq``."""
        return self._head + (seq,) + self._tail

    def values(self, buf: Any, offset: int) -> tuple[Any, ...]:
        if self._pick is None:
            return self._values(buf, offset)  # type: ignore[no-any-return]
        return self._pick(self._values(buf, offset) + self._defaults)

    @classmethod
    def learn(cls, buf: Any, offset: int, nest_kind: int, wanted: Wanted, stats_kinds: tuple[int, int],
              key_kinds: Sequence[int] = ()) -> Layout | None:
        """The layout of the message at ``offset``; None when it cannot be read this way."""
        length = genl.NLMSGHDR.unpack_from(buf, offset)[0]
        end = offset + length
        headers: list[tuple[int, str]] = [(offset, "I"), (offset + 4, "H"), (offset + 8, "I")]  # length, type, seq
        nest = None
        for place, size, kind in _walk(buf, offset + genl.NLMSGHDR.size + genl.GENLMSGHDR.size, end):
            headers.append((place, "HH"))
            if kind == nest_kind:
                nest = (place + 4, place + size)
        if nest is None:
            return None
        how = {kind: mode for kind, mode, _default in wanted}
        found: dict[int, tuple[int, str]] = {}  # attribute type -> (place of what is read, code); last wins
        places: dict[int, tuple[int, int]] = {}
        spans: dict[int, tuple[int, int]] = {}
        for place, size, kind in _walk(buf, *nest):
            headers.append((place, "HH"))
            places[kind] = (place, place + _align(size))
            payload, mode = size - 4, how.get(kind)
            if kind in stats_kinds:
                spans[kind] = (place + 4, place + size)
            elif mode == "uint":
                if payload in _UINT_CODES:
                    found[kind] = (place + 4, _UINT_CODES[payload])
                else:
                    found.pop(kind, None)  # attr_uint reads it as absent
            elif mode is not None:
                need = {"be16": 2, "addr": 16, "u32": 4, "bytes": 0}[mode]
                if payload < need:
                    return None
                found[kind] = (place + 4, {"be16": "H", "addr": "16s", "u32": "I"}.get(mode, f"{payload}s"))
        counters: dict[int, tuple[int, str]] = {}
        span = spans.get(stats_kinds[0]) or spans.get(stats_kinds[1])
        for place, size, kind in _walk(buf, *span) if span else ():
            headers.append((place, "HH"))
            if kind in STATS_FIELDS:
                if size - 4 not in (4, 8):
                    return None
                counters[kind] = (place + 4, "Q" if size == 12 else "I")
        key = (0, 0)
        if key_kinds:
            if any(kind not in places for kind in key_kinds) or any(
                    places[a][1] != places[b][0] for a, b in zip(key_kinds, key_kinds[1:])):
                return None  # the key is sent back as found: only a contiguous run is read in one slice
            key = (places[key_kinds[0]][0] - offset, places[key_kinds[-1]][1] - offset)
        order = [("attr", kind) for kind, _mode, _default in wanted] + [("stats", kind) for kind in _STATS_ORDER]
        spots = {("attr", kind): spot for kind, spot in found.items() if kind in how}
        spots.update({("stats", kind): spot for kind, spot in counters.items()})
        read = sorted(spots, key=spots.__getitem__)
        try:
            header_struct = _struct(headers, offset)
            value_struct = _struct([spots[what] for what in read], offset)
        except ValueError:
            return None  # overlapping attributes: malformed
        if header_struct.size > length or value_struct.size > length or length % 4:
            return None
        defaults = {("attr", kind): default for kind, _mode, default in wanted}
        missing = [what for what in order if what not in spots]
        at = {what: i for i, what in enumerate(read + missing)}
        indexes = [at[what] for what in order]
        pick = None if indexes == list(range(len(order))) else itemgetter(*indexes)
        return cls(header_struct, header_struct.unpack_from(buf, offset), value_struct, pick,
                   tuple(defaults.get(what, 0) for what in missing), key_kinds, key)


def _struct(fields: list[tuple[int, str]], offset: int) -> struct.Struct:
    """A native-order struct reading ``fields`` ((place, code)) of the message at ``offset``, skipping the rest."""
    parts, position = ["="], offset
    for place, code in sorted(fields):
        if place < position:
            raise ValueError("overlapping fields")
        if place > position:
            parts.append(f"{place - position}x")
        parts.append(code)
        position = place + struct.calcsize("=" + code)
    return struct.Struct("".join(parts))


# -- model objects --------------------------------------------------------------------------
def _counters(values: tuple[int, ...]) -> Stats:
    """The Stats of ten counters read in Stats' order (the shared zero Stats for a quiet one)."""
    return _NO_STATS if values == _NO_STATS else Stats._make(values)


def _server(v: tuple[Any, ...], service_af: int) -> RealServer:
    """The RealServer of the values of _DEST_WANTED (ports as read: host order), counters after them."""
    (raw, port, forward, weight, tun_type, tun_port, tun_flags, upper, lower, active, inactive, persist, af) = v[:13]
    if af is None:
        af = service_af
    # AF_INET6, else AF_INET or a family the kernel does not have (read as IPv4)
    address, family = unpack_address(raw[:16] if af == AF_INET6 else raw[:4])
    return RealServer(address, _BE16_OF_HOST(port), family, FORWARD_NAMES.get(forward & 0x7, "masq"), weight, upper,
                      lower, active, inactive, persist, TUN_TYPE_NAMES.get(tun_type, "ipip"), _BE16_OF_HOST(tun_port),
                      tun_flags, _counters(v[13:]))


def _walked(buf: Any, attrs: Attrs, wanted: Wanted, stats_kinds: tuple[int, int]) -> tuple[Any, ...]:
    """What Layout.values reads, by walking: ``wanted`` as attr_uint & co. read them, then the counters."""
    values: list[Any] = []
    for kind, mode, default in wanted:
        span = attrs.get(kind)
        if span is None:
            values.append(default)
        elif mode == "uint":
            values.append(attr_uint(buf, attrs, kind, default))
        elif mode == "be16":
            values.append(int(genl.U16.unpack_from(buf, span[0])[0]))
        elif mode == "u32":  # a shorter attribute raises struct.error
            values.append(int(genl.U32.unpack_from(bytes(buf[span[0]:span[1]]), 0)[0]))
        else:  # "addr" (sliced per family by the caller) and "bytes"
            values.append(bytes(buf[span[0]:span[1]]))
    return (*values, *_stats(buf, attrs, *stats_kinds))


def read_server(buf: Any, start: int, end: int, service_af: int) -> RealServer:
    """The RealServer of the GET_DEST reply buf[start:end] (from its genl header on), walking its attributes."""
    return _server(_walked(buf, _nest(buf, start, end, CmdAttr.DEST), _DEST_WANTED, _DEST_STATS), service_af)


def _service(v: tuple[Any, ...], raw_key: bytes) -> tuple[VirtualService, bytes]:
    """A VirtualService (no servers yet) from the values of _SVC_WANTED and counters, and the key to send back."""
    af, protocol, raw, port, fwmark, sched, flags, timeout, netmask, pe_name = v[:10]
    if fwmark:
        protocol, address, port = None, None, 0
    else:
        protocol = PROTOCOL_NAMES.get(protocol, "tcp")
        address = unpack_address(raw[:16] if af == AF_INET6 else raw[:4])[0]
        port = _BE16_OF_HOST(port)
    return VirtualService(FAMILY_NAMES.get(af, "inet"), protocol, address, port, fwmark, _text(sched), flags, timeout,
                          decode_netmask(af, netmask), _text(pe_name), (), _counters(v[10:])), raw_key


def _text(raw: bytes) -> str:
    """attr_str of an attribute's bytes."""
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def read_service(payload: Any, start: int = 0, end: int | None = None) -> tuple[VirtualService, bytes]:
    """A GET_SERVICE reply (from its genl header on) as a VirtualService (servers empty), and its
    identifying attributes, raw, for GET_DEST."""
    attrs = _nest(payload, start, len(payload) if end is None else end, CmdAttr.SERVICE)
    kinds = _FWMARK_KEY if attr_uint(payload, attrs, SvcAttr.FWMARK) else _SVC_KEY
    raw_key = b"".join(genl.raw_attr(payload, attrs, kind) for kind in kinds)
    return _service(_walked(payload, attrs, _SVC_WANTED, _SVC_STATS), raw_key)


def dest_dump_body(service_key_raw: bytes) -> bytes:
    """GET_DEST dump body from the identifying attributes copied out of a service reply."""
    return genl.GENLMSGHDR.pack(Cmd.GET_DEST, GENL_VERSION, 0) + genl.pack_attr(CmdAttr.SERVICE, service_key_raw)


# -- dumps --------------------------------------------------------------------------------------
class DumpReader:
    """IPVS dumps on a GenlSocket of the IPVS family: services, and each service's real servers."""

    def __init__(self, sock: GenlSocket, family_id: int) -> None:
        self._genl, self._family_id = sock, family_id
        # message length -> its layout (None: walk such messages); 0 -> the layout of the last one
        self._dest_layouts: dict[int, Layout | None] = {}
        self._service_layouts: dict[int, Layout | None] = {}

    def services(self) -> list[tuple[VirtualService, bytes]]:
        """Every service (servers empty) with its raw key, in the kernel's order."""
        found: list[tuple[VirtualService, bytes]] = []
        gen = self._genl
        seq, sock, buf, layouts = gen.next_seq(), gen.connected(), gen.buffer, self._service_layouts
        sock.send(_REQUEST.pack(_REQUEST.size, self._family_id, NLM_F_REQUEST | NLM_F_DUMP, seq, 0,
                                Cmd.GET_SERVICE, GENL_VERSION, 0))
        layout = layouts.get(0)
        while True:
            size = sock.recv_into(buf)
            offset = 0
            while offset + genl.NLMSGHDR.size <= size:
                if layout is None or offset + layout.length > size \
                        or layout.headers.unpack_from(buf, offset) != layout.expected(seq):
                    length, layout = self._message(buf, offset, size, seq, layouts, self._learn_service)
                    if length == 0:
                        return found
                    if layout is None:
                        if length > 0:
                            found.append(read_service(buf, offset + genl.NLMSGHDR.size, offset + length))
                        offset += _align(abs(length))
                        continue
                v = layout.read(buf, offset)
                if (layout.key_kinds == _FWMARK_KEY) == bool(v[4]):  # the key read_service would send back
                    found.append(_service(v, bytes(buf[offset + layout.key[0]:offset + layout.key[1]])))
                else:
                    found.append(read_service(buf, offset + genl.NLMSGHDR.size, offset + layout.length))
                offset += layout.length

    def servers(self, raw_key: bytes, service_af: int) -> list[RealServer]:
        """The real servers of the service ``raw_key`` identifies (the hot loop of a big listing)."""
        found_servers: list[RealServer] = []
        gen = self._genl
        seq, sock, buf, layouts = gen.next_seq(), gen.connected(), gen.buffer, self._dest_layouts
        pad = b"\0" * (-len(raw_key) % 4)  # none: the key is whole attributes
        sock.send(_DEST_REQUEST.pack(_DEST_REQUEST.size + len(raw_key) + len(pad), self._family_id,
                                     NLM_F_REQUEST | NLM_F_DUMP, seq, 0, Cmd.GET_DEST, GENL_VERSION, 0,
                                     4 + len(raw_key), CmdAttr.SERVICE) + raw_key + pad)
        layout = layouts.get(0)
        if layout is not None:
            expected, headers, values, length = layout.expected(seq), layout.headers.unpack_from, layout.read, layout.length
        while True:
            size = sock.recv_into(buf)
            offset = 0
            while offset + genl.NLMSGHDR.size <= size:
                if layout is not None and offset + length <= size and headers(buf, offset) == expected:
                    found_servers.append(_server(values(buf, offset), service_af))
                    offset += length
                    continue
                if size - offset == _DONE_SIZE and _DONE.unpack_from(buf, offset) == (_DONE_SIZE, genl.NLMSG_DONE, seq, 0):
                    return found_servers  # the usual end: a DONE of its own
                found, other = self._message(buf, offset, size, seq, layouts, self._learn_dest)
                if found == 0:
                    return found_servers
                if other is not None:
                    found_servers.append(_server(other.values(buf, offset), service_af))
                    layout = other
                    expected, headers, values, length = other.expected(seq), other.headers.unpack_from, other.read, other.length
                elif found > 0:
                    found_servers.append(read_server(buf, offset + genl.NLMSGHDR.size, offset + found, service_af))
                offset += _align(abs(found))

    @staticmethod
    def _learn_dest(buf: Any, offset: int) -> Layout | None:
        return Layout.learn(buf, offset, CmdAttr.DEST, _DEST_WANTED, _DEST_STATS)

    @staticmethod
    def _learn_service(buf: Any, offset: int) -> Layout | None:
        return Layout.learn(buf, offset, CmdAttr.SERVICE, _SVC_WANTED, _SVC_STATS, _SVC_KEY) or \
            Layout.learn(buf, offset, CmdAttr.SERVICE, _SVC_WANTED, _SVC_STATS, _FWMARK_KEY)

    @staticmethod
    def _message(buf: Any, offset: int, size: int, seq: int, layouts: dict[int, Layout | None],
                 learn: Callable[[Any, int], Layout | None]) -> tuple[int, Layout | None]:
        """What the message at ``offset`` is: (its length, its layout) for a reply to ``seq``, (-its length,
        None) for one to skip, (0, None) at the end of the dump.  A layout found is remembered as the
        current one (``layouts[0]``); NetlinkRefusal if the kernel refused the dump."""
        length, kind, _flags, msg_seq, _pid = genl.NLMSGHDR.unpack_from(buf, offset)
        if length < genl.NLMSGHDR.size or offset + length > size:
            return -(size - offset), None  # malformed: the rest of this datagram is skipped
        if msg_seq != seq:
            return -length, None
        if kind == genl.NLMSG_ERROR or kind == genl.NLMSG_DONE:
            code = -int(genl.I32.unpack_from(buf, offset + genl.NLMSGHDR.size)[0]) \
                if length - genl.NLMSGHDR.size >= 4 else 0
            if code:
                raise NetlinkRefusal(code)
            return 0, None
        if length not in layouts and len(layouts) <= _MAX_LAYOUTS:
            layouts[length] = learn(buf, offset)
        layout = layouts.get(length)
        if layout is not None and layout.headers.unpack_from(buf, offset) == layout.expected(seq):
            layouts[0] = layout
            return length, layout
        return length, None
