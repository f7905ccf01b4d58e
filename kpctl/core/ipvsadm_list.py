"""`ipvsadm -Ln [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact]`, byte for byte.

Widths, words and the sort order follow ipvsadm 1.31 (ipvsadm.c print_title /
print_service_entry / print_largenum, libipvs ipvs_cmp_services / ipvs_cmp_dests).
The order is reproduced exactly, quirks included: ipvsadm compares addresses by a
32-bit wrapping subtraction and sorts with glibc's merge sort, so the kernel's dump
order (kept by the backend in ``table.services`` and ``service.servers``) matters.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from operator import itemgetter
from typing import Any, TypeVar
from collections.abc import Callable, Iterable, Sequence

from kpctl.core import ipvs_rows as R
from kpctl.core.address import format_addrport, pack_address
from kpctl.core.ipvs_rows import ServerRow, ServiceRow, TableRows
from kpctl.errors import NotFound
from kpctl.model.ipvs import (
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, IPVSTable, RealServer, ServiceKey, VirtualService,
)

VIEWS: tuple[str, ...] = ("default", "stats", "rate", "thresholds", "persistent-conn", "tun-info")
_SCHED_BITS = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3
_AF = {"inet": 2, "inet6": 10}
_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, None: 6}  # fwmark services carry TCP, as ipvsadm sends
_FWD_TITLE = {"masq": "Masq", "local": "Local", "tunnel": "Tunnel", "route": "Route"}
_TUN_FLAG_WORDS = ("-c", "+c", "r+c")
_FIRST_HEADER = "Prot LocalAddress:Port"
_HALF_CIRCLE = 1 << 31
_WORDS = struct.Struct(">4I")
_SERVER_KEY = itemgetter(R.PACKED, R.PORT)
_DEFAULT_TAIL = itemgetter(R.FORWARD, R.WEIGHT, R.ACTIVE, R.INACTIVE)

T = TypeVar("T")


def _i32(value: int) -> int:
    """C's (int) of an unsigned 32-bit difference."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


@functools.lru_cache(maxsize=65536)
def _words(family: str, address: str | None) -> tuple[int, ...]:
    """The address as 4 host-order 32-bit words of union nf_inet_addr (IPv4 in word 0)."""
    if not address:
        return (0, 0, 0, 0)
    packed = pack_address(address)
    packed = packed + bytes(16 - len(packed))
    return tuple(int.from_bytes(packed[i:i + 4], "big") for i in range(0, 16, 4))


def _cmp_addr(family: str, a: tuple[int, ...], b: tuple[int, ...]) -> int:
    count = 4 if family == "inet6" else 1
    result = 0
    for i in range(count):
        result = _i32(a[i] - b[i])
        if result:
            break
    return result


def compare_services(s1: VirtualService, s2: VirtualService) -> int:
    result = _i32(s1.fwmark - s2.fwmark)
    if result:
        return result
    result = _AF.get(s1.family, 0) - _AF.get(s2.family, 0)
    if result:
        return result
    result = _PROTO.get(s1.protocol, 0) - _PROTO.get(s2.protocol, 0)
    if result:
        return result
    result = _cmp_addr(s1.family, _words(s1.family, s1.address), _words(s2.family, s2.address))
    if result:
        return result
    return s1.port - s2.port


def compare_servers(d1: RealServer, d2: RealServer) -> int:
    result = _cmp_addr(d1.family, _words(d1.family, d1.address), _words(d2.family, d2.address))
    if result:
        return result
    return d1.port - d2.port


def glibc_sort(items: Sequence[T], compare: Callable[[T, T], int]) -> list[T]:
    """glibc qsort's merge sort (msort_with_tmp): same result as ipvsadm even for cyclic orders."""
    if len(items) <= 1:
        return list(items)
    half = len(items) // 2
    left, right = glibc_sort(items[:half], compare), glibc_sort(items[half:], compare)
    merged: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if compare(left[i], right[j]) <= 0:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged + left[i:] + right[j:]


