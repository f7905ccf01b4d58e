"""The kernel's IPVS table as plain values (mirrors include/uapi/linux/ip_vs.h)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from kpctl.model.service_key import PROTOCOLS as PROTOCOLS  # re-exported: the IPVS vocabulary
from kpctl.model.service_key import ServiceKey as ServiceKey

# Service flags (IP_VS_SVC_F_*).
SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008
SVC_F_SCHED2 = 0x0010
SVC_F_SCHED3 = 0x0020
# Scheduler-specific aliases of SCHED1..3, as ipvsadm names them.
SCHED_FLAG_NAMES: dict[str, int] = {
    "flag-1": SVC_F_SCHED1,
    "flag-2": SVC_F_SCHED2,
    "flag-3": SVC_F_SCHED3,
    "sh-fallback": SVC_F_SCHED1,
    "sh-port": SVC_F_SCHED2,
    "mh-fallback": SVC_F_SCHED1,
    "mh-port": SVC_F_SCHED2,
}

# Forwarding methods (IP_VS_CONN_F_FWD_MASK values).
FWD_MASQ = 0
FWD_LOCALNODE = 1
FWD_TUNNEL = 2
FWD_DROUTE = 3
FWD_BYPASS = 4
FORWARD_NAMES: dict[int, str] = {
    FWD_MASQ: "masq",
    FWD_LOCALNODE: "local",
    FWD_TUNNEL: "tunnel",
    FWD_DROUTE: "route",
    FWD_BYPASS: "bypass",
}
FORWARD_CODES: dict[str, int] = {name: code for code, name in FORWARD_NAMES.items()}

# Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*) and flags (IP_VS_TUNNEL_ENCAP_FLAG_*).
TUN_TYPE_NAMES: dict[int, str] = {0: "ipip", 1: "gue", 2: "gre"}
TUN_TYPE_CODES: dict[str, int] = {name: code for code, name in TUN_TYPE_NAMES.items()}
TUN_F_NOCSUM = 0
TUN_F_CSUM = 1 << 0
TUN_F_REMCSUM = 1 << 1

SCHEDULERS: tuple[str, ...] = (
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
)


class Stats(NamedTuple):
    """IPVS_STATS_ATTR_*: totals and rates (64-bit where the kernel has STATS64).

    Stats, RealServer and VirtualService are NamedTuples, not frozen dataclasses: a 10,000-service
    table has 60,000 of each, and a frozen dataclass took ~2.6 us to make (a NamedTuple ~0.3-0.6).
    Change one with ``_replace``."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(zip(self._fields, self))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Stats:
        if not data:
            return _NO_STATS
        values = tuple(map(data.get, cls._fields, _ZEROS))
        if values == _ZEROS:  # (a table's servers mostly count nothing yet; 0.0 and False are 0 too)
            return _NO_STATS
        if not _INT.issuperset(map(type, values)):
            values = tuple(int(value) for value in values)
        return cls._make(values)


_ZEROS = (0,) * len(Stats._fields)
_INT = frozenset({int})
_NO_STATS = Stats()  # one shared zero counter set for the many servers a snapshot lists without any


class RealServer(NamedTuple):
    """A real server (destination) of a virtual service, with its counters (IPVS_DEST_ATTR_*)."""

    address: str
    port: int
    family: str = "inet"  # family of the server address (inet|inet6)
    forward: str = "masq"  # masq|route|tunnel|local|bypass
    weight: int = 1
    upper_threshold: int = 0
    lower_threshold: int = 0
    active_conns: int = 0
    inactive_conns: int = 0
    persistent_conns: int = 0
    tun_type: str = "ipip"  # ipip|gue|gre (only meaningful for forward == "tunnel")
    tun_port: int = 0
    tun_flags: int = TUN_F_NOCSUM
    stats: Stats = _NO_STATS

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(zip(_SERVER_FIELDS, self))  # every field but the last, stats
        data["stats"] = self.stats.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RealServer:
        values = _values(data, _SERVER_FIELDS, _SERVER_DEFAULTS, _SERVER_REQUIRED, cls)
        values.append(Stats.from_dict(data.get("stats")))
        return cls._make(values)


