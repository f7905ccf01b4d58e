"""kpctl's IPVS generic-netlink vocabulary: the uapi enums and how each request attribute is packed.

The enums mirror ``include/uapi/linux/ip_vs.h`` one to one (explicit numbers, so a review
against the header is line by line), and :data:`REQUEST_ATTRS` gives, per attribute a request
can carry, its number and its format as the kernel's netlink policy reads it.  Points where a
generic reading of the header goes wrong (and pyroute2's ``pyroute2.netlink.generic.ipvs`` does):

* ``IPVS_SVC_ATTR_NETMASK`` is a raw u32: for IPv4 the kernel stores the mask's bytes as
  is (network order), for IPv6 it stores the prefix length (1..128) in host order, so an
  ``ip4addr`` type cannot encode an IPv6 prefix.  :func:`encode_netmask` /
  :func:`decode_netmask` do the per-family conversion.
* ``IPVS_DEST_ATTR_TUN_PORT`` is ``be16``: the kernel reads it with ``nla_get_be16``.
* ``IPVS_CMD_ATTR_TIMEOUT_*`` are ``uint32``, ``IPVS_CMD_ATTR_DAEMON`` is a nest, and the
  GET_INFO reply's attribute numbers 1 and 2 (:class:`InfoAttr`) collide with SERVICE and DEST.
* Addresses are the kernel's 16-byte ``union nf_inet_addr``: sent as raw bytes and decoded
  per family (kpctl.backends.ipvs_dump), never guessed from the length.

Nothing here opens a socket or packs bytes: :mod:`kpctl.backends.ipvs_codec` packs,
:mod:`kpctl.backends.ipvs_netlink` sends.
"""

from __future__ import annotations

import socket
import struct
from enum import IntEnum
from typing import Any, Dict, Tuple

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


FAMILY_CODES: dict[str, int] = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}
FAMILY_NAMES: dict[int, str] = {code: name for name, code in FAMILY_CODES.items()}
PROTOCOL_CODES: dict[str, int] = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
PROTOCOL_NAMES: dict[int, str] = {code: name for name, code in PROTOCOL_CODES.items()}


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


# How each attribute of a request is packed: "uint8"/"uint16"/"uint32" (host order), "be16",
# "cdata" (bytes as given), "asciiz" (NUL-terminated text), "ipvs_flags" (struct ip_vs_flags:
# flags, mask), "ip4addr"/"ip6addr" (an address text), a nested table of the same shape, or
# "nest": the SERVICE and DEST nests, packed whole by kpctl.backends.ipvs_codec (service_nest,
# service_key_nest, dest_nest), where their attributes' formats are written out.
AttrTable = Dict[str, Tuple[int, Any]]


def _table(prefix: str, formats: tuple[tuple[IntEnum, Any], ...]) -> AttrTable:
    return {prefix + member.name: (int(member), fmt) for member, fmt in formats}


DAEMON_ATTRS = _table("IPVS_DAEMON_ATTR_", (
    (DaemonAttr.STATE, "uint32"), (DaemonAttr.MCAST_IFN, "asciiz"), (DaemonAttr.SYNC_ID, "uint32"),
    (DaemonAttr.SYNC_MAXLEN, "uint16"), (DaemonAttr.MCAST_GROUP, "ip4addr"),
    (DaemonAttr.MCAST_GROUP6, "ip6addr"), (DaemonAttr.MCAST_PORT, "uint16"),  # nla_get_u16: host order
    (DaemonAttr.MCAST_TTL, "uint8"),
))
REQUEST_ATTRS = _table("IPVS_CMD_ATTR_", (
    (CmdAttr.SERVICE, "nest"), (CmdAttr.DEST, "nest"), (CmdAttr.DAEMON, DAEMON_ATTRS),
    (CmdAttr.TIMEOUT_TCP, "uint32"), (CmdAttr.TIMEOUT_TCP_FIN, "uint32"), (CmdAttr.TIMEOUT_UDP, "uint32"),
))
