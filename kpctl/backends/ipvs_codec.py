"""kpctl's IPVS model <-> IPVS generic-netlink messages.

A request is a command and a list of ``(attribute name, value)`` pairs, packed with ``struct`` by
:func:`encode` after the formats of :data:`~kpctl.backends.ipvs_messages.REQUEST_ATTRS`; the
SERVICE and DEST nests are packed whole, by :func:`service_nest`, :func:`service_key_nest` and
:func:`dest_nest` (every service and real-server request, one at a time or 60,000 in a restore),
the DAEMON nest's value is ``{"attrs": [...]}``.  Replies are decoded straight from the
bytes with :mod:`kpctl.backends.genl`'s attribute walker, touching only the attributes the
model needs.  Nothing here imports pyroute2.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from kpctl.backends import genl
from kpctl.backends.ipvs_dump import dest_dump_body as dest_dump_body
from kpctl.backends.genl import (
    Attrs,
    attr_uint,
    parse_attrs,
)
from kpctl.backends.ipvs_messages import (
    FAMILY_CODES,
    GENL_VERSION,
    IP_VS_STATE_BACKUP,
    IP_VS_STATE_MASTER,
    PROTOCOL_CODES,
    REQUEST_ATTRS,
    AttrTable,
    CmdAttr,
    DaemonAttr,
    DestAttr,
    InfoAttr,
    SvcAttr,
    encode_netmask,
)
from kpctl.model.ipvs import (
    FORWARD_CODES,
    FWD_TUNNEL,
    SVC_F_HASHED,
    TUN_TYPE_CODES,
    IPVSInfo,
    RealServer,
    ServiceKey,
    SyncDaemon,
    Timeouts,
    VirtualService,
)

DAEMON_STATES: dict[str, int] = {"master": IP_VS_STATE_MASTER, "backup": IP_VS_STATE_BACKUP}
DAEMON_STATE_NAMES: dict[int, str] = {code: name for name, code in DAEMON_STATES.items()}
ALL_BITS = 0xFFFFFFFF


# -- requests --------------------------------------------------------------------------------
# The SERVICE and DEST nests, packed in one ``struct`` call per part: each attribute's header
# (length, type; made once, below) and its payload padded to 4 bytes, as genl.pack_attr lays out
# an attribute (ports are ``be16``: ``htons`` of a host-order u16; the other numbers host order,
# as the kernel's policy reads them).  Addresses fill the kernel's 16-byte union nf_inet_addr
# (``16s`` pads an IPv4 address with zeros).
_KEY_FWMARK = struct.Struct("=4sH2x" "4sI")  # AF, FWMARK
_KEY_ADDRESS = struct.Struct("=4sH2x" "4sH2x" "4s16s" "4sH2x")  # AF, PROTOCOL, ADDR, PORT
_SVC_TAIL = struct.Struct("=4sII" "4sI" "4sI")  # FLAGS (flags, mask), TIMEOUT, NETMASK
_DEST_KEY = struct.Struct("=4s16s" "4sH2x" "4sH2x")  # ADDR, PORT, ADDR_FAMILY
_DEST_FULL = struct.Struct(_DEST_KEY.format + "4sI" "4sI" "4sI" "4sI")  # + FWD_METHOD, WEIGHT, U_THRESH, L_THRESH
_DEST_TUNNEL = struct.Struct("=4sB3x" "4sH2x" "4sH2x")  # TUN_TYPE, TUN_PORT, TUN_FLAGS
_H = genl.NLAHDR.pack
_AF, _PROTOCOL, _ADDR, _PORT, _FWMARK = _H(6, SvcAttr.AF), _H(6, SvcAttr.PROTOCOL), _H(20, SvcAttr.ADDR), \
    _H(6, SvcAttr.PORT), _H(8, SvcAttr.FWMARK)
_SVC_FLAGS, _TIMEOUT, _NETMASK = _H(12, SvcAttr.FLAGS), _H(8, SvcAttr.TIMEOUT), _H(8, SvcAttr.NETMASK)
_D_ADDR, _D_PORT, _D_FAMILY = _H(20, DestAttr.ADDR), _H(6, DestAttr.PORT), _H(6, DestAttr.ADDR_FAMILY)
_D_FWD, _D_WEIGHT, _D_U, _D_L = (_H(8, DestAttr.FWD_METHOD), _H(8, DestAttr.WEIGHT), _H(8, DestAttr.U_THRESH),
                                 _H(8, DestAttr.L_THRESH))
_D_TUN_TYPE, _D_TUN_PORT, _D_TUN_FLAGS = _H(5, DestAttr.TUN_TYPE), _H(6, DestAttr.TUN_PORT), _H(6, DestAttr.TUN_FLAGS)
_htons, _inet_pton = socket.htons, socket.inet_pton


def service_key_nest(key: ServiceKey) -> bytes:
    """The identifying attributes of a service (a SERVICE nest): AF plus FWMARK, or PROTOCOL+ADDR+PORT."""
    family = FAMILY_CODES[key.family]
    if key.fwmark:
        return _KEY_FWMARK.pack(_AF, family, _FWMARK, key.fwmark)
    return _KEY_ADDRESS.pack(_AF, family, _PROTOCOL, PROTOCOL_CODES[key.protocol or "tcp"],
                             _ADDR, _inet_pton(family, key.address or ""), _PORT, _htons(key.port))


def service_netmask(svc: VirtualService) -> int:
    """The netmask to send: an IPv6 service needs a prefix length in 1..128 (128 by default)."""
    if svc.family == "inet6" and not 1 <= svc.netmask <= 128:
        return 128
    return encode_netmask(svc.family, svc.netmask)


def service_nest(svc: VirtualService) -> bytes:
    """The full SERVICE nest of NEW_SERVICE/SET_SERVICE: the key, the scheduler, the persistence
    engine if any, and the flags, timeout and netmask the kernel requires."""
    nest = service_key_nest(svc.key) + genl.pack_attr(SvcAttr.SCHED_NAME, svc.scheduler.encode() + b"\0")
    if svc.pe_name:
        nest += genl.pack_attr(SvcAttr.PE_NAME, svc.pe_name.encode() + b"\0")
    # HASHED is the kernel's own bookkeeping: a service added with it set is never hashed.
    return nest + _SVC_TAIL.pack(_SVC_FLAGS, svc.flags & ~SVC_F_HASHED, ALL_BITS, _TIMEOUT, svc.timeout,
                                 _NETMASK, service_netmask(svc))


def dest_nest(server: RealServer, full: bool) -> bytes:
    """The DEST nest; ``full`` adds what NEW_DEST/SET_DEST require (and a tunnel's options)."""
    family = FAMILY_CODES[server.family]
    address, port = _inet_pton(family, server.address), _htons(server.port)
    if not full:
        return _DEST_KEY.pack(_D_ADDR, address, _D_PORT, port, _D_FAMILY, family)
    forward = FORWARD_CODES[server.forward]
    nest = _DEST_FULL.pack(_D_ADDR, address, _D_PORT, port, _D_FAMILY, family, _D_FWD, forward,
                           _D_WEIGHT, server.weight, _D_U, server.upper_threshold, _D_L, server.lower_threshold)
    if forward == FWD_TUNNEL:
        nest += _DEST_TUNNEL.pack(_D_TUN_TYPE, TUN_TYPE_CODES[server.tun_type], _D_TUN_PORT, _htons(server.tun_port),
                                  _D_TUN_FLAGS, server.tun_flags)
    return nest


def daemon_attrs(daemon: SyncDaemon) -> dict[str, Any]:
    attrs: list[tuple[str, Any]] = [
        ("IPVS_DAEMON_ATTR_STATE", DAEMON_STATES[daemon.state]),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", daemon.mcast_ifn),
        ("IPVS_DAEMON_ATTR_SYNC_ID", daemon.syncid),
    ]
    if daemon.sync_maxlen:
        attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", daemon.sync_maxlen))
    if daemon.mcast_group:
        if ":" in daemon.mcast_group:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP6", daemon.mcast_group))
        else:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_GROUP", daemon.mcast_group))
    if daemon.mcast_port:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", daemon.mcast_port))
    if daemon.mcast_ttl:
        attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", daemon.mcast_ttl))
    return {"attrs": attrs}


def timeout_attrs(timeouts: Timeouts) -> list[tuple[str, Any]]:
    """SET_CONFIG attributes; a 0 value is left out, so the kernel keeps that timeout."""
    pairs = (
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", timeouts.tcp),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", timeouts.tcp_fin),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", timeouts.udp),
    )
    return [(name, value) for name, value in pairs if value]


