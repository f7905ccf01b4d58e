"""`-m set --match-set NAME FLAGS` against a snapshot's ipset members.

Each flag picks the packet field for one dimension of the set type in order (``src`` or
``dst``): the address for ip/net dimensions, (protocol, port) for port dimensions, the
in/out interface for iface.  Like the kernel, a lookup with fewer flags than the set has
dimensions never matches, and a family mismatch never matches.  Net types honour
``nomatch``: the most specific matching element decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from kpctl.model.ipset import IPSet, IPSetEntry
from kpctl.model.iptables import ipv4_int
from kpctl.model.trace import Packet

PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136, "icmp": 1}


@dataclass(frozen=True)
class SetLookup:
    found: bool
    reason: str
    element: str | None = None  # the member that matched


def _key_text(packet: Packet, dims: tuple[str, ...], flags: tuple[str, ...]) -> str:
    parts = []
    for kind, flag in zip(dims, flags):
        if kind in ("ip", "net"):
            parts.append(packet.src if flag == "src" else packet.dst)
        elif kind == "port":
            parts.append(f"{packet.protocol}:{packet.sport if flag == 'src' else packet.dport}")
        elif kind == "iface":
            parts.append(str(packet.iif if flag == "src" else packet.oif))
        elif kind == "mark":
            parts.append(f"{packet.mark:#x}")
        else:
            parts.append("?")
    return ",".join(parts)


def _ip_in(address: str, start: str | None, cidr: int | None, end: str | None, netmask: int | None) -> bool:
    if start is None:
        return False
    ip = ipaddress.ip_address(address)
    first = ipaddress.ip_address(start)
    if ip.version != first.version:
        return False
    if end is not None:
        return int(first) <= int(ip) <= int(ipaddress.ip_address(end))
    prefix = cidr if cidr is not None else (netmask if netmask is not None else first.max_prefixlen)
    return ip in ipaddress.ip_network(f"{start}/{prefix}", strict=False)


def _entry_matches(ipset: IPSet, entry: IPSetEntry, packet: Packet, flags: tuple[str, ...]) -> bool:
    ip_index = 0
    for kind, flag in zip(ipset.dimensions, flags):
        if kind in ("ip", "net"):
            address = packet.src if flag == "src" else packet.dst
            if ip_index == 0:
                ok = _ip_in(address, entry.ip, entry.cidr, entry.ip_to, ipset.netmask)
            else:
                ok = _ip_in(address, entry.ip2, entry.cidr2, entry.ip2_to, None)
            ip_index += 1
        elif kind == "port":
            proto = PROTO_NUMBERS.get(packet.protocol)
            port = packet.sport if flag == "src" else packet.dport
            if ipset.type != "bitmap:port" and entry.proto_num is not None and entry.proto_num != proto:
                return False
            if proto not in (6, 17, 132, 136):
                return False
            low = entry.port or 0
            high = entry.port_to if entry.port_to is not None else low
            ok = low <= port <= high
        elif kind == "iface":
            device = packet.iif if flag == "src" else packet.oif
            ok = device is not None and device == entry.iface
        elif kind == "mark":
            ok = entry.mark == packet.mark
        else:
            ok = False  # mac: not known for a traced packet
        if not ok:
            return False
    return True


# ---------------------------------------------------------------- member index
#
# KUBE-CLUSTER-IP holds one member per service port: scanning it (two ipaddress objects per
# member) costs ~50 µs a member.  Members that are one exact point (an IPv4 host address, a
# single protocol:port, an interface) are found by that key instead; every other member is
# still matched one by one.  Hits keep the members' order, so max() picks the same one.

PointKey = tuple[object, ...]


def _point_ip(start: str | None, cidr: int | None, end: str | None, netmask: int | None) -> int | None:
    """The IPv4 address an ip/net dimension matches when it matches exactly one (else None)."""
    if start is None or end is not None:
        return None
    prefix = cidr if cidr is not None else (netmask if netmask is not None else 32)
    return ipv4_int(start) if prefix == 32 else None


def _entry_point(ipset: IPSet, entry: IPSetEntry) -> PointKey | None:
    key: list[object] = []
    ip_index = 0
    for kind in ipset.dimensions:
        if kind in ("ip", "net"):
            if ip_index == 0:
                point: object = _point_ip(entry.ip, entry.cidr, entry.ip_to, ipset.netmask)
            else:
                point = _point_ip(entry.ip2, entry.cidr2, entry.ip2_to, None)
            ip_index += 1
        elif kind == "port":
            low = entry.port or 0
            high = entry.port_to if entry.port_to is not None else low
            point = (entry.proto_num, low) if entry.proto_num is not None and high == low else None
        elif kind == "iface":
            point = entry.iface
        else:
            return None
        if point is None:
            return None
        key.append(point)
    return tuple(key)


def _packet_point(ipset: IPSet, packet: Packet, flags: tuple[str, ...]) -> PointKey | None:
    """The key a point member must have to match ``packet`` (None: no point member can)."""
    key: list[object] = []
    for kind, flag in zip(ipset.dimensions, flags):
        if kind in ("ip", "net"):
            ip = ipaddress.ip_address(packet.src if flag == "src" else packet.dst)
            if ip.version != 4:
                return None
            key.append(int(ip))
        elif kind == "port":
            proto = PROTO_NUMBERS.get(packet.protocol)
            if proto not in (6, 17, 132, 136):
                return None
            key.append((proto, packet.sport if flag == "src" else packet.dport))
        elif kind == "iface":
            device = packet.iif if flag == "src" else packet.oif
            if device is None:
                return None
            key.append(device)
        else:
            return None
    return tuple(key)


class _MemberIndex:
    def __init__(self, ipset: IPSet) -> None:
        self.points: dict[PointKey, list[int]] = {}
        self.others: list[int] = []
        indexable = ipset.type != "bitmap:port" and all(k in ("ip", "net", "port", "iface")
                                                         for k in ipset.dimensions)
        for position, entry in enumerate(ipset.members):
            key = _entry_point(ipset, entry) if indexable else None
            if key is None:
                self.others.append(position)
            else:
                self.points.setdefault(key, []).append(position)


_INDEXES: dict[int, tuple[IPSet, _MemberIndex]] = {}


def _index(ipset: IPSet) -> _MemberIndex:
    cached = _INDEXES.get(id(ipset))
    if cached is not None and cached[0] is ipset:
        return cached[1]
    if len(_INDEXES) > 64:
        _INDEXES.clear()
    index = _MemberIndex(ipset)
    _INDEXES[id(ipset)] = (ipset, index)
    return index


def _hits(ipset: IPSet, packet: Packet, flags: tuple[str, ...]) -> list[IPSetEntry]:
    """The members matching ``packet``, in set order (as a scan of every member finds them)."""
    members = ipset.members
    # the index keys a member by every dimension: with fewer flags the scan judges the ones given
    if len(members) < 32 or len(flags) < len(ipset.dimensions):
        return [entry for entry in members if _entry_matches(ipset, entry, packet, flags)]
    index = _index(ipset)
    positions = [p for p in index.others if _entry_matches(ipset, members[p], packet, flags)]
    if index.points:
        key = _packet_point(ipset, packet, flags)
        if key is not None:
            positions.extend(index.points.get(key, ()))
            positions.sort()
    return [members[p] for p in positions]


def _specificity(entry: IPSetEntry) -> int:
    return (entry.cidr if entry.cidr is not None else 128) * 256 + (
        entry.cidr2 if entry.cidr2 is not None else 128)


def lookup(sets: Mapping[str, IPSet], name: str, flags: tuple[str, ...], packet: Packet,
           depth: int = 0) -> SetLookup:
    """Is the packet (seen through ``flags``) a member of set ``name``?"""
    ipset = sets.get(name)
    if ipset is None:
        return SetLookup(False, f"set {name} is not in the snapshot (iptables would refuse the rule)")
    if ipset.type == "list:set":
        if depth > 4:
            return SetLookup(False, f"list:set {name} nests too deep")
        for member in ipset.members:
            if member.name:
                inner = lookup(sets, member.name, flags, packet, depth + 1)
                if inner.found:
                    return SetLookup(True, f"{name} → {inner.reason}", inner.element)
        return SetLookup(False, f"no member set of {name} holds it")
    dims = ipset.dimensions
    key = _key_text(packet, dims, flags)
    if len(flags) < len(dims):
        return SetLookup(False, f"{name} is {ipset.type}; {len(flags)} flag(s) cannot look it up")
    family = "inet6" if packet.family == "inet6" else "inet"
    if ipset.family not in (None, family):
        return SetLookup(False, f"{name} holds {ipset.family} addresses, the packet is {family}")
    hits = _hits(ipset, packet, flags)
    if not hits:
        return SetLookup(False, f"{key} is not in {name} ({len(ipset.members)} members)")
    best = max(hits, key=_specificity)
    if best.nomatch:
        return SetLookup(False, f"{key} hits nomatch element {best.raw} of {name}", best.raw)
    return SetLookup(True, f"{key} is in {name} (member {best.raw})", best.raw)