_SERVER_FIELDS = RealServer._fields[:-1]
_REQUIRED = object()  # a field's default when it has none
_SERVER_DEFAULTS = tuple(RealServer._field_defaults.get(name, _REQUIRED) for name in _SERVER_FIELDS)
_SERVER_REQUIRED = frozenset(name for name in _SERVER_FIELDS if name not in RealServer._field_defaults)


def _values(data: dict[str, Any], fields: tuple[str, ...], defaults: tuple[Any, ...], required: frozenset[str],
            cls: Any) -> list[Any]:
    """The values of ``fields`` in ``data`` (their defaults where absent; other keys ignored); the
    TypeError of ``cls(…)`` when one of the ``required`` fields (those without a default) is absent."""
    if required and not data.keys() >= required:
        cls(**{name: data[name] for name in fields if name in data})  # (raises: names the field)
    return list(map(data.get, fields, defaults))


class VirtualService(NamedTuple):
    """A virtual service (IPVS_SVC_ATTR_*) and its real servers."""

    family: str = "inet"  # inet|inet6
    protocol: str | None = "tcp"  # tcp|udp|sctp; None for fwmark services
    address: str | None = None
    port: int = 0
    fwmark: int = 0
    scheduler: str = "wlc"
    flags: int = 0  # IP_VS_SVC_F_* as the kernel reports them (HASHED included)
    timeout: int = 0  # persistence timeout, seconds (meaningful with SVC_F_PERSISTENT)
    netmask: int = 0xFFFFFFFF  # IPv4: the 32-bit mask; IPv6: prefix length (as the kernel stores it)
    pe_name: str = ""
    servers: tuple[RealServer, ...] = ()
    stats: Stats = _NO_STATS

    @property
    def key(self) -> ServiceKey:
        return ServiceKey._make(self[:5])  # family, protocol, address, port, fwmark: ServiceKey's fields

    @property
    def persistent(self) -> bool:
        return bool(self.flags & SVC_F_PERSISTENT)

    @property
    def one_packet(self) -> bool:
        return bool(self.flags & SVC_F_ONEPACKET)

    def with_servers(self, servers: tuple[RealServer, ...]) -> VirtualService:
        return VirtualService._make(self[:-2] + (servers, self.stats))  # (_replace, without its keyword lookups)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(zip(_SERVICE_FIELDS, self))  # every field before servers
        data["servers"] = [server.to_dict() for server in self.servers]
        data["stats"] = self.stats.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VirtualService:
        return cls._make(_values(data, _SERVICE_FIELDS, _SERVICE_DEFAULTS, _SERVICE_REQUIRED, cls) + [
            tuple(map(RealServer.from_dict, data.get("servers", ()))), Stats.from_dict(data.get("stats"))])


_SERVICE_FIELDS = VirtualService._fields[:-2]
_SERVICE_DEFAULTS = tuple(VirtualService._field_defaults.get(name, _REQUIRED) for name in _SERVICE_FIELDS)
_SERVICE_REQUIRED = frozenset(name for name in _SERVICE_FIELDS if name not in VirtualService._field_defaults)


@dataclass(frozen=True)
class Timeouts:
    """IPVS connection timeouts in seconds (ipvsadm --set tcp tcpfin udp)."""

    tcp: int = 900
    tcp_fin: int = 120
    udp: int = 300

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SyncDaemon:
    """A connection synchronisation daemon (IPVS_DAEMON_ATTR_*)."""

    state: str  # master|backup
    mcast_ifn: str = ""
    syncid: int = 0
    sync_maxlen: int = 0
    mcast_group: str = ""
    mcast_port: int = 0
    mcast_ttl: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Connection(NamedTuple):
    """One line of /proc/net/ip_vs_conn.  A NamedTuple, as ServiceKey: a busy node has hundreds
    of thousands, and a frozen dataclass took 1.9 us to make (this 0.34)."""

    protocol: str
    client_address: str
    client_port: int
    virtual_address: str
    virtual_port: int
    server_address: str
    server_port: int
    state: str
    expires: int  # seconds
    pe_name: str = ""
    pe_data: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(frozen=True)
class IPVSInfo:
    """The IPVS version and connection table size (the first line of `ipvsadm -Ln`)."""

    version: str  # e.g. "1.2.1"
    conn_table_size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IPVSTable:
    """Everything `ipvsadm -Ln` shows: info line and the services with their servers."""

    info: IPVSInfo
    services: tuple[VirtualService, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "services": [s.to_dict() for s in self.services]}
