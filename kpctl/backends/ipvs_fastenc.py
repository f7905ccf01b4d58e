"""Fast encoding of IPVS requests for bulk writes (restore): struct packing, not pyroute2's objects.

pyroute2's message classes cost about 100 us per request, more than the kernel's work for one
real server; a 50,000-operation restore spent most of its time there.  This encoder reads the
attribute numbers and formats from the same message classes (``ipvs_messages``) once and packs
the attribute lists of :mod:`ipvs_codec` directly; its output is byte-identical to
``ipvs_codec.encode`` (unit-tested).  Anything it does not know (daemons, address types) goes
through ``ipvs_codec.encode`` unchanged.

:class:`BulkEncoder` packs the compact adds of :mod:`kpctl.core.ipvs_bulk` (what ``ipvsadm -S``
writes) from the uapi enums alone: a restore of such lines never imports pyroute2, whose
import alone costs seconds in an emulated VM.  The message classes are read on the first
``encode`` call.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from kpctl.backends import ipvs_codec as codec
from kpctl.backends.ipvs_messages import (
    FAMILY_CODES, GENL_VERSION, PROTOCOL_CODES, Cmd, CmdAttr, DestAttr, SvcAttr,
)
from kpctl.core.ipvs_bulk import BulkAddServer, BulkAddService
from kpctl.model.ipvs import FORWARD_CODES

_NLMSGHDR = struct.Struct("=IHHII")
_GENL = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_SCALARS = {"uint8": struct.Struct("=B"), "uint16": struct.Struct("=H"), "uint32": struct.Struct("=I"),
            "be16": struct.Struct(">H")}
_FLAGS = struct.Struct("=II")


class Unsupported(Exception):
    """An attribute this encoder does not handle: use ipvs_codec.encode."""


def _table(cls: Any) -> dict[str, tuple[int, str, Any]]:
    out: dict[str, tuple[int, str, Any]] = {}
    for code, name, fmt in cls.nla_map:
        out[name] = (code, fmt, getattr(cls, fmt, None))
    return out


_Table = dict[str, tuple[int, str, Any]]
_TABLES: list[tuple[_Table, dict[str, _Table]]] = []  # (top level, nests by format), made on first use


def _tables() -> tuple[_Table, dict[str, _Table]]:
    if not _TABLES:
        from kpctl.backends.ipvs_messages import ipvs_msg  # pyroute2's classes: only for this path

        top = _table(ipvs_msg)
        nested = {fmt: _table(sub) for _code, fmt, sub in top.values() if sub is not None and hasattr(sub, "nla_map")}
        _TABLES.append((top, nested))
    return _TABLES[0]


def _attr(code: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return _NLA.pack(length, code) + payload + b"\0" * (-length % 4)


def _pack(table: dict[str, tuple[int, str, Any]], attrs: list[tuple[str, Any]]) -> bytes:
    parts = []
    for name, value in attrs:
        code, fmt, _sub = table[name]
        scalar = _SCALARS.get(fmt)
        if scalar is not None:
            parts.append(_attr(code, scalar.pack(value)))
        elif fmt == "cdata":
            parts.append(_attr(code, bytes(value)))
        elif fmt == "asciiz":
            parts.append(_attr(code, value.encode() + b"\0"))
        elif fmt == "ipvs_flags":
            parts.append(_attr(code, _FLAGS.pack(value["flags"], value["mask"])))
        elif fmt in _tables()[1]:
            parts.append(_attr(code, _pack(_tables()[1][fmt], value["attrs"])))  # no NLA_F_NESTED, as pyroute2
        else:
            raise Unsupported(fmt)
    return b"".join(parts)


def encode(cmd: int, attrs: list[tuple[str, Any]], family_id: int, flags: int, seq: int) -> bytes:
    """The request ``ipvs_codec.encode(ipvs_codec.new_request(cmd, attrs), …)`` sends, packed directly."""
    try:
        body = _GENL.pack(int(cmd), GENL_VERSION, 0) + _pack(_tables()[0], attrs)
    except (Unsupported, KeyError, TypeError):
        return codec.encode(codec.new_request(cmd, attrs), family_id, flags, seq)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), family_id, flags, seq, 0) + body


# --- the compact adds of kpctl.core.ipvs_bulk: whole requests from one Struct each -------------
# Layouts as ``encode`` writes them for codec.service_attrs / codec.dest_attrs of an IPv4
# service (no PE name) and a masq/route server: attribute headers (length, type), payloads
# padded to 4 bytes, nests without NLA_F_NESTED.  Unit-tested against ``encode``.
_HEAD = struct.Struct("=IHHIIBBH")  # nlmsghdr, genlmsghdr
_SVC_KEY_V4 = struct.Struct("=HH" "HHH2x" "HHH2x" "HH4s12x" "HH2s2x")  # SERVICE nest: AF, PROTOCOL, ADDR, PORT
_SVC_TAIL = struct.Struct("=HHII" "HHI" "HHI")  # FLAGS (flags, mask), TIMEOUT, NETMASK
_ADD_DEST_V4 = struct.Struct(_HEAD.format + f"{_SVC_KEY_V4.size}s" "HH" "HH4s12x" "HH2s2x" "HHH2x" "HHI" "HHI" "HHI" "HHI")
_BE16 = struct.Struct(">H")
_PROTOCOL_CODES = {name: PROTOCOL_CODES[name] for name in ("tcp", "udp")}
_FORWARD_CODES = {name: FORWARD_CODES[name] for name in ("masq", "route")}
_ALL_BITS = 0xFFFFFFFF
_AF_INET = int(FAMILY_CODES["inet"])
_DEST_NEST_SIZE = _ADD_DEST_V4.size - _HEAD.size - _SVC_KEY_V4.size


class BulkEncoder:
    """Packs the requests of BulkAddService/BulkAddServer; each service's key nest is packed once."""

    def __init__(self, family_id: int, flags: int) -> None:
        self.family_id, self.flags = family_id, flags
        self._keys: dict[Any, bytes] = {}
        self._last: tuple[Any, bytes] = (None, b"")
        self.packers: dict[type, Callable[[Any, int], bytes]] = {
            BulkAddService: self.add_service, BulkAddServer: self.add_server}

    def _service_nest(self, key: Any, packed: bytes) -> bytes:
        if key is self._last[0]:  # the servers of a service follow it, with the very same key object
            return self._last[1]
        nest = self._keys.get(key)
        if nest is None:
            nest = _SVC_KEY_V4.pack(_SVC_KEY_V4.size, CmdAttr.SERVICE, 6, SvcAttr.AF, _AF_INET,
                                    6, SvcAttr.PROTOCOL, _PROTOCOL_CODES[key.protocol], 20, SvcAttr.ADDR, packed,
                                    6, SvcAttr.PORT, _BE16.pack(key.port))
            self._keys[key] = nest
        self._last = (key, nest)
        return nest

    def add_service(self, op: Any, seq: int) -> bytes:
        sched = _attr(SvcAttr.SCHED_NAME, op.scheduler.encode() + b"\0")
        tail = _SVC_TAIL.pack(12, SvcAttr.FLAGS, op.flags, _ALL_BITS, 8, SvcAttr.TIMEOUT, op.timeout,
                              8, SvcAttr.NETMASK, _ALL_BITS)  # the IPv4 netmask 255.255.255.255
        nest = self._service_nest(op.key, op.packed)
        body = _NLA.pack(len(nest) + len(sched) + len(tail), CmdAttr.SERVICE) + nest[4:] + sched + tail
        return _HEAD.pack(_HEAD.size + len(body), self.family_id, self.flags, seq, 0,
                          Cmd.NEW_SERVICE, GENL_VERSION, 0) + body

    def add_server(self, op: Any, seq: int) -> bytes:
        return _ADD_DEST_V4.pack(
            _ADD_DEST_V4.size, self.family_id, self.flags, seq, 0, Cmd.NEW_DEST, GENL_VERSION, 0,
            self._service_nest(op.key, op.service_packed),
            _DEST_NEST_SIZE, CmdAttr.DEST, 20, DestAttr.ADDR, op.packed, 6, DestAttr.PORT, _BE16.pack(op.port),
            6, DestAttr.ADDR_FAMILY, _AF_INET, 8, DestAttr.FWD_METHOD, _FORWARD_CODES[op.forward],
            8, DestAttr.WEIGHT, op.weight, 8, DestAttr.U_THRESH, 0, 8, DestAttr.L_THRESH, 0)
