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
from typing import Any, TypeVar
from collections.abc import Callable, Iterable, Sequence

from kpctl.core.address import format_addrport
from kpctl.errors import NotFound
from kpctl.model.ipvs import (
    SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, IPVSTable, RealServer, ServiceKey, VirtualService,
)

VIEWS: tuple[str, ...] = ("default", "stats", "rate", "thresholds", "persistent-conn", "tun-info")
_SCHED_BITS = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3
_AF = {"inet": 2, "inet6": 10}
_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, None: 6}  # fwmark services carry TCP, as ipvsadm sends
_FWD_TITLE = {"masq": "Masq", "local": "Local", "tunnel": "Tunnel", "route": "Route"}
_TUN_FLAG_WORDS = ("-c", "+c", "r+c")
_FIRST_HEADER = "Prot LocalAddress:Port"

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
    packed = ipaddress.ip_address(address).packed
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
    if service.scheduler == "sh":
        names = [(SVC_F_SCHED1, "sh-fallback"), (SVC_F_SCHED2, "sh-port")]
    elif service.scheduler == "mh":
        names = [(SVC_F_SCHED1, "mh-fallback"), (SVC_F_SCHED2, "mh-port")]
    else:
        names = [(SVC_F_SCHED1, "flag-1"), (SVC_F_SCHED2, "flag-2"), (SVC_F_SCHED3, "flag-3")]
    return ",".join(name for bit, name in names if service.flags & bit)


def fwmark_text(mark: int) -> str:
    """ipvsadm 1.31 prints the mark with %d: marks above 2^31-1 come out negative."""
    return str(_i32(mark))


def service_name(service: VirtualService) -> str:
    if service.fwmark:
        return f"FWM  {fwmark_text(service.fwmark)}" + (" IPv6" if service.family == "inet6" else "")
    name = f"{(service.protocol or '?').upper():<4} {format_addrport(service.family, service.address or '', service.port)}"
    return name if service.family == "inet6" else name[:33]


def netmask_text(service: VirtualService) -> str | None:
    """The persistence mask if not the default (/32 or /128), as ipvsadm prints it."""
    if service.family == "inet6":
        return None if service.netmask == 128 else str(service.netmask)
    if service.netmask == 0xFFFFFFFF:
        return None
    return str(ipaddress.IPv4Address(service.netmask & 0xFFFFFFFF))


def _service_line(service: VirtualService, view: str, exact: bool) -> str:
    name = service_name(service)
    if view == "stats":
        s = service.stats
        return f"{name:<33}" + "".join(largenum(v, exact) for v in (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes))
    if view == "rate":
        s = service.stats
        return f"{name:<33}" + "".join(largenum(v, exact) for v in (s.cps, s.inpps, s.outpps, s.inbps, s.outbps))
    line = f"{name} {service.scheduler}"
    if service.flags & _SCHED_BITS:
        line += f" ({sched_flag_words(service)})"
    if service.persistent:
        line += f" persistent {service.timeout}"
        mask = netmask_text(service)
        if mask is not None:
            line += f" mask {mask}"
        if service.pe_name:
            line += f" pe {service.pe_name}"
    if service.one_packet:
        line += " ops"
    return line


def tunnel_info(server: RealServer) -> str:
    if server.forward != "tunnel":
        return "n/a"
    flags = _TUN_FLAG_WORDS[server.tun_flags] if 0 <= server.tun_flags < 3 else "(null)"
    if server.tun_type == "gue":
        return f"gue:{server.tun_port}:{flags}"[:15]
    if server.tun_type == "gre":
        return f"gre:{flags}"
    if server.tun_type == "ipip":
        return "ipip"
    return "n/a"


def _server_line(server: RealServer, view: str, exact: bool) -> str:
    name = format_addrport(server.family, server.address, server.port)
    if server.family != "inet6":
        name = name[:28]
    head = f"  -> {name:<28}"
    fwd = _FWD_TITLE.get(server.forward, "(null)")
    if view == "stats":
        s = server.stats
        return head + "".join(largenum(v, exact) for v in (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes))
    if view == "rate":
        s = server.stats
        return f"{head} {s.cps:8d} {s.inpps:8d} {s.outpps:8d}" + largenum(s.inbps, exact) + largenum(s.outbps, exact)
    if view == "thresholds":
        return (f"{head} {server.upper_threshold:<10d} {server.lower_threshold:<10d} "
                f"{server.active_conns:<10d} {server.inactive_conns:<10d}")
    if view == "persistent-conn":
        return (f"{head} {server.weight:<9d} {server.persistent_conns:<11d} "
                f"{server.active_conns:<10d} {server.inactive_conns:<10d}")
    if view == "tun-info":
        return (f"{head} {fwd:<7} {tunnel_info(server):<13} {server.weight:<6d} "
                f"{server.active_conns:<10d} {server.inactive_conns:<10d}")
    return f"{head} {fwd:<7} {server.weight:<6d} {server.active_conns:<10d} {server.inactive_conns:<10d}"


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


def format_service_entry(service: VirtualService, view: str = "default", exact: bool = False) -> str:
    lines = [_service_line(service, view, exact)]
    for server in sorted_servers(service):
        lines.append(_server_line(server, view, exact))
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
    if view not in VIEWS:
        raise ValueError(f"unknown ipvsadm view {view!r}")
    if only is not None:
        for service in table.services:
            if service.key == only:
                return title(view) + format_service_entry(service, view, exact)
        raise NotFound(f"service {only} does not exist")
    head = f"IP Virtual Server version {table.info.version} (size={table.info.conn_table_size})\n"
    return head + title(view) + "".join(format_service_entry(s, view, exact) for s in sorted_services(table))
