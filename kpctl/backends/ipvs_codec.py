"""kpctl's IPVS model <-> IPVS generic-netlink messages.

Requests are built as :class:`~kpctl.backends.ipvs_messages.ipvs_msg` objects (pyroute2
encodes them).  Replies of the two bulk dumps (services, destinations) are decoded straight
from the bytes with :mod:`kpctl.backends.genl`'s attribute walker, touching only the
attributes the model needs; small replies (info, config, daemons) go through pyroute2.
"""

from __future__ import annotations

import socket
from typing import Any

from kpctl.backends import genl
from kpctl.backends.genl import (
    Attrs,
    attr_be16,
    attr_bytes,
    attr_str,
    attr_uint,
    parse_attrs,
)
from kpctl.backends.ipvs_messages import (
    FAMILY_CODES,
    FAMILY_NAMES,
    GENL_VERSION,
    IP_VS_STATE_BACKUP,
    IP_VS_STATE_MASTER,
    PROTOCOL_CODES,
    PROTOCOL_NAMES,
    STATS_FIELDS,
    Cmd,
    CmdAttr,
    DestAttr,
    SvcAttr,
    decode_addr,
    decode_netmask,
    encode_addr,
    encode_netmask,
    ipvs_info_msg,
    ipvs_msg,
)
from kpctl.model.ipvs import (
    FORWARD_CODES,
    FORWARD_NAMES,
    FWD_TUNNEL,
    SVC_F_HASHED,
    TUN_TYPE_CODES,
    TUN_TYPE_NAMES,
    IPVSInfo,
    RealServer,
    ServiceKey,
    Stats,
    SyncDaemon,
    Timeouts,
    VirtualService,
)

DAEMON_STATES: dict[str, int] = {"master": IP_VS_STATE_MASTER, "backup": IP_VS_STATE_BACKUP}
DAEMON_STATE_NAMES: dict[int, str] = {code: name for name, code in DAEMON_STATES.items()}
ALL_BITS = 0xFFFFFFFF


# -- requests --------------------------------------------------------------------------------
def new_request(cmd: int, attrs: list[tuple[str, Any]] | None = None) -> ipvs_msg:
    msg = ipvs_msg()
    msg["cmd"] = cmd
    msg["version"] = GENL_VERSION
    msg["attrs"] = attrs or []
    return msg


def service_key_attrs(key: ServiceKey) -> list[tuple[str, Any]]:
    """The identifying attributes of a service: AF plus FWMARK, or PROTOCOL+ADDR+PORT."""
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", FAMILY_CODES[key.family])]
    if key.fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        attrs.append(("IPVS_SVC_ATTR_PROTOCOL", PROTOCOL_CODES[key.protocol or "tcp"]))
        attrs.append(("IPVS_SVC_ATTR_ADDR", encode_addr(key.family, key.address or "")))
        attrs.append(("IPVS_SVC_ATTR_PORT", key.port))
    return attrs


def service_netmask(svc: VirtualService) -> int:
    """The netmask to send: an IPv6 service needs a prefix length in 1..128 (128 by default)."""
    if svc.family == "inet6" and not 1 <= svc.netmask <= 128:
        return 128
    return encode_netmask(svc.family, svc.netmask)