_SCALARS = {"uint8": genl.U8, "uint16": genl.U16, "uint32": genl.U32, "be16": genl.BE16}
_FLAGS = struct.Struct("=II")
_ADDRESS_FAMILIES = {"ip4addr": socket.AF_INET, "ip6addr": socket.AF_INET6}


def pack_attrs(table: AttrTable, attrs: list[tuple[str, Any]]) -> bytes:
    parts = []
    for name, value in attrs:
        kind, fmt = table[name]
        if fmt == "nest":  # packed by service_nest / service_key_nest / dest_nest
            payload = value
        elif isinstance(fmt, dict):  # a nest, sent without NLA_F_NESTED (the kernel accepts both)
            payload = pack_attrs(fmt, value["attrs"])
        elif fmt in _SCALARS:
            payload = _SCALARS[fmt].pack(value)
        elif fmt == "cdata":
            payload = bytes(value)
        elif fmt == "asciiz":
            payload = value.encode() + b"\0"
        elif fmt == "ipvs_flags":
            payload = _FLAGS.pack(value["flags"], value["mask"])
        else:
            payload = socket.inet_pton(_ADDRESS_FAMILIES[fmt], value)
        parts.append(genl.pack_attr(kind, payload))
    return b"".join(parts)


def encode(cmd: int, attrs: list[tuple[str, Any]], family_id: int, flags: int, seq: int) -> bytes:
    """The whole request: netlink and generic-netlink headers, then the attributes."""
    body = pack_attrs(REQUEST_ATTRS, attrs)
    return genl.REQUEST_HEAD.pack(genl.REQUEST_HEAD.size + len(body), family_id, flags, seq, 0, cmd, GENL_VERSION, 0) + body


