"""The IPVS table as rows: one tuple per service and per real server instead of model objects.

A listing of 10,000 services × 5 servers builds 60,000 servers and services and as many
:class:`~kpctl.model.ipvs.Stats`; as frozen dataclasses that cost more than reading the table
from the kernel.  The ``-o plain`` and ``-o ipvsadm`` listings (and the live backend's reader)
work on these rows instead; :func:`rows_of` and :func:`table_of` convert to and from the model
exactly (``table_of(rows_of(t)) == t``), so any other format still gets model objects.

A server row holds the :class:`~kpctl.model.ipvs.RealServer` fields in their declared order,
its :class:`~kpctl.model.ipvs.Stats` counters flattened after them, then two derived values:
the address packed (the sort key of ipvsadm's order) and ``ADDR:PORT`` as ipvsadm prints it.
A service row holds the :class:`~kpctl.model.ipvs.VirtualService` fields in order (``servers``
a list of server rows), its counters flattened, then its packed address.
"""

from __future__ import annotations

from socket import AF_INET, AF_INET6, inet_ntop
from typing import Any

from kpctl.core.address import format_address, format_addrport, pack_address
from kpctl.model.ipvs import (
    IPVSInfo,
    IPVSTable,
    RealServer,
    ServiceKey,
    Stats,
    VirtualService,
)

ServerRow = tuple[Any, ...]
ServiceRow = tuple[Any, ...]

# -- a server row: RealServer's fields, then its Stats, then derived values ------------------
(ADDRESS, PORT, FAMILY, FORWARD, WEIGHT, UPPER, LOWER, ACTIVE, INACTIVE, PERSIST,
 TUN_TYPE, TUN_PORT, TUN_FLAGS) = range(13)
STATS = 13  # conns inpkts outpkts inbytes outbytes cps inpps outpps inbps outbps: Stats' field order
PACKED = 23  # the address as 4 or 16 bytes (b"" if none): ipvsadm sorts by it
NAME = 24  # "10.0.0.1:80" / "[fd00::1]:80": format_addrport(family, address, port)

# -- a service row: VirtualService's fields (servers a list of server rows), then Stats, then derived
(S_FAMILY, S_PROTOCOL, S_ADDRESS, S_PORT, S_FWMARK, S_SCHEDULER, S_FLAGS, S_TIMEOUT, S_NETMASK, S_PE_NAME,
 S_SERVERS) = range(11)
S_STATS = 11
S_PACKED = 21

STATS_COUNT = 10


class TableRows:
    """The IPVS table as rows, in the kernel's dump order (services, and servers per service).

    A plain class: a dataclass is made at import, which costs a listing's start-up time.
    """

    __slots__ = ("info", "services")

    def __init__(self, info: IPVSInfo, services: list[ServiceRow]) -> None:
        self.info, self.services = info, services

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TableRows):
            return NotImplemented
        return (self.info, self.services) == (other.info, other.services)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TableRows(info={self.info!r}, services={self.services!r})"


def server_address(packed: bytes, port: int) -> tuple[str, str, str]:
    """A server row's ADDRESS, FAMILY and NAME from the address packed (4 or 16 bytes) and the
    port, as the kernel's replies and texts give them: NAME is format_addrport's text (inet_ntop
    writes an IPv4 address as format_address does, so that one is not converted twice)."""
    if len(packed) == 16:
        address = inet_ntop(AF_INET6, packed)
        return address, "inet6", f"[{format_address('inet6', address)}]:{port}"
    address = inet_ntop(AF_INET, packed)
    return address, "inet", f"{address}:{port}"


def _stats_values(stats: Stats) -> tuple[int, ...]:
    return (stats.conns, stats.inpkts, stats.outpkts, stats.inbytes, stats.outbytes,
            stats.cps, stats.inpps, stats.outpps, stats.inbps, stats.outbps)


def server_row(server: RealServer) -> ServerRow:
    return (server.address, server.port, server.family, server.forward, server.weight, server.upper_threshold,
            server.lower_threshold, server.active_conns, server.inactive_conns, server.persistent_conns,
            server.tun_type, server.tun_port, server.tun_flags, *_stats_values(server.stats),
            pack_address(server.address), format_addrport(server.family, server.address, server.port))


def service_row(service: VirtualService) -> ServiceRow:
    return (service.family, service.protocol, service.address, service.port, service.fwmark, service.scheduler,
            service.flags, service.timeout, service.netmask, service.pe_name,
            [server_row(server) for server in service.servers], *_stats_values(service.stats),
            pack_address(service.address))


def rows_of(table: IPVSTable) -> TableRows:
    return TableRows(table.info, [service_row(service) for service in table.services])


def server_of(row: ServerRow) -> RealServer:
    return RealServer(*row[:STATS], stats=Stats(*row[STATS:PACKED]))  # type: ignore[misc]


def service_of(row: ServiceRow) -> VirtualService:
    return VirtualService(*row[:S_SERVERS], servers=tuple(server_of(s) for s in row[S_SERVERS]),  # type: ignore[misc]
                          stats=Stats(*row[S_STATS:S_PACKED]))


def table_of(rows: TableRows) -> IPVSTable:
    return IPVSTable(rows.info, tuple(service_of(row) for row in rows.services))


def key_of(row: ServiceRow) -> ServiceKey:
    return ServiceKey._make(row[S_FAMILY:S_SCHEDULER])
