"""ipset's lookup, done on the model: the one set matcher of the trace and of `kpctl ipset find`.

* :func:`lookup`: iptables' ``-m set --match-set NAME FLAGS`` for a traced packet.  Each flag
  picks the packet field for one dimension of the set type in order (``src`` or ``dst``): the
  address for ip/net dimensions, (protocol, port) for port dimensions, the in/out interface
  for iface.  Like the kernel, a lookup with fewer flags than the set has dimensions never
  matches, and a family mismatch never matches.  Net types honour ``nomatch``: the most
  specific matching element decides.  list:set tries its member sets in order.
* :func:`find_matches`: ``kpctl ipset find ADDR[:PORT[/PROTO]]``: every set and member the
  address (and port) would match in any direction.
"""

from __future__ import annotations

import ipaddress
from socket import AF_INET, AF_INET6, inet_pton
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kpctl.core.address import parse_port
from kpctl.core.ipset_entry import ICMP, ICMPV6, PROTOCOL_NUMBERS, protocol_number
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSet, IPSetEntry

if TYPE_CHECKING:
    from kpctl.model.trace import Packet

_WITH_PORTS = (6, 17, 132, 136)  # tcp, udp, sctp, udplite: the protocols whose port a set sees


@dataclass(frozen=True)
class SetLookup:
    found: bool
    reason: str
    element: str | None = None  # the member that matched


@dataclass(frozen=True)
class FindMatch:
    """One answer of :func:`find_matches`: ``member`` of set ``set_name`` matches
    (``via``: the member set through which a list:set matches)."""

    set_name: str
    set_type: str
    member: IPSetEntry
    via: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"set": self.set_name, "type": self.set_type, "member": self.member.raw,
                "via": self.via, "nomatch": self.member.nomatch, "entry": self.member.to_dict()}


def _proto_number(proto: str | None) -> int | None:
    if proto is None:
        return None
    number = protocol_number(proto)
    if number is None:
        raise InvalidInput(f"unknown protocol {proto!r}")
    return number


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


def _netmask(ipset: IPSet) -> int | None:
    return ipset.netmask if ipset.type in ("hash:ip", "bitmap:ip") else None


def _ip_int(text: str) -> tuple[int, int] | None:
    """(address as int, its bit width) without an ipaddress object; None if invalid."""
    family, bits = (AF_INET6, 128) if ":" in text else (AF_INET, 32)
    try:
        return int.from_bytes(inet_pton(family, text), "big"), bits
    except OSError:
        return None


def _ip_matches(ipset: IPSet, start: str | None, cidr: int | None, end: str | None,
                address: tuple[int, int] | None, netmask: int | None) -> bool:
    """Is ``address`` (:func:`_ip_int`) in the member's range / net (``netmask``/``bitmask``: the
    set's, for the first IP)?"""
    if start is None or address is None:
        return False
    first = _ip_int(start)
    if first is None or address[1] != first[1]:
        return False
    if end is not None:
        last = _ip_int(end)
        return last is not None and first[0] <= address[0] <= last[0]
    if ipset.bitmask is not None and cidr is None:
        return address[0] & int(ipaddress.ip_address(ipset.bitmask)) == first[0]
    bits = address[1]
    shift = bits - (cidr if cidr is not None else (netmask if netmask is not None else bits))
    return address[0] >> shift == first[0] >> shift


def _port_matches(entry: IPSetEntry, proto: int | None, port: int, bitmap: bool) -> bool:
    """The member's (protocol, port) holds the packet's; bitmap:port keeps ports only.  ICMP
    members (``type << 8 | code``) never match: neither a traced packet nor a find has an ICMP type."""
    if not bitmap:
        if proto is None or proto in (ICMP, ICMPV6) or (entry.proto_num is not None and entry.proto_num != proto):
            return False
        if entry.port is None:
            return proto not in _WITH_PORTS  # portless protocols store port 0
    elif entry.port is None:
        return False
    return entry.port <= port <= (entry.port_to if entry.port_to is not None else entry.port)


def _entry_matches(ipset: IPSet, entry: IPSetEntry, packet: Packet, flags: tuple[str, ...]) -> bool:
    ip_index = 0
    for kind, flag in zip(ipset.dimensions, flags):
        source = flag == "src"
        if kind in ("ip", "net"):
            value = packet.src if source else packet.dst
            address = _ip_int(value) if value is not None else None
            if ip_index == 0:
                ok = _ip_matches(ipset, entry.ip, entry.cidr, entry.ip_to, address, _netmask(ipset))
            else:
                ok = _ip_matches(ipset, entry.ip2, entry.cidr2, entry.ip2_to, address, None)
            ip_index += 1
        elif kind == "port":
            proto = PROTOCOL_NUMBERS.get(packet.protocol)
            bitmap = ipset.type == "bitmap:port"
            # bitmap:port: the kernel's ip_set_get_ip_port() takes TCP and UDP ports only
            ok = (not bitmap or proto in (6, 17)) and _port_matches(
                entry, proto, packet.sport if source else packet.dport, bitmap)
        elif kind == "iface":
            device = packet.iif if source else packet.oif
            if entry.iface is None or device is None:
                ok = False
            else:
                ok = device.startswith(entry.iface) if entry.wildcard else device == entry.iface
        elif kind == "mark":
            mask = ipset.markmask if ipset.markmask is not None else 0xFFFFFFFF
            ok = (packet.mark & mask) == entry.mark
        else:
            ok = False  # mac: not known for a traced packet
        if not ok:
            return False
    return True


