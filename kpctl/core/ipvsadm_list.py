"""`ipvsadm -Ln [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact]`, byte for byte.

Widths, words and the sort order follow ipvsadm 1.31 (ipvsadm.c print_title /
print_service_entry / print_largenum, libipvs ipvs_cmp_services / ipvs_cmp_dests).
The order is reproduced exactly, quirks included: ipvsadm compares addresses by a
32-bit wrapping subtraction and sorts with glibc's merge sort, so the kernel's dump
order (kept by the backend in ``table.services`` and ``service.servers``) matters.
"""

from __future__ import annotations

import ipaddress
import struct
from operator import attrgetter
from typing import Any, TypeVar
from collections.abc import Callable, Iterable, Sequence

from kpctl.core.address import format_addrport, pack_address
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
# what the default view shows of a real server after its address (ipvsadm -Ln, kpctl ipvs list -o plain)
DEFAULT_TAIL = attrgetter("forward", "weight", "active_conns", "inactive_conns")

T = TypeVar("T")


def _i32(value: int) -> int:
    """C's (int) of an unsigned 32-bit difference."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _words_of(packed: bytes) -> tuple[int, ...]:
    """A packed address as 4 host-order 32-bit words of union nf_inet_addr (IPv4 in word 0)."""
    return _WORDS.unpack(packed.ljust(16, b"\0"))


def _cmp_addr(family: str, a: tuple[int, ...], b: tuple[int, ...]) -> int:
    count = 4 if family == "inet6" else 1
    result = 0
    for i in range(count):
        result = _i32(a[i] - b[i])
        if result:
            break
    return result


# What ipvsadm's order reads of a service or real server:
# (fwmark, address family number, protocol number, family, packed address, port).
Fields = tuple[int, int, int, str, bytes, int]


def _service_fields(s: VirtualService) -> Fields:
    return s.fwmark, _AF.get(s.family, 0), _PROTO.get(s.protocol, 0), s.family, pack_address(s.address), s.port


def _server_fields(d: RealServer) -> Fields:
    return 0, 0, 0, d.family, pack_address(d.address), d.port


def _compare(a: Fields, b: Fields) -> int:
    """libipvs's ipvs_cmp_services (and ipvs_cmp_dests: address and port, the rest is 0 for servers)."""
    return (_i32(a[0] - b[0]) or a[1] - b[1] or a[2] - b[2]
            or _cmp_addr(a[3], _words_of(a[4]), _words_of(b[4])) or a[5] - b[5])


def compare_services(s1: VirtualService, s2: VirtualService) -> int:
    return _compare(_service_fields(s1), _service_fields(s2))


def compare_servers(d1: RealServer, d2: RealServer) -> int:
    return _compare(_server_fields(d1), _server_fields(d2))


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
    scheduler, flags = service.scheduler, service.flags
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


def service_title(service: VirtualService) -> str:
    family, protocol, address, port, fwmark = service.key
    if fwmark:
        return f"FWM  {fwmark_text(fwmark)}" + (" IPv6" if family == "inet6" else "")
    name = f"{(protocol or '?').upper():<4} {format_addrport(family, address or '', port)}"
    return name if family == "inet6" else name[:33]


def netmask_text(service: VirtualService) -> str | None:
    """The persistence mask if not the default (/32 or /128), as ipvsadm prints it."""
    family, netmask = service.family, service.netmask
    if family == "inet6":
        return None if netmask == 128 else str(netmask)
    if netmask == 0xFFFFFFFF:
        return None
    return str(ipaddress.IPv4Address(netmask & 0xFFFFFFFF))


def _service_line(service: VirtualService, view: str, exact: bool) -> str:
    name = service_title(service)
    if view == "stats":
        return f"{name:<33}" + "".join(largenum(v, exact) for v in service.stats[:5])
    if view == "rate":
        return f"{name:<33}" + "".join(largenum(v, exact) for v in service.stats[5:])
    flags = service.flags
    line = f"{name} {service.scheduler}"
    if flags & _SCHED_BITS:
        line += f" ({sched_flag_words(service)})"
    if flags & SVC_F_PERSISTENT:
        line += f" persistent {service.timeout}"
        mask = netmask_text(service)
        if mask is not None:
            line += f" mask {mask}"
        if service.pe_name:
            line += f" pe {service.pe_name}"
    if flags & SVC_F_ONEPACKET:
        line += " ops"
    return line