def largenum(value: int, exact: bool) -> str:
    """print_largenum: 9 columns, K/M/G/T abbreviations unless --exact."""
    if exact:
        digits = str(value)
        return digits.rjust(9 if len(digits) <= 8 else len(digits) + 1)
    if value < 100_000_000:
        return f"{value:9d}"
    if value < 1_000_000_000:
        return f"{value // 1000:8d}K"
    if value < 100_000_000_000:
        return f"{value // 1_000_000:8d}M"
    if value < 100_000_000_000_000:
        return f"{value // 1_000_000_000:8d}G"
    return f"{value // 1_000_000_000_000:8d}T"


def sched_flag_words(service: VirtualService) -> str:
    """print_sched_flags: names depend on the scheduler (sh-/mh- aliases)."""
    return scheduler_flag_words(service.scheduler, service.flags)


def scheduler_flag_words(scheduler: str, flags: int) -> str:
    if scheduler == "sh":
        names = [(SVC_F_SCHED1, "sh-fallback"), (SVC_F_SCHED2, "sh-port")]
    elif scheduler == "mh":
        names = [(SVC_F_SCHED1, "mh-fallback"), (SVC_F_SCHED2, "mh-port")]
    else:
        names = [(SVC_F_SCHED1, "flag-1"), (SVC_F_SCHED2, "flag-2"), (SVC_F_SCHED3, "flag-3")]
    return ",".join(name for bit, name in names if flags & bit)


def fwmark_text(mark: int) -> str:
    """ipvsadm 1.31 prints the mark with %d: marks above 2^31-1 come out negative."""
    return str(_i32(mark))


def service_title(family: str, protocol: str | None, address: str | None, port: int, fwmark: int) -> str:
    if fwmark:
        return f"FWM  {fwmark_text(fwmark)}" + (" IPv6" if family == "inet6" else "")
    name = f"{(protocol or '?').upper():<4} {format_addrport(family, address or '', port)}"
    return name if family == "inet6" else name[:33]


def netmask_text(service: VirtualService) -> str | None:
    """The persistence mask if not the default (/32 or /128), as ipvsadm prints it."""
    return mask_text(service.family, service.netmask)


def mask_text(family: str, netmask: int) -> str | None:
    if family == "inet6":
        return None if netmask == 128 else str(netmask)
    if netmask == 0xFFFFFFFF:
        return None
    return str(ipaddress.IPv4Address(netmask & 0xFFFFFFFF))


def _service_line(service: ServiceRow, view: str, exact: bool) -> str:
    if service[R.S_FAMILY] == "inet" and not service[R.S_FWMARK] and len(service[R.S_PACKED]) == 4:
        # a valid IPv4 address: format_address would give it back as it is
        name = f"{(service[R.S_PROTOCOL] or '?').upper():<4} {service[R.S_ADDRESS]}:{service[R.S_PORT]}"[:33]
    else:
        name = service_title(*service[R.S_FAMILY:R.S_SCHEDULER])
    if view == "stats":
        return f"{name:<33}" + "".join(largenum(v, exact) for v in service[R.S_STATS:R.S_STATS + 5])
    if view == "rate":
        return f"{name:<33}" + "".join(largenum(v, exact) for v in service[R.S_STATS + 5:R.S_PACKED])
    flags = service[R.S_FLAGS]
    line = f"{name} {service[R.S_SCHEDULER]}"
    if flags & _SCHED_BITS:
        line += f" ({scheduler_flag_words(service[R.S_SCHEDULER], flags)})"
    if flags & SVC_F_PERSISTENT:
        line += f" persistent {service[R.S_TIMEOUT]}"
        mask = mask_text(service[R.S_FAMILY], service[R.S_NETMASK])
        if mask is not None:
            line += f" mask {mask}"
        if service[R.S_PE_NAME]:
            line += f" pe {service[R.S_PE_NAME]}"
    if flags & SVC_F_ONEPACKET:
        line += " ops"
    return line


def tunnel_info(server: RealServer) -> str:
    return tunnel_text(server.forward, server.tun_type, server.tun_port, server.tun_flags)


def tunnel_text(forward: str, tun_type: str, tun_port: int, tun_flags: int) -> str:
    if forward != "tunnel":
        return "n/a"
    flags = _TUN_FLAG_WORDS[tun_flags] if 0 <= tun_flags < 3 else "(null)"
    if tun_type == "gue":
        return f"gue:{tun_port}:{flags}"[:15]
    if tun_type == "gre":
        return f"gre:{flags}"
    if tun_type == "ipip":
        return "ipip"
    return "n/a"


