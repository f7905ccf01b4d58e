"""The kernel's ipsets as plain values (mirrors include/uapi/linux/netfilter/ipset/ip_set.h).

An :class:`IPSet` carries the header of a set (what `ipset save` prints after
``create NAME TYPE``) plus its members; an :class:`IPSetEntry` is one member with
its element text exactly as ipset(8) prints it (``raw``) and the parsed parts.
Parsing and formatting live in :mod:`kpctl.core.ipset_entry` / :mod:`kpctl.core.ipset_save`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

# The set types kpctl knows how to parse and format (dimension kinds in order).
# ip: address (optionally /cidr for net types); port: [proto:]port; iface; mark; name; mac.
SET_TYPE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "hash:ip": ("ip",),
    "hash:net": ("net",),
    "hash:ip,port": ("ip", "port"),
    "hash:net,port": ("net", "port"),
    "hash:ip,port,ip": ("ip", "port", "ip"),
    "hash:ip,port,net": ("ip", "port", "net"),
    "hash:net,net": ("net", "net"),
    "hash:net,port,net": ("net", "port", "net"),
    "hash:net,iface": ("net", "iface"),
    "hash:ip,mark": ("ip", "mark"),
    "hash:ip,mac": ("ip", "mac"),
    "hash:mac": ("mac",),
    "bitmap:ip": ("ip",),
    "bitmap:ip,mac": ("ip", "mac"),
    "bitmap:port": ("port",),
    "list:set": ("name",),
}
SET_TYPES: tuple[str, ...] = tuple(SET_TYPE_DIMENSIONS)
FAMILIES: tuple[str, ...] = ("inet", "inet6")


@dataclass(frozen=True)
class IPSetEntry:
    """One member of a set.

    ``raw`` is the element as ipset prints it (``10.0.0.1,tcp:80``, ``10.0.0.0/8``,
    ``30080``, ``KUBE-LOOP-BACK``), without per-entry options; the options (timeout,
    counters, comment, skbinfo, nomatch) are separate fields.  For ranges given on input
    (``10.0.0.1-10.0.0.9``, ``80-90``) ``ip_to`` / ``port_to`` hold the end.
    For icmp/icmpv6 ``port`` holds ``type << 8 | code`` as the kernel does.
    """

    raw: str
    ip: str | None = None
    cidr: int | None = None  # prefix length of the first dimension (None: a host address)
    ip_to: str | None = None
    proto: str | None = None  # protocol name as ipset prints it: tcp, udp, sctp, icmp, ipv6-icmp, …
    proto_num: int | None = None
    port: int | None = None
    port_to: int | None = None
    ip2: str | None = None
    cidr2: int | None = None
    ip2_to: str | None = None
    iface: str | None = None
    physdev: bool = False
    mark: int | None = None
    mac: str | None = None
    name: str | None = None  # list:set member
    nomatch: bool = False
    wildcard: bool = False  # hash:net,iface: the interface name is a prefix
    timeout: int | None = None
    packets: int | None = None
    bytes: int | None = None
    comment: str | None = None
    skbmark: int | None = None
    skbmarkmask: int | None = None
    skbprio: str | None = None  # "MAJOR:MINOR" as printed (hex digits)
    skbqueue: int | None = None

    def to_dict(self) -> dict[str, Any]:
        # Every field is a scalar: the defaults (in field order) with the fields the instance holds
        # (all of them, or only those given to with_fields) over them; no asdict() deep copy and
        # no read per field, which matters for sets of 100,000 members.
        return {**_DEFAULTS, **self.__dict__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IPSetEntry:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    @classmethod
    def with_fields(cls, values: dict[str, Any], raw_of: Callable[[IPSetEntry], str]) -> IPSetEntry:
        """``IPSetEntry(raw=raw_of(entry), **values)``: the member with these fields, the others
        their defaults, and ``raw`` the text ``raw_of`` makes of it.  Built without the frozen
        ``__init__``, which assigns all 26 fields one by one (3.4 us; a 100,000-member set is
        built 100,000 times): the instance holds only the fields given, and reads the others
        from the class, where the dataclass keeps their defaults."""
        if not _FIELD_NAMES.issuperset(values):
            raise TypeError(f"not IPSetEntry fields: {sorted(set(values) - _FIELD_NAMES)}")
        entry = cls.__new__(cls)
        held = entry.__dict__
        held.update(values)
        held["raw"] = raw_of(entry)
        return entry


# Every field with its default, in field order ("raw" has none: every instance holds its own).
_DEFAULTS: dict[str, Any] = {f.name: None if f.name == "raw" else f.default for f in fields(IPSetEntry)}
_FIELD_NAMES = frozenset(_DEFAULTS) - {"raw"}


@dataclass(frozen=True)
class IPSet:
    """A set: header options as `ipset save` prints them, runtime info, and members.

    ``family`` is None for types without one (bitmap:port, list:set; bitmap:ip is inet).
    ``range`` is the bitmap range as printed (``10.0.0.0-10.0.0.255``, ``0-65535``).
    ``entries`` is the kernel's member count (``Number of entries``); ``members`` may be
    empty when only the header was read (``--terse``).
    """

    name: str
    type: str
    family: str | None = "inet"
    revision: int | None = None
    hashsize: int | None = None
    maxelem: int | None = None
    netmask: int | None = None
    bitmask: str | None = None
    markmask: int | None = None
    range: str | None = None
    size: int | None = None  # list:set size
    timeout: int | None = None
    counters: bool = False
    comment: bool = False
    skbinfo: bool = False
    forceadd: bool = False
    bucketsize: int | None = None
    initval: int | None = None
    size_in_memory: int | None = None
    references: int | None = None
    entries: int | None = None
    members: tuple[IPSetEntry, ...] = field(default_factory=tuple)

    @property
    def dimensions(self) -> tuple[str, ...]:
        return SET_TYPE_DIMENSIONS.get(self.type, ())

    def with_members(self, members: tuple[IPSetEntry, ...]) -> IPSet:
        return replace(self, members=members, entries=len(members))

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "members"}
        data["members"] = [member.to_dict() for member in self.members]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IPSet:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name != "members"}
        return cls(**values, members=tuple(IPSetEntry.from_dict(m) for m in data.get("members", ())))