def tunnel_info(server: RealServer) -> str:
    """The TunnelInfo column of `ipvsadm -Ln --tun-info`."""
    if server.forward != "tunnel":
        return "n/a"
    tun_type, tun_port, tun_flags = server.tun_type, server.tun_port, server.tun_flags
    flags = _TUN_FLAG_WORDS[tun_flags] if 0 <= tun_flags < 3 else "(null)"
    if tun_type == "gue":
        return f"gue:{tun_port}:{flags}"[:15]
    if tun_type == "gre":
        return f"gre:{flags}"
    if tun_type == "ipip":
        return "ipip"
    return "n/a"


def _server_name(server: RealServer) -> str:
    """``ADDR:PORT`` as ipvsadm prints a real server (an IPv4 one cut at 28 characters, as there)."""
    name = server_address(server)
    return name if server.family == "inet6" else name[:28]


def _server_lines(servers: Iterable[RealServer], view: str, exact: bool, tails: dict[Any, str]) -> list[str]:
    """print_service_entry's line per real server (the default view is the hot path of big tables).

    ``tails``: the text after the address of default-view lines, by (forward, weight, active,
    inactive): most servers of a big table share a few (C's printf formats, as %).
    """
    fwd_title = _FWD_TITLE.get
    if view == "default":
        lines = []
        for s in servers:
            key = DEFAULT_TAIL(s)
            tail = tails.get(key)
            if tail is None:
                tail = tails[key] = "%-7s %-6d %-10d %-10d" % (fwd_title(key[0], "(null)"), key[1], key[2], key[3])
            lines.append("  -> %-28s %s" % (_server_name(s), tail))
        return lines
    lines = []
    for s in servers:
        head = f"  -> {_server_name(s):<28}"
        stats = s.stats
        if view == "stats":
            lines.append(head + "".join(largenum(v, exact) for v in stats[:5]))
        elif view == "rate":
            lines.append(f"{head} {stats.cps:8d} {stats.inpps:8d} {stats.outpps:8d}"
                         + largenum(stats.inbps, exact) + largenum(stats.outbps, exact))
        elif view == "thresholds":
            lines.append(f"{head} {s.upper_threshold:<10d} {s.lower_threshold:<10d} {s.active_conns:<10d} "
                         f"{s.inactive_conns:<10d}")
        elif view == "persistent-conn":
            lines.append(f"{head} {s.weight:<9d} {s.persistent_conns:<11d} {s.active_conns:<10d} "
                         f"{s.inactive_conns:<10d}")
        else:  # tun-info
            lines.append(f"{head} {fwd_title(s.forward, '(null)'):<7} {tunnel_info(s):<13} {s.weight:<6d} "
                         f"{s.active_conns:<10d} {s.inactive_conns:<10d}")
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


def _service_entry(service: VirtualService, view: str, exact: bool, tails: dict[Any, str] | None = None) -> str:
    lines = _server_lines(sorted_servers(service), view, exact, {} if tails is None else tails)
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


def _word_starts(families: Sequence[str], words: list[tuple[int, ...]]) -> dict[str, list[int]] | None:
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


def _ipvsadm_order(items: Sequence[T], fields: Callable[[T], Fields], servers: bool) -> list[T]:
    """ipvsadm's order of services (or of one service's ``servers``): glibc's merge sort with
    libipvs's wrapping compare, as a keyed sort when that compare is a total order (the usual case)."""
    if len(items) <= 1:
        return list(items)
    found = list(map(fields, items))
    marks, _, _, families, packed, _ = zip(*found)  # (in C: the common case below is a few C calls)
    if not any(marks) and families.count("inet") == len(found) and _near_ipv4(packed):
        # IPv4 within half the 32-bit circle, no marks: the wrapping compare is the plain one, the
        # fields' order (mark, family equal: protocol, address bytes, port), ties by position (a stable sort)
        return list(map(items.__getitem__, sorted(range(len(found)), key=found.__getitem__)))
    words = [_words_of(f[4]) for f in found]
    # servers are compared without their family: of mixed families, no key reproduces that
    starts = None if servers and len(set(families)) > 1 else _word_starts(families, words)
    mark_start = _arc_start(f[0] for f in found)
    if starts is None or mark_start is None:
        return [items[i] for i in glibc_sort(range(len(found)), lambda i, j: _compare(found[i], found[j]))]
    return [items[i] for i in sorted(range(len(found)), key=lambda i: (
        (found[i][0] - mark_start) & 0xFFFFFFFF, found[i][1], found[i][2],
        _rebased(families[i], words[i], starts), found[i][5]))]


