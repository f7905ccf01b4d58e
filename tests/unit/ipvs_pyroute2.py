"""An independent reader of kpctl's IPVS requests for the unit tests: pyroute2 message classes.

kpctl packs its requests itself (kpctl.backends.ipvs_codec.encode, after the formats of
ipvs_messages.REQUEST_ATTRS, with the SERVICE and DEST nests packed by ipvs_codec).  These
classes, and :func:`reference_request` (which attributes each kind of request carries), are a
second, separately written reading of
``include/uapi/linux/ip_vs.h`` on top of pyroute2's generic netlink decoder: the tests decode what
kpctl packs with them, and build kernel-shaped replies with them.  They carry kpctl's
deliberate differences from pyroute2's own ``pyroute2.netlink.generic.ipvs`` (see ipvs_messages).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from pyroute2.netlink import genlmsg, nla

from kpctl.model.ipvs import FORWARD_CODES, SVC_F_HASHED, TUN_TYPE_CODES, RealServer, ServiceKey, VirtualService


class ipvs_stats(nla):
    """IPVS_SVC_ATTR_STATS / IPVS_DEST_ATTR_STATS: the legacy 32-bit counters."""

    prefix = "IPVS_STATS_ATTR_"
    nla_map = (
        (0, "IPVS_STATS_ATTR_UNSPEC", "none"),
        (1, "IPVS_STATS_ATTR_CONNS", "uint32"),
        (2, "IPVS_STATS_ATTR_INPKTS", "uint32"),
        (3, "IPVS_STATS_ATTR_OUTPKTS", "uint32"),
        (4, "IPVS_STATS_ATTR_INBYTES", "uint64"),
        (5, "IPVS_STATS_ATTR_OUTBYTES", "uint64"),
        (6, "IPVS_STATS_ATTR_CPS", "uint32"),
        (7, "IPVS_STATS_ATTR_INPPS", "uint32"),
        (8, "IPVS_STATS_ATTR_OUTPPS", "uint32"),
        (9, "IPVS_STATS_ATTR_INBPS", "uint32"),
        (10, "IPVS_STATS_ATTR_OUTBPS", "uint32"),
        (11, "IPVS_STATS_ATTR_PAD", "none"),
    )


class ipvs_stats64(nla):
    """IPVS_*_ATTR_STATS64 (kernel >= 4.1): every counter 64-bit; preferred when present."""

    prefix = "IPVS_STATS_ATTR_"
    nla_map = (
        (0, "IPVS_STATS_ATTR_UNSPEC", "none"),
        (1, "IPVS_STATS_ATTR_CONNS", "uint64"),
        (2, "IPVS_STATS_ATTR_INPKTS", "uint64"),
        (3, "IPVS_STATS_ATTR_OUTPKTS", "uint64"),
        (4, "IPVS_STATS_ATTR_INBYTES", "uint64"),
        (5, "IPVS_STATS_ATTR_OUTBYTES", "uint64"),
        (6, "IPVS_STATS_ATTR_CPS", "uint64"),
        (7, "IPVS_STATS_ATTR_INPPS", "uint64"),
        (8, "IPVS_STATS_ATTR_OUTPPS", "uint64"),
        (9, "IPVS_STATS_ATTR_INBPS", "uint64"),
        (10, "IPVS_STATS_ATTR_OUTBPS", "uint64"),
        (11, "IPVS_STATS_ATTR_PAD", "none"),
    )


class ipvs_service_attrs(nla):
    """Attributes nested in IPVS_CMD_ATTR_SERVICE."""

    prefix = "IPVS_SVC_ATTR_"
    nla_map = (
        (0, "IPVS_SVC_ATTR_UNSPEC", "none"),
        (1, "IPVS_SVC_ATTR_AF", "uint16"),
        (2, "IPVS_SVC_ATTR_PROTOCOL", "uint16"),
        (3, "IPVS_SVC_ATTR_ADDR", "cdata"),  # union nf_inet_addr, 16 bytes
        (4, "IPVS_SVC_ATTR_PORT", "be16"),
        (5, "IPVS_SVC_ATTR_FWMARK", "uint32"),
        (6, "IPVS_SVC_ATTR_SCHED_NAME", "asciiz"),
        (7, "IPVS_SVC_ATTR_FLAGS", "ipvs_flags"),
        (8, "IPVS_SVC_ATTR_TIMEOUT", "uint32"),
        (9, "IPVS_SVC_ATTR_NETMASK", "uint32"),  # raw: see encode_netmask()
        (10, "IPVS_SVC_ATTR_STATS", "ipvs_stats"),
        (11, "IPVS_SVC_ATTR_PE_NAME", "asciiz"),
        (12, "IPVS_SVC_ATTR_STATS64", "ipvs_stats64"),
    )

    class ipvs_flags(nla):
        """struct ip_vs_flags { __u32 flags; __u32 mask; }: the kernel changes only masked bits."""

        fields = (("flags", "I"), ("mask", "I"))

    ipvs_stats = ipvs_stats
    ipvs_stats64 = ipvs_stats64


class ipvs_dest_attrs(nla):
    """Attributes nested in IPVS_CMD_ATTR_DEST."""

    prefix = "IPVS_DEST_ATTR_"
    nla_map = (
        (0, "IPVS_DEST_ATTR_UNSPEC", "none"),
        (1, "IPVS_DEST_ATTR_ADDR", "cdata"),  # union nf_inet_addr, 16 bytes
        (2, "IPVS_DEST_ATTR_PORT", "be16"),
        (3, "IPVS_DEST_ATTR_FWD_METHOD", "uint32"),
        (4, "IPVS_DEST_ATTR_WEIGHT", "uint32"),
        (5, "IPVS_DEST_ATTR_U_THRESH", "uint32"),
        (6, "IPVS_DEST_ATTR_L_THRESH", "uint32"),
        (7, "IPVS_DEST_ATTR_ACTIVE_CONNS", "uint32"),
        (8, "IPVS_DEST_ATTR_INACT_CONNS", "uint32"),
        (9, "IPVS_DEST_ATTR_PERSIST_CONNS", "uint32"),
        (10, "IPVS_DEST_ATTR_STATS", "ipvs_stats"),
        (11, "IPVS_DEST_ATTR_ADDR_FAMILY", "uint16"),
        (12, "IPVS_DEST_ATTR_STATS64", "ipvs_stats64"),
        (13, "IPVS_DEST_ATTR_TUN_TYPE", "uint8"),
        (14, "IPVS_DEST_ATTR_TUN_PORT", "be16"),  # nla_get_be16 in the kernel
        (15, "IPVS_DEST_ATTR_TUN_FLAGS", "uint16"),
    )

    ipvs_stats = ipvs_stats
    ipvs_stats64 = ipvs_stats64


class ipvs_daemon_attrs(nla):
    """Attributes nested in IPVS_CMD_ATTR_DAEMON."""

    prefix = "IPVS_DAEMON_ATTR_"
    nla_map = (
        (0, "IPVS_DAEMON_ATTR_UNSPEC", "none"),
        (1, "IPVS_DAEMON_ATTR_STATE", "uint32"),
        (2, "IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
        (3, "IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
        (4, "IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
        (5, "IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
        (6, "IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
        (7, "IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),  # nla_get_u16: host order
        (8, "IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
    )


class ipvs_msg(genlmsg):
    """Every IPVS command and its replies, except the GET_INFO reply."""

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        (0, "IPVS_CMD_ATTR_UNSPEC", "none"),
        (1, "IPVS_CMD_ATTR_SERVICE", "ipvs_service_attrs"),
        (2, "IPVS_CMD_ATTR_DEST", "ipvs_dest_attrs"),
        (3, "IPVS_CMD_ATTR_DAEMON", "ipvs_daemon_attrs"),
        (4, "IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        (5, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        (6, "IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
    )

    ipvs_service_attrs = ipvs_service_attrs
    ipvs_dest_attrs = ipvs_dest_attrs
    ipvs_daemon_attrs = ipvs_daemon_attrs


class ipvs_info_msg(genlmsg):
    """The reply to IPVS_CMD_GET_INFO (sent as IPVS_CMD_SET_INFO): top-level IPVS_INFO_ATTR_*."""

    prefix = "IPVS_INFO_ATTR_"
    nla_map = (
        (0, "IPVS_INFO_ATTR_UNSPEC", "none"),
        (1, "IPVS_INFO_ATTR_VERSION", "uint32"),
        (2, "IPVS_INFO_ATTR_CONN_TAB_SIZE", "uint32"),
    )


def reference_encode(cmd: int, attrs: list, family_id: int, flags: int, seq: int) -> bytes:
    """The request packed by pyroute2 from these classes: what kpctl's encoder must equal."""
    msg = ipvs_msg()
    msg["cmd"], msg["version"], msg["attrs"] = cmd, 1, attrs
    msg["header"].update({"type": family_id, "flags": flags, "sequence_number": seq, "pid": 0})
    msg.encode()
    return bytes(msg.data)