# ---------------------------------------------------------------- member index
#
# KUBE-CLUSTER-IP holds one member per service port: scanning it (two addresses parsed per
# member) costs µs a member.  Members that are one exact point (an IPv4 host address, a
# single protocol:port, an interface) are found by that key instead; every other member is
# still matched one by one.  Hits keep the members' order, so max() picks the same one.

PointKey = tuple[object, ...]


def _point_ip(start: str | None, cidr: int | None, end: str | None, netmask: int | None) -> int | None:
    """The IPv4 address an ip/net dimension matches when it matches exactly one (else None)."""
    if start is None or end is not None:
        return None
    prefix = cidr if cidr is not None else (netmask if netmask is not None else 32)
    ip = _ip_int(start)
    return ip[0] if ip is not None and ip[1] == prefix == 32 else None


def _entry_point(ipset: IPSet, entry: IPSetEntry) -> PointKey | None:
    key: list[object] = []
    ip_index = 0
    for kind in ipset.dimensions:
        if kind in ("ip", "net"):
            if ip_index == 0:
                point: object = _point_ip(entry.ip, entry.cidr, entry.ip_to, _netmask(ipset))
            else:
                point = _point_ip(entry.ip2, entry.cidr2, entry.ip2_to, None)
            ip_index += 1
        elif kind == "port":
            single = entry.port is not None and entry.port_to in (None, entry.port)
            point = (entry.proto_num, entry.port) if entry.proto_num in _WITH_PORTS and single else None
        elif kind == "iface":
            point = None if entry.wildcard else entry.iface
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
            ip = _ip_int(packet.src if flag == "src" else packet.dst)
            if ip is None or ip[1] != 32:
                return None
            key.append(ip[0])
        elif kind == "port":
            proto = PROTOCOL_NUMBERS.get(packet.protocol)
            if proto not in _WITH_PORTS:
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
        indexable = (ipset.type != "bitmap:port" and ipset.bitmask is None
                     and all(k in ("ip", "net", "port", "iface") for k in ipset.dimensions))
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


def parse_find_target(text: str) -> tuple[str, int | None, str | None]:
    """``ADDR[:PORT[/PROTO]]`` (IPv6 as ``[ADDR]:PORT``) -> (address, port, proto)."""
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidInput(f"invalid address {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(f"invalid address {host!r} in {text!r}") from None
    if text.startswith("[") and address.version != 6:
        raise InvalidInput(f"invalid address {text!r}: brackets are for IPv6")
    if not port_text:
        if "/" in text and not text.startswith("["):
            raise InvalidInput(f"invalid address {text!r}: a protocol needs a port (ADDR:PORT/PROTO)")
        return str(address), None, None
    port_part, slash, proto = port_text.partition("/")
    port = parse_port(port_part, f"address {text!r}")
    if slash:
        _proto_number(proto)
        return str(address), port, proto.lower()
    return str(address), port, None


def _member_test(ipset: IPSet, address: tuple[int, int] | None, port: int | None,
                 proto: str | None) -> Callable[[IPSetEntry], bool]:
    """Whether a member of ``ipset`` matches ``address`` (:func:`_ip_int`) in some IP dimension
    and (if given) ``port``: what depends on the set and the query worked out once, not per member."""
    dims = ipset.dimensions
    by_port = "port" in dims and port is not None
    bitmap = ipset.type == "bitmap:port"
    wanted = _proto_number(proto) if proto and by_port else None  # (else each member's own, TCP when none)
    at_port = port if port is not None else -1
    ip_dims = sum(d in ("ip", "net") for d in dims)
    netmask = _netmask(ipset)

    def matches(entry: IPSetEntry) -> bool:
        if by_port and not _port_matches(entry, wanted if proto else _proto_number(entry.proto or "tcp"),
                                         at_port, bitmap):
            return False
        if not ip_dims:
            return by_port
        if _ip_matches(ipset, entry.ip, entry.cidr, entry.ip_to, address, netmask):
            return True
        return ip_dims > 1 and _ip_matches(ipset, entry.ip2, entry.cidr2, entry.ip2_to, address, None)
    return matches


def find_matches(sets: Iterable[IPSet], address: str, port: int | None = None,
                 proto: str | None = None) -> list[FindMatch]:
    """Every (set, member) that ``address`` (and ``port``/``proto``) would match, any direction.

    Without a protocol, a port matches members of any protocol.  list:set sets are reported
    through each member set that matches (``via``).
    """
    family = "inet6" if ":" in address else "inet"
    query = _ip_int(address)
    all_sets = list(sets)
    found: list[FindMatch] = []
    hits: dict[str, list[FindMatch]] = {}
    for ipset in all_sets:
        if ipset.type == "list:set":
            continue
        if ipset.family is not None and ipset.family != family:
            continue
        matches = _member_test(ipset, query, port, proto)
        for entry in ipset.members:
            if matches(entry):
                match = FindMatch(ipset.name, ipset.type, entry)
                found.append(match)
                hits.setdefault(ipset.name, []).append(match)
    for ipset in all_sets:
        if ipset.type != "list:set":
            continue
        for member in ipset.members:
            if member.name in hits:
                found.append(FindMatch(ipset.name, ipset.type, member, via=member.name))
    return found