def _server_lines(servers: Iterable[ServerRow], view: str, exact: bool, tails: dict[Any, str]) -> list[str]:
    """print_service_entry's line per real server (the default view is the hot path of big tables).

    ``tails``: the text after the address of default-view lines, by (forward, weight, active,
    inactive): most servers of a big table share a few (C's printf formats, as %).
    """
    fwd_title = _FWD_TITLE.get
    if view == "default":
        lines = []
        for s in servers:
            key = _DEFAULT_TAIL(s)
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = "%-7s %-6d %-10d %-10d" % (fwd_title(key[0], "(null)"), key[1], key[2], key[3])
            lines.append("  -> %-28s %s" % (s[R.NAME] if s[R.FAMILY] == "inet6" else s[R.NAME][:28], tail))
        return lines
    lines = []
    for s in servers:
        name = s[R.NAME] if s[R.FAMILY] == "inet6" else s[R.NAME][:28]
        head = f"  -> {name:<28}"
        if view == "stats":
            lines.append(head + "".join(largenum(v, exact) for v in s[R.STATS:R.STATS + 5]))
        elif view == "rate":
            lines.append(f"{head} {s[R.STATS + 5]:8d} {s[R.STATS + 6]:8d} {s[R.STATS + 7]:8d}"
                         + largenum(s[R.STATS + 8], exact) + largenum(s[R.STATS + 9], exact))
        elif view == "thresholds":
            lines.append(f"{head} {s[R.UPPER]:<10d} {s[R.LOWER]:<10d} {s[R.ACTIVE]:<10d} {s[R.INACTIVE]:<10d}")
        elif view == "persistent-conn":
            lines.append(f"{head} {s[R.WEIGHT]:<9d} {s[R.PERSIST]:<11d} {s[R.ACTIVE]:<10d} {s[R.INACTIVE]:<10d}")
        else:  # tun-info
            tunnel = tunnel_text(s[R.FORWARD], s[R.TUN_TYPE], s[R.TUN_PORT], s[R.TUN_FLAGS])
            lines.append(f"{head} {fwd_title(s[R.FORWARD], '(null)'):<7} {tunnel:<13} {s[R.WEIGHT]:<6d} "
                         f"{s[R.ACTIVE]:<10d} {s[R.INACTIVE]:<10d}")
    return lines


