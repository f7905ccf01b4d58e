"""Fast encoding of IPVS requests for bulk writes (restore): struct packing, not pyroute2's objects.

pyroute2's message classes cost about 100 us per request, more than the kernel's work for one
real server; a 50,000-operation restore spent most of its time there.  This encoder reads the
attribute numbers and formats from the same message classes (``ipvs_messages``) once and packs
the attribute lists of :mod:`ipvs_codec` directly; its output is byte-identical to
``ipvs_codec.encode`` (unit-tested).  Anything it does not know (daemons, address types) goes
through ``ipvs_codec.encode`` unchanged.
"""

from __future__ import annotations

import struct
from typing import Any

from kpctl.backends import ipvs_codec as codec
from kpctl.backends.ipvs_messages import GENL_VERSION, ipvs_msg

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


_TOP = _table(ipvs_msg)
_NESTED: dict[str, dict[str, tuple[int, str, Any]]] = {
    fmt: _table(sub) for _code, fmt, sub in _TOP.values() if sub is not None and hasattr(sub, "nla_map")}


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
        elif fmt in _NESTED:
            parts.append(_attr(code, _pack(_NESTED[fmt], value["attrs"])))  # no NLA_F_NESTED, as pyroute2
        else:
            raise Unsupported(fmt)
    return b"".join(parts)


def encode(cmd: int, attrs: list[tuple[str, Any]], family_id: int, flags: int, seq: int) -> bytes:
    """The request ``ipvs_codec.encode(ipvs_codec.new_request(cmd, attrs), …)`` sends, packed directly."""
    try:
        body = _GENL.pack(int(cmd), GENL_VERSION, 0) + _pack(_TOP, attrs)
    except (Unsupported, KeyError, TypeError):
        return codec.encode(codec.new_request(cmd, attrs), family_id, flags, seq)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), family_id, flags, seq, 0) + body