# -- the attributes of each kind of request, written from the uapi header (not kpctl's encoder) --
_FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}
_PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
_COMMANDS = {"Flush": 17, "AddService": 1, "EditService": 2, "DeleteService": 3, "ZeroCounters": 16,
             "AddServer": 5, "EditServer": 6, "DeleteServer": 7}


def addr16(family: str, address: str) -> bytes:
    """An address as the kernel's 16-byte union nf_inet_addr."""
    return socket.inet_pton(_FAMILIES[family], address).ljust(16, b"\0")


def service_key_attrs(key: ServiceKey) -> dict[str, Any]:
    attrs: list[tuple[str, Any]] = [("IPVS_SVC_ATTR_AF", _FAMILIES[key.family])]
    if key.fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", key.fwmark))
    else:
        attrs += [("IPVS_SVC_ATTR_PROTOCOL", _PROTOCOLS[key.protocol or "tcp"]),
                  ("IPVS_SVC_ATTR_ADDR", addr16(key.family, key.address or "")), ("IPVS_SVC_ATTR_PORT", key.port)]
    return {"attrs": attrs}


def service_attrs(svc: VirtualService) -> dict[str, Any]:
    """NEW/SET_SERVICE's nest: HASHED never sent; the IPv4 netmask's bytes in network order, an
    IPv6 prefix length in 1..128 (128 otherwise)."""
    attrs = service_key_attrs(svc.key)["attrs"] + [("IPVS_SVC_ATTR_SCHED_NAME", svc.scheduler)]
    if svc.pe_name:
        attrs.append(("IPVS_SVC_ATTR_PE_NAME", svc.pe_name))
    if svc.family == "inet6":
        netmask = svc.netmask if 1 <= svc.netmask <= 128 else 128
    else:
        netmask = struct.unpack("=I", struct.pack(">I", svc.netmask))[0]
    return {"attrs": attrs + [("IPVS_SVC_ATTR_FLAGS", {"flags": svc.flags & ~SVC_F_HASHED, "mask": 0xFFFFFFFF}),
                              ("IPVS_SVC_ATTR_TIMEOUT", svc.timeout), ("IPVS_SVC_ATTR_NETMASK", netmask)]}