def title(view: str) -> str:
    arrow = "  -> RemoteAddress:Port\n"
    if view == "stats":
        return f"{_FIRST_HEADER:<33} {'Conns':>8} {'InPkts':>8} {'OutPkts':>8} {'InBytes':>8} {'OutBytes':>8}\n" + arrow
    if view == "rate":
        return f"{_FIRST_HEADER:<33} {'CPS':>8} {'InPPS':>8} {'OutPPS':>8} {'InBPS':>8} {'OutBPS':>8}\n" + arrow
    if view == "thresholds":
        return (f"{_FIRST_HEADER:<33} {'Uthreshold':<10} {'Lthreshold':<10} {'ActiveConn':<10} {'InActConn':<10}\n"
                + arrow)
    if view == "persistent-conn":
        return (f"{_FIRST_HEADER:<33} {'Weight':<9} {'PersistConn':<11} {'ActiveConn':<10} {'InActConn':<10}\n"
                + arrow)
    if view == "tun-info":
        return ("Prot LocalAddress:Port Scheduler Flags\n"
                "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
    return ("Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")


def _service_entry(service: ServiceRow, view: str, exact: bool,
                   order: Callable[[Sequence[ServerRow]], list[ServerRow]] | None = None,
                   tails: dict[Any, str] | None = None) -> str:
    servers = (order or order_servers)(service[R.S_SERVERS])
    lines = _server_lines(servers, view, exact, {} if tails is None else tails)
    lines.insert(0, _service_line(service, view, exact))
    return "\n".join(lines) + "\n"


def _arc_start(values: Iterable[int]) -> int | None:
    """Where the wrapping order starts if all ``values`` lie within half the 32-bit circle, else None.

    Inside such an arc, "int32(a - b) < 0" is an ordinary total order: by distance from its start.
    """
    distinct = sorted(set(values))
    if len(distinct) <= 1:
        return distinct[0] if distinct else 0
    gap, start = distinct[0] + (1 << 32) - distinct[-1], distinct[0]
    for previous, current in zip(distinct, distinct[1:]):
        if current - previous > gap:
            gap, start = current - previous, current
    return start if gap > 1 << 31 else None


def _word_starts(families: list[str], words: list[tuple[int, ...]]) -> dict[str, list[int]] | None:
    starts: dict[str, list[int]] = {}
    for family, count in (("inet", 1), ("inet6", 4)):
        chosen = [w for f, w in zip(families, words) if f == family]
        for index in range(count):
            start = _arc_start(w[index] for w in chosen)
            if start is None:
                return None
            starts.setdefault(family, []).append(start)
    return starts


def _rebased(family: str, words: tuple[int, ...], starts: dict[str, list[int]]) -> tuple[int, ...]:
    return tuple((w - s) & 0xFFFFFFFF for w, s in zip(words, starts[family]))


def sorted_services(table: IPVSTable) -> list[VirtualService]:
    """ipvsadm's order; a plain keyed sort when the wrapping compare is a total order (the usual case)."""
    services = table.services
    words = [_words(s.family, s.address) for s in services]
    starts = _word_starts([s.family for s in services], words)
    mark_start = _arc_start(s.fwmark for s in services)
    if starts is None or mark_start is None:
        return glibc_sort(services, compare_services)

    def key(item: tuple[VirtualService, tuple[int, ...]]) -> tuple[Any, ...]:
        s, w = item
        return ((s.fwmark - mark_start) & 0xFFFFFFFF, _AF.get(s.family, 0), _PROTO.get(s.protocol, 0),
                _rebased(s.family, w, starts), s.port)

    return [s for s, _ in sorted(zip(services, words), key=key)]


def sorted_servers(service: VirtualService) -> list[RealServer]:
    """ipvsadm's order of a service's real servers (same fast path as :func:`sorted_services`)."""
    servers = service.servers
    families = {s.family for s in servers}
    words = [_words(s.family, s.address) for s in servers]
    starts = _word_starts([s.family for s in servers], words) if len(families) <= 1 else None
    if starts is None:
        return glibc_sort(servers, compare_servers)
    return [s for s, _ in sorted(zip(servers, words), key=lambda i: (_rebased(i[0].family, i[1], starts), i[0].port))]


def format_ipvsadm(table: IPVSTable, view: str = "default", exact: bool = False,
                   only: ServiceKey | None = None) -> str:
    """What ``ipvsadm -Ln`` (or ``ipvsadm -Ln -t/-u/-f SERVICE`` when ``only``) prints."""
    return format_ipvsadm_rows(R.rows_of(table), view, exact, only)


def format_ipvsadm_rows(table: TableRows, view: str = "default", exact: bool = False,
                        only: ServiceKey | None = None) -> str:
    """:func:`format_ipvsadm` of the table as rows (see :mod:`kpctl.core.ipvs_rows`)."""
    if view not in VIEWS:
        raise ValueError(f"unknown ipvsadm view {view!r}")
    if only is not None:
        wanted = R.key_fields(only)
        for service in table.services:
            if service[R.S_FAMILY:R.S_SCHEDULER] == wanted:
                return title(view) + _service_entry(service, view, exact)
        raise NotFound(f"service {only} does not exist")
    head = f"IP Virtual Server version {table.info.version} (size={table.info.conn_table_size})\n"
    order, tails = server_order(table.services), dict[Any, str]()
    return head + title(view) + "".join(_service_entry(s, view, exact, order, tails)
                                        for s in order_services(table.services))



# -- the same orders on rows (kpctl.core.ipvs_rows) -------------------------------------------
def _row_words(packed: bytes) -> tuple[int, ...]:
    """:func:`_words` of a row's packed address."""
    return _WORDS.unpack(packed.ljust(16, b"\0"))


def _within_half_circle(low: bytes, high: bytes) -> bool:
    """Whether the 4-byte addresses from ``low`` to ``high`` span less than half the 32-bit circle.

    Then the wrapping compare orders them as plain numbers (the arc starts at ``low``), and
    4-byte big-endian strings compare as those numbers.
    """
    return int.from_bytes(high, "big") - int.from_bytes(low, "big") < _HALF_CIRCLE


def order_servers(servers: Sequence[ServerRow]) -> list[ServerRow]:
    """:func:`sorted_servers` of a service row's servers."""
    if len(servers) <= 1:
        return list(servers)
    if all(s[R.FAMILY] == "inet" and len(s[R.PACKED]) == 4 for s in servers):  # the usual case
        ordered = sorted(servers, key=_SERVER_KEY)
        if _within_half_circle(ordered[0][R.PACKED], ordered[-1][R.PACKED]):
            return ordered
    words = [_row_words(s[R.PACKED]) for s in servers]
    families = [s[R.FAMILY] for s in servers]
    starts = _word_starts(families, words) if len(set(families)) <= 1 else None
    if starts is None:
        def compare(a: tuple[ServerRow, tuple[int, ...]], b: tuple[ServerRow, tuple[int, ...]]) -> int:
            return _cmp_addr(a[0][R.FAMILY], a[1], b[1]) or a[0][R.PORT] - b[0][R.PORT]

        return [s for s, _ in glibc_sort(list(zip(servers, words)), compare)]
    return [s for s, _ in sorted(zip(servers, words), key=lambda i: (_rebased(i[0][R.FAMILY], i[1], starts), i[0][R.PORT]))]


def _sorted_by_address(servers: Sequence[ServerRow]) -> list[ServerRow]:
    return sorted(servers, key=_SERVER_KEY)


def server_order(services: Sequence[ServiceRow]) -> Callable[[Sequence[ServerRow]], list[ServerRow]]:
    """:func:`order_servers` for the services of one table, checked once for the whole table.

    When every real server of the table is IPv4 and all lie within half the 32-bit circle, so
    do the servers of each service: each is then ordered by a plain sort.
    """
    servers = [s for service in services for s in service[R.S_SERVERS]]
    if not servers or {s[R.FAMILY] for s in servers} != {"inet"} or {len(s[R.PACKED]) for s in servers} != {4}:
        return order_servers
    packed = [s[R.PACKED] for s in servers]
    return _sorted_by_address if _within_half_circle(min(packed), max(packed)) else order_servers


def _service_sort_fields(s: ServiceRow) -> tuple[int, int, int]:
    return s[R.S_FWMARK], _AF.get(s[R.S_FAMILY], 0), _PROTO.get(s[R.S_PROTOCOL], 0)


def order_services(services: Sequence[ServiceRow]) -> list[ServiceRow]:
    """:func:`sorted_services` of service rows."""
    if not services:
        return []
    if all(s[R.S_FAMILY] == "inet" and not s[R.S_FWMARK] and len(s[R.S_PACKED]) == 4 for s in services):
        ordered = sorted(services, key=lambda s: (_PROTO.get(s[R.S_PROTOCOL], 0), s[R.S_PACKED], s[R.S_PORT]))
        if _within_half_circle(min(s[R.S_PACKED] for s in services), max(s[R.S_PACKED] for s in services)):
            return ordered
    words = [_row_words(s[R.S_PACKED]) for s in services]
    starts = _word_starts([s[R.S_FAMILY] for s in services], words)
    mark_start = _arc_start(s[R.S_FWMARK] for s in services)
    if starts is None or mark_start is None:
        def compare(a: tuple[ServiceRow, tuple[int, ...]], b: tuple[ServiceRow, tuple[int, ...]]) -> int:
            (fwmark1, af1, proto1), (fwmark2, af2, proto2) = _service_sort_fields(a[0]), _service_sort_fields(b[0])
            return (_i32(fwmark1 - fwmark2) or af1 - af2 or proto1 - proto2
                    or _cmp_addr(a[0][R.S_FAMILY], a[1], b[1]) or a[0][R.S_PORT] - b[0][R.S_PORT])

        return [s for s, _ in glibc_sort(list(zip(services, words)), compare)]

    def key(item: tuple[ServiceRow, tuple[int, ...]]) -> tuple[Any, ...]:
        s, w = item
        fwmark, af, proto = _service_sort_fields(s)
        return ((fwmark - mark_start) & 0xFFFFFFFF, af, proto, _rebased(s[R.S_FAMILY], w, starts), s[R.S_PORT])

    return [s for s, _ in sorted(zip(services, words), key=key)]
