"""Which sets and members match a packet or an address: ipset's lookup, done on the model.

* :func:`entry_matches` / :func:`set_match`: iptables' ``-m set --match-set NAME src,dst``
  semantics (one direction flag per dimension; fewer flags than the set has dimensions never
  matches; ``nomatch`` members of net types win when they are the most specific match;
  list:set tries its member sets in order).  For the trace engine.
* :func:`find_matches`: ``kpctl ipset find ADDR[:PORT[/PROTO]]``: every set and member the
  address (and port) would match in any direction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from kpctl.core.ipset_entry import ICMP, ICMPV6, PROTOCOL_NUMBERS
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSet, IPSetEntry

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclass(frozen=True)
class PacketFields:
    """The packet fields an ipset match can look at (None: unknown / not applicable)."""

    src: str | None = None
    dst: str | None = None
    proto: str | None = None  # tcp|udp|sctp|udplite|icmp|icmpv6 or a number
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    in_iface: str | None = None
    out_iface: str | None = None
    mark: int | None = None


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
    lowered = proto.lower()
    if lowered in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[lowered]
    if lowered.isdigit():
        return int(lowered)
    raise InvalidInput(f"unknown protocol {proto!r}")


def _ip_matches(ipset: IPSet, start: str | None, cidr: int | None, end: str | None, value: str | None) -> bool:
    if start is None or value is None:
        return False
    try:
        address = ipaddress.ip_address(value)
        first = ipaddress.ip_address(start)
    except ValueError:
        return False
    if address.version != first.version:
        return False
    if end is not None:
        return int(first) <= int(address) <= int(ipaddress.ip_address(end))
    bits = address.max_prefixlen
    prefix = cidr if cidr is not None else bits
    if ipset.netmask is not None and ipset.type in ("hash:ip", "bitmap:ip") and cidr is None:
        prefix = ipset.netmask
    if ipset.bitmask is not None and cidr is None:
        mask = int(ipaddress.ip_address(ipset.bitmask))
        return int(address) & mask == int(first)
    shift = bits - prefix
    return int(address) >> shift == int(first) >> shift


def _port_matches(entry: IPSetEntry, proto: int | None, port: int | None, packet: PacketFields,
                  bitmap: bool) -> bool:
    if bitmap:
        if port is None or entry.port is None:
            return False
        return entry.port <= port <= (entry.port_to if entry.port_to is not None else entry.port)
    if proto is None or entry.proto_num != proto:
        return False
    if proto in (ICMP, ICMPV6):
        if packet.icmp_type is None:
            return False
        return entry.port == (packet.icmp_type << 8 | (packet.icmp_code or 0))
    if entry.port is None or port is None:
        return proto not in (6, 17, 132, 136)  # portless protocols store port 0
    return entry.port <= port <= (entry.port_to if entry.port_to is not None else entry.port)


def entry_matches(ipset: IPSet, entry: IPSetEntry, packet: PacketFields, flags: Sequence[str]) -> bool:
    """Does ``entry`` of ``ipset`` match ``packet`` under ``--match-set NAME FLAGS``?

    ``flags`` holds ``src``/``dst`` per dimension, as iptables' set match takes them.
    ``nomatch`` is not applied here (see :func:`set_match`); list:set members never match
    here (their member sets are looked up by :func:`set_match`).
    """
    dimensions = ipset.dimensions
    if not dimensions or dimensions == ("name",) or len(flags) < len(dimensions):
        return False
    proto = _proto_number(packet.proto)
    ip_index = 0
    for kind, flag in zip(dimensions, flags):
        source = flag == "src"
        if kind in ("ip", "net"):
            value = packet.src if source else packet.dst
            if ip_index == 0:
                ok = _ip_matches(ipset, entry.ip, entry.cidr, entry.ip_to, value)
            else:
                ok = _ip_matches(ipset, entry.ip2, entry.cidr2, entry.ip2_to, value)
            ip_index += 1
        elif kind == "port":
            ok = _port_matches(entry, proto, packet.sport if source else packet.dport, packet,
                               ipset.type == "bitmap:port")
        elif kind == "iface":
            device = packet.in_iface if source else packet.out_iface
            if entry.iface is None or device is None:
                ok = False
            elif entry.wildcard:
                ok = device.startswith(entry.iface)
            else:
                ok = device == entry.iface
        elif kind == "mark":
            mask = ipset.markmask if ipset.markmask is not None else 0xFFFFFFFF
            ok = packet.mark is not None and (packet.mark & mask) == entry.mark
        else:
            ok = False
        if not ok:
            return False
    return True


def _specificity(entry: IPSetEntry, bits: int) -> tuple[int, int]:
    first = entry.cidr if entry.cidr is not None else bits
    second = entry.cidr2 if entry.cidr2 is not None else bits
    return first, second


def set_match(ipset: IPSet, packet: PacketFields, flags: Sequence[str],
              sets: Mapping[str, IPSet] | None = None, _depth: int = 0) -> IPSetEntry | None:
    """The member deciding a positive match of ``--match-set ipset.name FLAGS``, or None.

    For net types the most specific matching member decides; if it is ``nomatch`` the set
    does not match.  list:set returns the member (naming the set) through which it matched.
    """
    if ipset.type == "list:set":
        if sets is None or _depth > 2:
            return None
        for member in ipset.members:
            inner = sets.get(member.name or "")
            if inner is not None and set_match(inner, packet, flags, sets, _depth + 1) is not None:
                return member
        return None
    matching = [entry for entry in ipset.members if entry_matches(ipset, entry, packet, flags)]
    if not matching:
        return None
    bits = 128 if ipset.family == "inet6" else 32
    best = max(matching, key=lambda e: (_specificity(e, bits), not e.nomatch))
    return None if best.nomatch else best


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
    if not port_part.isdigit() or int(port_part) > 65535:
        raise InvalidInput(f"invalid port {port_part!r} in {text!r}")
    if slash:
        _proto_number(proto)
        return str(address), int(port_part), proto.lower()
    return str(address), int(port_part), None


def _member_matches_any(ipset: IPSet, entry: IPSetEntry, address: str, port: int | None,
                        proto: str | None) -> bool:
    """The member matches ``address`` in some IP dimension and (if given) ``port``."""
    dims = ipset.dimensions
    if "port" in dims and port is not None:
        protos = [proto] if proto else [entry.proto or "tcp"]
        packet = PacketFields(proto=protos[0], sport=port, dport=port)
        if not _port_matches(entry, _proto_number(protos[0]), port, packet, ipset.type == "bitmap:port"):
            return False
    ip_dims = [d for d in dims if d in ("ip", "net")]
    if not ip_dims:
        return "port" in dims and port is not None
    if _ip_matches(ipset, entry.ip, entry.cidr, entry.ip_to, address):
        return True
    return len(ip_dims) > 1 and _ip_matches(ipset, entry.ip2, entry.cidr2, entry.ip2_to, address)


def find_matches(sets: Iterable[IPSet], address: str, port: int | None = None,
                 proto: str | None = None) -> list[FindMatch]:
    """Every (set, member) that ``address`` (and ``port``/``proto``) would match, any direction.

    Without a protocol, a port matches members of any protocol.  list:set sets are reported
    through each member set that matches (``via``).
    """
    family = "inet6" if ":" in address else "inet"
    all_sets = list(sets)
    found: list[FindMatch] = []
    hits: dict[str, list[FindMatch]] = {}
    for ipset in all_sets:
        if ipset.type == "list:set":
            continue
        if ipset.family is not None and ipset.family != family:
            continue
        for entry in ipset.members:
            if _member_matches_any(ipset, entry, address, port, proto):
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
