"""Links and addresses over rtnetlink (NETLINK_ROUTE), on kpctl's own netlink socket.

What `kpctl vip` and a live node's read need: the links (name, kind, up) and their addresses,
a dummy link made and an address added or removed.  A kube-proxy node in IPVS mode holds every
Service address on kube-ipvs0: 10,000 addresses are read here in a few milliseconds of
``struct`` work (pyroute2 took 0.5 s to decode them, and 0.2 s to import).  Kernel refusals
surface as NetlinkRefusal with the errno, as on the generic netlink families.
"""

from __future__ import annotations

import struct
from socket import AF_INET, AF_INET6

from kpctl.backends.genl import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NetlinkSocket,
    attr_bytes,
    attr_str,
    pack_attr,
    parse_attrs,
)

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
IFLA_IFNAME = 3
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
IFINFOMSG = struct.Struct("=BxHiII")  # family, device type, index, flags, change mask
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_NEW = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL  # what `ip … add` sends: EEXIST when there

LinkRow = tuple[int, str, str, int]  # index, name, kind ("" when the kernel names none), flags
AddressRow = tuple[int, int, bytes, int]  # link index, family (AF_INET/AF_INET6), address packed, prefix length


class Rtnl:
    """One rtnetlink socket, opened on first use."""

    def __init__(self) -> None:
        self._sock = NetlinkSocket(NETLINK_ROUTE)

    def close(self) -> None:
        self._sock.close()

    def links(self) -> list[LinkRow]:
        rows = []
        for reply in self._sock.exchange(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0), NLM_F_REQUEST | NLM_F_DUMP):
            _family, _type, index, flags, _change = IFINFOMSG.unpack_from(reply)
            attrs = parse_attrs(reply, IFINFOMSG.size, len(reply))
            kind = ""
            if IFLA_LINKINFO in attrs:
                start, end = attrs[IFLA_LINKINFO]
                kind = attr_str(reply, parse_attrs(reply, start, end), IFLA_INFO_KIND)
            name = attr_bytes(reply, attrs, IFLA_IFNAME).split(b"\0", 1)[0].decode("utf-8", "replace")
            rows.append((index, name, kind, flags))
        return rows

    def addresses(self, family: int = 0) -> list[AddressRow]:
        """Every address of every link (of ``family``; 0: both)."""
        rows = []
        for reply in self._sock.exchange(RTM_GETADDR, IFADDRMSG.pack(family, 0, 0, 0, 0), NLM_F_REQUEST | NLM_F_DUMP):
            found, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(reply)
            if family and found != family:
                continue
            attrs = parse_attrs(reply, IFADDRMSG.size, len(reply))
            packed = attr_bytes(reply, attrs, IFA_LOCAL) or attr_bytes(reply, attrs, IFA_ADDRESS)
            if packed:
                rows.append((index, found, packed, prefixlen))
        return rows

    def add_dummy(self, name: str) -> None:
        """Create the dummy link ``name``, left down (EEXIST when a link has that name)."""
        kind = pack_attr(IFLA_INFO_KIND, b"dummy\0")
        body = (IFINFOMSG.pack(0, 0, 0, 0, 0) + pack_attr(IFLA_IFNAME, name.encode() + b"\0")
                + pack_attr(IFLA_LINKINFO, kind))
        self._sock.exchange(RTM_NEWLINK, body, _NEW)

    def delete_link(self, index: int) -> None:
        self._sock.exchange(RTM_DELLINK, IFINFOMSG.pack(0, 0, index, 0, 0), NLM_F_REQUEST | NLM_F_ACK)

    def add_address(self, index: int, packed: bytes, prefixlen: int) -> None:
        """Bind the address on link ``index`` (EEXIST when it is, with that prefix length); an IPv4
        host address gets itself as broadcast, as `ip addr add … broadcast` would give it."""
        extra = pack_attr(IFA_BROADCAST, packed) if len(packed) == 4 else b""
        self._sock.exchange(RTM_NEWADDR, _address(packed, prefixlen, index) + extra, _NEW)

    def delete_address(self, index: int, packed: bytes, prefixlen: int) -> None:
        """Remove the address from link ``index`` (EADDRNOTAVAIL when it is not there)."""
        self._sock.exchange(RTM_DELADDR, _address(packed, prefixlen, index), NLM_F_REQUEST | NLM_F_ACK)


def _address(packed: bytes, prefixlen: int, index: int) -> bytes:
    """An address request's ifaddrmsg (its family from the address's length) and the address."""
    family = AF_INET if len(packed) == 4 else AF_INET6
    return (IFADDRMSG.pack(family, prefixlen, 0, 0, index) + pack_attr(IFA_LOCAL, packed)
            + pack_attr(IFA_ADDRESS, packed))
