"""Whole NEW_SERVICE / NEW_DEST requests of the adds a restore is made of, one ``struct`` each.

A restore of 50,000 real servers is mostly adds of IPv4 TCP/UDP services without a persistence
engine and of masq/route servers; packing them attribute by attribute through
:func:`kpctl.backends.ipvs_codec.encode` costs more than the kernel's work.  The layouts here are
exactly what ``ipvs_codec.encode`` writes for ``codec.service_attrs`` / ``codec.dest_attrs`` of
such an add (unit-tested byte for byte); a packer returns None for any other operation, which
then goes through ``ipvs_codec.encode``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from socket import AF_INET, inet_pton
from typing import Any

from kpctl.backends.genl import BE16 as _BE16
from kpctl.backends.genl import NLAHDR, pack_attr
from kpctl.backends.genl import REQUEST_HEAD as _HEAD
from kpctl.backends.ipvs_messages import FAMILY_CODES, GENL_VERSION, PROTOCOL_CODES, Cmd, CmdAttr, DestAttr, SvcAttr
from kpctl.core.ipvs_plan import AddServer, AddService
from kpctl.model.ipvs import FORWARD_CODES, SVC_F_HASHED

# Layouts as ``ipvs_codec.encode`` writes them for codec.service_attrs / codec.dest_attrs of an IPv4
# service (no PE name) and a masq/route server: attribute headers (length, type), payloads
# padded to 4 bytes, nests without NLA_F_NESTED.  Unit-tested against ``encode``.
_SVC_KEY_V4 = struct.Struct("=HH" "HHH2x" "HHH2x" "HH4s12x" "HH2s2x")  # SERVICE nest: AF, PROTOCOL, ADDR, PORT
_SVC_TAIL = struct.Struct("=HHII" "HHI" "HHI")  # FLAGS (flags, mask), TIMEOUT, NETMASK
_ADD_DEST_V4 = struct.Struct(_HEAD.format + f"{_SVC_KEY_V4.size}s" "HH" "HH4s12x" "HH2s2x" "HHH2x" "HHI" "HHI" "HHI" "HHI")
_PROTOCOL_CODES = {name: PROTOCOL_CODES[name] for name in ("tcp", "udp")}
_FORWARD_CODES = {name: FORWARD_CODES[name] for name in ("masq", "route")}
_ALL_BITS = 0xFFFFFFFF
_AF_INET = int(FAMILY_CODES["inet"])
_DEST_NEST_SIZE = _ADD_DEST_V4.size - _HEAD.size - _SVC_KEY_V4.size


class BulkEncoder:
    """Packs the requests of the adds above; each service's key nest is packed once."""

    def __init__(self, family_id: int, flags: int) -> None:
        self.family_id, self.flags = family_id, flags
        self._keys: dict[Any, bytes | None] = {}
        self._last: tuple[Any, bytes | None] = (None, None)
        self.packers: dict[type, Callable[[Any, int], bytes | None]] = {
            AddService: self.add_service, AddServer: self.add_server}

    def _service_nest(self, key: Any) -> bytes | None:
        """The SERVICE nest of an IPv4 TCP/UDP service key; None for any other key."""
        if key is self._last[0]:  # the servers of a service follow it, with the very same key object
            return self._last[1]
        nest = self._keys.get(key, b"")
        if nest == b"":
            nest = None
            if key.family == "inet" and not key.fwmark and key.protocol in _PROTOCOL_CODES:
                nest = _SVC_KEY_V4.pack(_SVC_KEY_V4.size, CmdAttr.SERVICE, 6, SvcAttr.AF, _AF_INET,
                                        6, SvcAttr.PROTOCOL, _PROTOCOL_CODES[key.protocol],
                                        20, SvcAttr.ADDR, inet_pton(AF_INET, key.address),
                                        6, SvcAttr.PORT, _BE16.pack(key.port))
            self._keys[key] = nest
        self._last = (key, nest)
        return nest

    def add_service(self, op: AddService, seq: int) -> bytes | None:
        svc = op.service
        if svc.pe_name or svc.netmask != _ALL_BITS:
            return None
        nest = self._service_nest(svc.key)
        if nest is None:
            return None
        sched = pack_attr(SvcAttr.SCHED_NAME, svc.scheduler.encode() + b"\0")
        tail = _SVC_TAIL.pack(12, SvcAttr.FLAGS, svc.flags & ~SVC_F_HASHED, _ALL_BITS, 8, SvcAttr.TIMEOUT,
                              svc.timeout, 8, SvcAttr.NETMASK, _ALL_BITS)  # the IPv4 netmask 255.255.255.255
        body = NLAHDR.pack(len(nest) + len(sched) + len(tail), CmdAttr.SERVICE) + nest[4:] + sched + tail
        return _HEAD.pack(_HEAD.size + len(body), self.family_id, self.flags, seq, 0,
                          Cmd.NEW_SERVICE, GENL_VERSION, 0) + body

    def add_server(self, op: AddServer, seq: int) -> bytes | None:
        server = op.server
        forward = _FORWARD_CODES.get(server.forward)
        nest = self._service_nest(op.key)
        if nest is None or forward is None or server.family != "inet":
            return None
        return _ADD_DEST_V4.pack(
            _ADD_DEST_V4.size, self.family_id, self.flags, seq, 0, Cmd.NEW_DEST, GENL_VERSION, 0, nest,
            _DEST_NEST_SIZE, CmdAttr.DEST, 20, DestAttr.ADDR, inet_pton(AF_INET, server.address),
            6, DestAttr.PORT, _BE16.pack(server.port), 6, DestAttr.ADDR_FAMILY, _AF_INET,
            8, DestAttr.FWD_METHOD, forward, 8, DestAttr.WEIGHT, server.weight,
            8, DestAttr.U_THRESH, server.upper_threshold, 8, DestAttr.L_THRESH, server.lower_threshold)
