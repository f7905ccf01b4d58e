"""kpctl's IPVS generic-netlink messages, declared on pyroute2's netlink primitives.

Every table mirrors ``include/uapi/linux/ip_vs.h`` one to one (explicit numbers, so a
review against the header is line by line).  Deliberate differences from pyroute2's own
``pyroute2.netlink.generic.ipvs``:

* ``IPVS_SVC_ATTR_NETMASK`` is a raw u32: for IPv4 the kernel stores the mask's bytes as
  is (network order), for IPv6 it stores the prefix length (1..128) in host order, so an
  ``ip4addr`` type cannot encode an IPv6 prefix.  :func:`encode_netmask` /
  :func:`decode_netmask` do the per-family conversion.
* ``IPVS_DEST_ATTR_TUN_PORT`` is ``be16``: the kernel reads it with ``nla_get_be16``.
* ``IPVS_CMD_ATTR_TIMEOUT_*`` are ``uint32`` (not "hex"), ``IPVS_CMD_ATTR_DAEMON`` is a
  declared nest, and the GET_INFO reply (whose attribute numbers 1 and 2 collide with
  SERVICE and DEST) has its own class, :class:`ipvs_info_msg`.
* Addresses are the kernel's 16-byte ``union nf_inet_addr``: declared ``cdata`` (raw
  bytes) and decoded per family by :func:`decode_addr`, never guessed from the length.

Nothing here opens a socket; :mod:`kpctl.backends.ipvs_netlink` does.
"""

from __future__ import annotations

import socket
import struct
from enum import IntEnum

from pyroute2.netlink import genlmsg, nla

GENL_NAME = "IPVS"
GENL_VERSION = 0x1

IP_VS_SCHEDNAME_MAXLEN = 16
IP_VS_PENAME_MAXLEN = 16
IP_VS_IFNAME_MAXLEN = 16

# Sync daemon states (IP_VS_STATE_*).
IP_VS_STATE_NONE = 0x0000
IP_VS_STATE_MASTER = 0x0001
IP_VS_STATE_BACKUP = 0x0002


class Cmd(IntEnum):
    """enum { IPVS_CMD_UNSPEC = 0, … } (generic netlink commands)."""

    UNSPEC = 0
    NEW_SERVICE = 1
    SET_SERVICE = 2
    DEL_SERVICE = 3
    GET_SERVICE = 4
    NEW_DEST = 5
    SET_DEST = 6
    DEL_DEST = 7
    GET_DEST = 8
    NEW_DAEMON = 9
    DEL_DAEMON = 10
    GET_DAEMON = 11
    SET_CONFIG = 12
    GET_CONFIG = 13
    SET_INFO = 14
    GET_INFO = 15
    ZERO = 16
    FLUSH = 17


class CmdAttr(IntEnum):
    UNSPEC = 0
    SERVICE = 1
    DEST = 2
    DAEMON = 3
    TIMEOUT_TCP = 4
    TIMEOUT_TCP_FIN = 5
    TIMEOUT_UDP = 6


class SvcAttr(IntEnum):
    UNSPEC = 0
    AF = 1
    PROTOCOL = 2
    ADDR = 3
    PORT = 4
    FWMARK = 5
    SCHED_NAME = 6
    FLAGS = 7
    TIMEOUT = 8
    NETMASK = 9
    STATS = 10
    PE_NAME = 11
    STATS64 = 12


class DestAttr(IntEnum):
    UNSPEC = 0
    ADDR = 1
    PORT = 2
    FWD_METHOD = 3
    WEIGHT = 4
    U_THRESH = 5
    L_THRESH = 6
    ACTIVE_CONNS = 7
    INACT_CONNS = 8
    PERSIST_CONNS = 9
    STATS = 10
    ADDR_FAMILY = 11
    STATS64 = 12
    TUN_TYPE = 13
    TUN_PORT = 14
    TUN_FLAGS = 15


class DaemonAttr(IntEnum):
    UNSPEC = 0
    STATE = 1
    MCAST_IFN = 2
    SYNC_ID = 3
    SYNC_MAXLEN = 4
    MCAST_GROUP = 5
    MCAST_GROUP6 = 6
    MCAST_PORT = 7
    MCAST_TTL = 8


class StatsAttr(IntEnum):
    UNSPEC = 0
    CONNS = 1
    INPKTS = 2
    OUTPKTS = 3
    INBYTES = 4
    OUTBYTES = 5
    CPS = 6
    INPPS = 7
    OUTPPS = 8
    INBPS = 9
    OUTBPS = 10
    PAD = 11


class InfoAttr(IntEnum):
    UNSPEC = 0
    VERSION = 1
    CONN_TAB_SIZE = 2


# Model field name of each IPVS_STATS_ATTR_* (kpctl.model.ipvs.Stats).
STATS_FIELDS: dict[int, str] = {
    StatsAttr.CONNS: "conns",
    StatsAttr.INPKTS: "inpkts",
    StatsAttr.OUTPKTS: "outpkts",
    StatsAttr.INBYTES: "inbytes",
    StatsAttr.OUTBYTES: "outbytes",
    StatsAttr.CPS: "cps",
    StatsAttr.INPPS: "inpps",
    StatsAttr.OUTPPS: "outpps",
    StatsAttr.INBPS: "inbps",
    StatsAttr.OUTBPS: "outbps",
}


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


FAMILY_CODES: dict[str, int] = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}
FAMILY_NAMES: dict[int, str] = {code: name for name, code in FAMILY_CODES.items()}
PROTOCOL_CODES: dict[str, int] = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
PROTOCOL_NAMES: dict[int, str] = {code: name for name, code in PROTOCOL_CODES.items()}


def encode_addr(family: str, address: str) -> bytes:
    """The 16-byte union nf_inet_addr for ADDR attributes (IPv4 in the first 4 bytes)."""
    packed = socket.inet_pton(FAMILY_CODES[family], address)
    return packed.ljust(16, b"\0")


def decode_addr(family: int, raw: bytes) -> str:
    """The address in a 16-byte union nf_inet_addr, read per family."""
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[:16])
    return socket.inet_ntop(socket.AF_INET, raw[:4])


def encode_netmask(family: str, netmask: int) -> int:
    """The value to put in the raw u32 IPVS_SVC_ATTR_NETMASK.

    IPv4: ``netmask`` is the mask as a 32-bit number (0xffffff00 for /24); the kernel wants
    its network-order bytes.  IPv6: ``netmask`` is the prefix length, stored as is.
    """
    if family == "inet6":
        return netmask
    return int(struct.unpack("=I", struct.pack(">I", netmask & 0xFFFFFFFF))[0])


def decode_netmask(family: int, raw: int) -> int:
    """Inverse of :func:`encode_netmask` for a value read from the kernel."""
    if family == socket.AF_INET6:
        return raw
    return int(struct.unpack(">I", struct.pack("=I", raw & 0xFFFFFFFF))[0])