def sorted_services(table: IPVSTable) -> list[VirtualService]:
    """The table's services in ipvsadm's order."""
    return _ipvsadm_order(table.services, _service_fields, servers=False)


def sorted_servers(service: VirtualService) -> list[RealServer]:
    """A service's real servers in ipvsadm's order."""
    return _ipvsadm_order(service.servers, _server_fields, servers=True)


def _near_ipv4(packed: Sequence[bytes]) -> bool:
    """Whether the addresses ``packed`` are all IPv4 and within half the 32-bit circle, where
    libipvs's wrapping compare of addresses is the plain one."""
    return set(map(len, packed)) == _FOUR and \
        int.from_bytes(max(packed), "big") - int.from_bytes(min(packed), "big") < _HALF_CIRCLE


_FOUR = {4}


def format_ipvsadm(table: IPVSTable, view: str = "default", exact: bool = False,
                   only: ServiceKey | None = None) -> str:
    """What ``ipvsadm -Ln`` (or ``ipvsadm -Ln -t/-u/-f SERVICE`` when ``only``) prints."""
    if view not in VIEWS:
        raise ValueError(f"unknown ipvsadm view {view!r}")
    if only is not None:
        for service in table.services:
            if service.key == only:
                return title(view) + _service_entry(service, view, exact)
        raise NotFound(f"service {only} does not exist")
    head = f"IP Virtual Server version {table.info.version} (size={table.info.conn_table_size})\n"
    tails: dict[Any, str] = {}
    return head + title(view) + "".join(_service_entry(s, view, exact, tails) for s in sorted_services(table))


# -- ipvsadm -Sn: the rules that rebuild the table ------------------------------------------------
_PROTO_OPTION = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}
_FWD_SWITCH = {"masq": "-m", "tunnel": "-i", "local": "-g", "route": "-g"}
_TUN_FLAG_OPTIONS = ("--tun-nocsum", "--tun-csum", "--tun-remcsum")


def service_option(key: ServiceKey) -> str:
    """``-t 10.0.0.1:80`` / ``--sctp-service [fd00::1]:80`` / ``-f 100 -6``."""
    if key.fwmark:
        return f"-f {fwmark_text(key.fwmark)}" + (" -6" if key.family == "inet6" else "")
    option = _PROTO_OPTION.get(key.protocol or "", "--xxx-service")
    return f"{option} {format_addrport(key.family, key.address or '', key.port)}"


def server_address(server: RealServer) -> str:
    return format_addrport(server.family, server.address, server.port)


def service_rule(service: VirtualService, command: str = "-A") -> str:
    line = f"{command} {service_option(service.key)} -s {service.scheduler}"
    if service.persistent:
        line += f" -p {service.timeout}"
        mask = netmask_text(service)
        if mask is not None:
            line += f" -M {mask}"
    if service.pe_name:
        line += f" --pe {service.pe_name}"
    if service.one_packet:
        line += " -o"
    if service.flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3):
        line += f" -b {sched_flag_words(service)}"
    return line


def server_rule(key: ServiceKey, server: RealServer, command: str = "-a", thresholds: bool = True) -> str:
    """One ``-a`` line; ipvsadm -S never writes thresholds, so format_save passes ``thresholds=False``."""
    line = (f"{command} {service_option(key)} -r {server_address(server)} "
            f"{_FWD_SWITCH.get(server.forward, '(null)')} -w {server.weight}")
    if server.forward == "tunnel":
        flags = _TUN_FLAG_OPTIONS[server.tun_flags] if 0 <= server.tun_flags < 3 else "(null)"
        if server.tun_type == "gre":
            line += f" --tun-type gre {flags}"
        elif server.tun_type == "gue":
            line += f" --tun-type gue --tun-port {server.tun_port} {flags}"
        elif server.tun_type == "ipip":
            line += " --tun-type ipip"
    if thresholds:
        if server.upper_threshold:
            line += f" -x {server.upper_threshold}"
        if server.lower_threshold:
            line += f" -y {server.lower_threshold}"
    return line


def format_save(table: IPVSTable) -> str:
    """What ``ipvsadm -Sn`` prints for ``table``."""
    lines: list[str] = []
    for service in sorted_services(table):
        lines.append(service_rule(service))
        for server in sorted_servers(service):
            lines.append(server_rule(service.key, server, thresholds=False))
    return "".join(line + "\n" for line in lines)