def dest_attrs(server: RealServer, full: bool) -> dict[str, Any]:
    attrs: list[tuple[str, Any]] = [("IPVS_DEST_ATTR_ADDR", addr16(server.family, server.address)),
                                    ("IPVS_DEST_ATTR_PORT", server.port),
                                    ("IPVS_DEST_ATTR_ADDR_FAMILY", _FAMILIES[server.family])]
    if full:
        attrs += [("IPVS_DEST_ATTR_FWD_METHOD", FORWARD_CODES[server.forward]), ("IPVS_DEST_ATTR_WEIGHT", server.weight),
                  ("IPVS_DEST_ATTR_U_THRESH", server.upper_threshold),
                  ("IPVS_DEST_ATTR_L_THRESH", server.lower_threshold)]
        if server.forward == "tunnel":
            attrs += [("IPVS_DEST_ATTR_TUN_TYPE", TUN_TYPE_CODES[server.tun_type]),
                      ("IPVS_DEST_ATTR_TUN_PORT", server.tun_port), ("IPVS_DEST_ATTR_TUN_FLAGS", server.tun_flags)]
    return {"attrs": attrs}


def reference_request(op: Any) -> tuple[int, list[tuple[str, Any]]]:
    """The command and attributes of a kpctl.core.ipvs_plan operation, for :func:`reference_encode`."""
    kind = type(op).__name__
    attrs: list[tuple[str, Any]] = []
    if kind in ("AddService", "EditService"):
        attrs = [("IPVS_CMD_ATTR_SERVICE", service_attrs(op.service))]
    elif kind in ("DeleteService", "ZeroCounters") and op.key is not None:
        attrs = [("IPVS_CMD_ATTR_SERVICE", service_key_attrs(op.key))]
    elif kind.endswith("Server"):
        attrs = [("IPVS_CMD_ATTR_SERVICE", service_key_attrs(op.key)),
                 ("IPVS_CMD_ATTR_DEST", dest_attrs(op.server, kind != "DeleteServer"))]
    return _COMMANDS[kind], attrs