# -- replies ---------------------------------------------------------------------------------
def top_attrs(payload: bytes) -> Attrs:
    return parse_attrs(payload, genl.GENLMSGHDR.size, len(payload))


def nested(payload: bytes, attrs: Attrs, kind: int) -> Attrs:
    span = attrs.get(kind)
    return parse_attrs(payload, span[0], span[1]) if span else {}


def decode_info(payload: bytes) -> IPVSInfo:
    attrs = top_attrs(payload)
    code = attr_uint(payload, attrs, InfoAttr.VERSION)
    version = f"{(code >> 16) & 0xFF}.{(code >> 8) & 0xFF}.{code & 0xFF}"
    return IPVSInfo(version=version, conn_table_size=attr_uint(payload, attrs, InfoAttr.CONN_TAB_SIZE))


def decode_timeouts(payload: bytes) -> Timeouts:
    attrs = top_attrs(payload)
    return Timeouts(
        tcp=attr_uint(payload, attrs, CmdAttr.TIMEOUT_TCP),
        tcp_fin=attr_uint(payload, attrs, CmdAttr.TIMEOUT_TCP_FIN),
        udp=attr_uint(payload, attrs, CmdAttr.TIMEOUT_UDP),
    )


def decode_daemon(payload: bytes) -> SyncDaemon:
    daemon = nested(payload, top_attrs(payload), CmdAttr.DAEMON)

    def address(kind: int, family: int, size: int) -> str:
        span = daemon.get(kind)
        return socket.inet_ntop(family, payload[span[0]:span[0] + size]) if span else ""

    state = attr_uint(payload, daemon, DaemonAttr.STATE)
    return SyncDaemon(
        state=DAEMON_STATE_NAMES.get(state, str(state)),
        mcast_ifn=genl.attr_str(payload, daemon, DaemonAttr.MCAST_IFN),
        syncid=attr_uint(payload, daemon, DaemonAttr.SYNC_ID),
        sync_maxlen=attr_uint(payload, daemon, DaemonAttr.SYNC_MAXLEN),
        mcast_group=address(DaemonAttr.MCAST_GROUP, socket.AF_INET, 4)
        or address(DaemonAttr.MCAST_GROUP6, socket.AF_INET6, 16),
        mcast_port=attr_uint(payload, daemon, DaemonAttr.MCAST_PORT),
        mcast_ttl=attr_uint(payload, daemon, DaemonAttr.MCAST_TTL),
    )


def family_code(name: str) -> int:
    return FAMILY_CODES.get(name, socket.AF_INET)