def service_attrs(svc: VirtualService) -> dict[str, Any]:
    """The full service nest for NEW_SERVICE/SET_SERVICE (all four mandatory extras present)."""
    attrs = service_key_attrs(svc.key)
    attrs.append(("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler))
    if svc.pe_name:
        attrs.append(("IPVS_SVC_ATTR_PE_NAME", svc.pe_name))
    # HASHED is the kernel's own bookkeeping: a service added with it set is never hashed.
    attrs.append(("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags & ~SVC_F_HASHED, "mask": ALL_BITS}))
    attrs.append(("IPVS_SVC_ATTR_TIMEOUT", svc.timeout))
    attrs.append(("IPVS_SVC_ATTR_NETMASK", service_netmask(svc)))
    return {"attrs": attrs}


def dest_attrs(server: RealServer, full: bool) -> dict[str, Any]:
    """The destination nest; ``full`` adds what NEW_DEST/SET_DEST require (and tunnel options)."""
    attrs: list[tuple[str, Any]] = [
        ("IPVS_DEST_ATTR_ADDR", encode_addr(server.family, server.address)),
        ("IPVS_DEST_ATTR_PORT", server.port),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", FAMILY_CODES[server.family]),
    ]
    if full:
        forward = FORWARD_CODES[server.forward]
        attrs += [
            ("IPVS_DEST_ATTR_FWD_METHOD", forward),
            ("IPVS_DEST_ATTR_WEIGHT", server.weight),
            ("IPVS_DEST_ATTR_U_THRESH", server.upper_threshold),
            ("IPVS_DEST_ATTR_L_THRESH", server.lower_threshold),
        ]
        if forward == FWD_TUNNEL:
            attrs += [
                ("IPVS_DEST_ATTR_TUN_TYPE", TUN_TYPE_CODES[server.tun_type]),
                ("IPVS_DEST_ATTR_TUN_PORT", server.tun_port),
                ("IPVS_DEST_ATTR_TUN_FLAGS", server.tun_flags),
            ]
    return {"attrs": attrs}


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


def encode(msg: ipvs_msg, family_id: int, flags: int, seq: int) -> bytes:
    msg["header"]["type"] = family_id
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


def dest_dump_body(service_key_raw: bytes) -> bytes:
    """GET_DEST dump body from the identifying attributes copied out of a service reply."""
    return genl.GENLMSGHDR.pack(Cmd.GET_DEST, GENL_VERSION, 0) + genl.pack_attr(CmdAttr.SERVICE, service_key_raw)


# -- replies ---------------------------------------------------------------------------------
def top_attrs(payload: bytes) -> Attrs:
    return parse_attrs(payload, genl.GENLMSGHDR.size, len(payload))


def nested(payload: bytes, attrs: Attrs, kind: int) -> Attrs:
    span = attrs.get(kind)
    return parse_attrs(payload, span[0], span[1]) if span else {}


def decode_stats(payload: bytes, attrs: Attrs, stats64: int, stats32: int) -> Stats:
    """STATS64 when the kernel sent it, else the 32-bit STATS nest."""
    span = attrs.get(stats64) or attrs.get(stats32)
    if span is None:
        return Stats()
    # one walk over the nest (this runs once per service and per real server)
    values: dict[str, int] = {}
    position, end = span
    while position + 4 <= end:
        length, kind = genl.NLAHDR.unpack_from(payload, position)
        if length < 4:
            break
        name = STATS_FIELDS.get(kind & genl.NLA_TYPE_MASK)
        if name is not None:
            width = genl.U64 if length - 4 == 8 else genl.U32
            values[name] = int(width.unpack_from(payload, position + 4)[0])
        position += (length + 3) & ~3
    return Stats(**values)


def decode_service(payload: bytes) -> tuple[VirtualService, bytes]:
    """A VirtualService (no servers) and its identifying attributes, raw, for GET_DEST."""
    attrs = nested(payload, top_attrs(payload), CmdAttr.SERVICE)
    af = attr_uint(payload, attrs, SvcAttr.AF)
    fwmark = attr_uint(payload, attrs, SvcAttr.FWMARK)
    key_kinds = (SvcAttr.AF, SvcAttr.FWMARK) if fwmark else (SvcAttr.AF, SvcAttr.PROTOCOL, SvcAttr.ADDR, SvcAttr.PORT)
    raw_key = b"".join(genl.raw_attr(payload, attrs, kind) for kind in key_kinds)
    if fwmark:
        protocol, address, port = None, None, 0
    else:
        protocol = PROTOCOL_NAMES.get(attr_uint(payload, attrs, SvcAttr.PROTOCOL), "tcp")
        address = decode_addr(af, attr_bytes(payload, attrs, SvcAttr.ADDR, bytes(16)))
        port = attr_be16(payload, attrs, SvcAttr.PORT)
    flags_raw = attr_bytes(payload, attrs, SvcAttr.FLAGS, bytes(8))
    service = VirtualService(
        family=FAMILY_NAMES.get(af, "inet"),
        protocol=protocol,
        address=address,
        port=port,
        fwmark=fwmark,
        scheduler=attr_str(payload, attrs, SvcAttr.SCHED_NAME),
        flags=int(genl.U32.unpack_from(flags_raw, 0)[0]),
        timeout=attr_uint(payload, attrs, SvcAttr.TIMEOUT),
        netmask=decode_netmask(af, attr_uint(payload, attrs, SvcAttr.NETMASK)),
        pe_name=attr_str(payload, attrs, SvcAttr.PE_NAME),
        stats=decode_stats(payload, attrs, SvcAttr.STATS64, SvcAttr.STATS),
    )
    return service, raw_key


def decode_dest(payload: bytes, service_af: int) -> RealServer:
    attrs = nested(payload, top_attrs(payload), CmdAttr.DEST)
    af = attr_uint(payload, attrs, DestAttr.ADDR_FAMILY, service_af)
    forward = attr_uint(payload, attrs, DestAttr.FWD_METHOD)
    return RealServer(
        address=decode_addr(af, attr_bytes(payload, attrs, DestAttr.ADDR, bytes(16))),
        port=attr_be16(payload, attrs, DestAttr.PORT),
        family=FAMILY_NAMES.get(af, "inet"),
        forward=FORWARD_NAMES.get(forward & 0x7, "masq"),
        weight=attr_uint(payload, attrs, DestAttr.WEIGHT),
        upper_threshold=attr_uint(payload, attrs, DestAttr.U_THRESH),
        lower_threshold=attr_uint(payload, attrs, DestAttr.L_THRESH),
        active_conns=attr_uint(payload, attrs, DestAttr.ACTIVE_CONNS),
        inactive_conns=attr_uint(payload, attrs, DestAttr.INACT_CONNS),
        persistent_conns=attr_uint(payload, attrs, DestAttr.PERSIST_CONNS),
        tun_type=TUN_TYPE_NAMES.get(attr_uint(payload, attrs, DestAttr.TUN_TYPE), "ipip"),
        tun_port=attr_be16(payload, attrs, DestAttr.TUN_PORT),
        tun_flags=attr_uint(payload, attrs, DestAttr.TUN_FLAGS),
        stats=decode_stats(payload, attrs, DestAttr.STATS64, DestAttr.STATS),
    )


def decode_info(payload: bytes) -> IPVSInfo:
    msg = ipvs_info_msg(payload_with_header(payload))
    msg.decode()
    code = int(msg.get_attr("IPVS_INFO_ATTR_VERSION") or 0)
    version = f"{(code >> 16) & 0xFF}.{(code >> 8) & 0xFF}.{code & 0xFF}"
    return IPVSInfo(version=version, conn_table_size=int(msg.get_attr("IPVS_INFO_ATTR_CONN_TAB_SIZE") or 0))


def decode_timeouts(payload: bytes) -> Timeouts:
    msg = ipvs_msg(payload_with_header(payload))
    msg.decode()
    return Timeouts(
        tcp=int(msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP") or 0),
        tcp_fin=int(msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN") or 0),
        udp=int(msg.get_attr("IPVS_CMD_ATTR_TIMEOUT_UDP") or 0),
    )


def decode_daemon(payload: bytes) -> SyncDaemon:
    msg = ipvs_msg(payload_with_header(payload))
    msg.decode()
    nest = msg.get_attr("IPVS_CMD_ATTR_DAEMON")

    def get(name: str, default: Any) -> Any:
        value = nest.get_attr(f"IPVS_DAEMON_ATTR_{name}") if nest is not None else None
        return default if value is None else value

    return SyncDaemon(
        state=DAEMON_STATE_NAMES.get(int(get("STATE", 0)), str(get("STATE", 0))),
        mcast_ifn=str(get("MCAST_IFN", "")),
        syncid=int(get("SYNC_ID", 0)),
        sync_maxlen=int(get("SYNC_MAXLEN", 0)),
        mcast_group=str(get("MCAST_GROUP", "") or get("MCAST_GROUP6", "")),
        mcast_port=int(get("MCAST_PORT", 0)),
        mcast_ttl=int(get("MCAST_TTL", 0)),
    )


def payload_with_header(payload: bytes) -> bytes:
    """pyroute2 decodes whole messages: put a netlink header back in front of a payload."""
    return genl.NLMSGHDR.pack(genl.NLMSGHDR.size + len(payload), 0, 0, 0, 0) + payload


def family_code(name: str) -> int:
    return FAMILY_CODES.get(name, socket.AF_INET)
