"""Listings (rows for table/wide/plain, documents for json/yaml, ipvsadm texts) of `kpctl ipvs …`."""

from __future__ import annotations

import ipaddress
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Iterable, Iterator

from kpctl.core.address import addrport, format_addrport
from kpctl.core.ipvsadm_list import (
    DEFAULT_TAIL, format_ipvsadm, largenum, netmask_text, sched_flag_words, server_address, sorted_servers,
    sorted_services, tunnel_info,
)
from kpctl.model.document import OneLineItems
from kpctl.model.ipvs import (
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, Connection, IPVSTable, RealServer, ServiceKey, SyncDaemon, Timeouts,
    VirtualService,
)
from kpctl.output.listing import Column, Listing, MadeRows
from kpctl.output.text import escape_cell

if TYPE_CHECKING:
    from kpctl.core.k8s_names import K8sNames

_STATS = [("CONNS", "conns"), ("INPKTS", "inpkts"), ("OUTPKTS", "outpkts"), ("INBYTES", "inbytes"),
          ("OUTBYTES", "outbytes")]
_FLAGS_MADE_OF = attrgetter("family", "scheduler", "flags", "timeout", "netmask", "pe_name")
_RATES = [("CPS", "cps"), ("INPPS", "inpps"), ("OUTPPS", "outpps"), ("INBPS", "inbps"), ("OUTBPS", "outbps")]


def _columns(view: str) -> list[Column]:
    """Service, scheduler, flags, server, forward, weight, conns; the view adds its own columns,
    and ``wide`` adds the tunnel and the traffic totals."""
    columns = [
        Column("SERVICE", "service"), Column("SCHEDULER", "scheduler"), Column("FLAGS", "flags"),
        Column("SERVER", "server"), Column("FORWARD", "forward"),
        Column("WEIGHT", "weight", justify="right"),
        Column("ACTIVE", "active", justify="right"), Column("INACTIVE", "inactive", justify="right"),
    ]
    if view == "tun-info":
        columns.insert(5, Column("TUNNEL", "tunnel"))
    if view == "persistent-conn":
        columns.append(Column("PERSIST", "persist", justify="right"))
    if view == "thresholds":
        columns += [Column("UPPER", "upper", justify="right"), Column("LOWER", "lower", justify="right")]
    if view == "rate":
        columns += [Column(h, k, justify="right") for h, k in _RATES]
    elif view == "stats":
        columns += [Column(h, k, justify="right") for h, k in _STATS]
    else:
        columns += [Column(h, k, 1, "right") for h, k in _STATS if k in ("conns", "inbytes", "outbytes")]
    return columns


def _v4_mask(mask: str) -> str:
    """``/24`` for a contiguous mask, else the dotted form."""
    try:
        return "/" + str(ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen)
    except ValueError:
        return f"mask {mask}"


def service_flags(service: VirtualService) -> str:
    """The FLAGS cell: persistence (timeout, mask), persistence engine, one-packet, scheduler flags."""
    words = []
    if service.flags & SVC_F_PERSISTENT:
        words.append(f"persistent {service.timeout}s")
        mask = netmask_text(service)
        if mask is not None:
            words.append(f"/{mask}" if service.family == "inet6" else _v4_mask(mask))
    if service.pe_name:
        words.append(f"pe {service.pe_name}")
    if service.flags & SVC_F_ONEPACKET:
        words.append("ops")
    sched = sched_flag_words(service)
    if sched:
        words.append(sched)
    return ", ".join(words)


def _rows(services: Iterable[VirtualService], exact: bool, columns: list[Column]) -> list[dict[str, Any]]:
    """A row per real server (per service without any); each row also holds, beside its cells, the
    service's key and the server's address and port ("service_key", "server_key"): what `--services`
    names them by."""
    shown = {column.key for column in columns}
    wanted = [k for _, k in _STATS + _RATES if k in shown]  # a view's rows format only its own counters

    def counters(stats: Any) -> dict[str, Any]:
        return {k: largenum(getattr(stats, k), exact).strip() for k in wanted}

    rows: list[dict[str, Any]] = []
    for service in services:
        key = service.key
        name, scheduler, flags = str(key), service.scheduler, service_flags(service)
        servers = sorted_servers(service)
        if not servers:
            rows.append({"service": name, "scheduler": scheduler, "flags": flags, **counters(service.stats),
                         "service_key": key, "server_key": None})
        for server in servers:
            row = {
                "service": name, "scheduler": scheduler, "flags": flags, "service_key": key,
                "server_key": (server.address, server.port),
                "server": format_addrport(server.family, server.address, server.port),
                "forward": server.forward, "tunnel": tunnel_info(server), "weight": server.weight,
                "active": server.active_conns, "inactive": server.inactive_conns,
                "persist": server.persistent_conns, "upper": server.upper_threshold,
                "lower": server.lower_threshold,
            }
            if wanted:
                row.update(counters(server.stats))
            rows.append(row)
    return rows


def table_listing(table: IPVSTable, view: str, exact: bool, only: ServiceKey | None = None) -> Listing:
    services = sorted_services(table)
    if only is not None:
        services = [s for s in services if s.key == only]
    shown = IPVSTable(table.info, tuple(services))
    columns = _columns(view)
    return Listing(
        columns=columns, rows=lambda: _rows(services, exact, columns), data=shown.to_dict,
        formats={"ipvsadm": lambda: format_ipvsadm(table, view, exact, only),
                 "save": lambda: _save_text(shown)},
    )


def _save_text(table: IPVSTable) -> str:
    from kpctl.core.ipvsadm_list import format_save

    return format_save(table)


def text_listing(table: IPVSTable, view: str, exact: bool, only: ServiceKey | None, no_headers: bool,
                 names: K8sNames | None = None) -> Listing:
    """``-o ipvsadm`` and ``-o plain`` of :func:`table_listing` (``names``: annotated as
    cli.k8s.annotate_ipvs annotates it, which -o ipvsadm never is), the same bytes, written straight
    from the table (no row dicts).  Only those two formats are offered: the command uses
    :func:`table_listing` for the others."""
    return Listing(
        columns=_columns(view), rows=(), data=None,
        formats={"ipvsadm": lambda: format_ipvsadm(table, view, exact, only),
                 "plain": lambda: plain_text(table, view, exact, only, no_headers, names)},
    )


def _cell(value: Any, escaped: dict[str, str]) -> str:
    """escape_cell(value); a text is escaped once per distinct value."""
    if type(value) is int:
        return str(value)
    if type(value) is str:
        text = escaped.get(value)
        if text is None:
            text = escaped[value] = escape_cell(value)
        return text
    return escape_cell(value)


def _server_cells(view: str, exact: bool, escaped: dict[str, str]) -> Any:
    """The plain cells of a real server after SERVER, each after a tab, for a view other than default."""
    def counters(start: int) -> Any:
        return lambda s: "\t".join(largenum(v, exact).strip() for v in s.stats[start:start + 5])

    cells = [lambda s: _cell(s.forward, escaped)]
    if view == "tun-info":
        cells.append(tunnel_info)
    cells += [lambda s: _cell(s.weight, escaped), lambda s: _cell(s.active_conns, escaped),
              lambda s: _cell(s.inactive_conns, escaped)]
    if view == "persistent-conn":
        cells.append(lambda s: _cell(s.persistent_conns, escaped))
    if view == "thresholds":
        cells += [lambda s: _cell(s.upper_threshold, escaped), lambda s: _cell(s.lower_threshold, escaped)]
    if view == "rate":
        cells.append(counters(5))
    elif view == "stats":
        cells.append(counters(0))
    return lambda s: "".join("\t" + cell(s) for cell in cells)


def plain_text(table: IPVSTable, view: str, exact: bool, only: ServiceKey | None, no_headers: bool,
               names: K8sNames | None = None) -> str:
    """What the plain printer writes for ``table_listing(table, view, exact, only)``, annotated with
    ``names`` as cli.k8s.annotate_ipvs annotates it when given (a K8S SERVICE cell after SERVICE, a
    POD cell after SERVER; "-" for none)."""
    columns = [c for c in _columns(view) if c.priority == 0]
    empty_server = "\t" * (len(columns) - 4 - (5 if view in ("rate", "stats") else 0))  # (without names' two)
    if names is not None:
        from kpctl.cli.k8s import ipvs_columns

        columns = ipvs_columns(columns)
    escaped: dict[str, str] = {}
    services = sorted_services(table)
    if only is not None:
        services = [s for s in services if s.key == only]
    lines = [] if no_headers else ["\t".join(c.header for c in columns)]
    server_cells = None if view == "default" else _server_cells(view, exact, escaped)
    flag_texts: dict[Any, str] = {}  # the SCHEDULER and FLAGS cells, by the service fields they are made of
    tails: dict[Any, str] = {}  # default-view cells after SERVER, by forward, weight, active, inactive
    address: Callable[[RealServer], str] = server_address  # the SERVER cell (and the POD cell after it)
    for service in services:
        flags = _cached(flag_texts, _FLAGS_MADE_OF(service), lambda: "\t".join((
            _cell(service.scheduler, escaped), _cell(service_flags(service), escaped))))
        if names is None:
            prefix = f"{escape_cell(str(service.key))}\t{flags}\t"
        else:
            label = _cell(names.label(service.key) or "-", escaped)
            prefix = f"{escape_cell(str(service.key))}\t{label}\t{flags}\t"
            address = _with_pod(names, service.key, escaped)
        servers = sorted_servers(service)
        if not servers:
            line = prefix + ("" if names is None else "\t-") + empty_server
            if view == "rate" or view == "stats":
                start = 5 if view == "rate" else 0
                line += "\t" + "\t".join(largenum(v, exact).strip() for v in service.stats[start:start + 5])
            lines.append(line)
        elif server_cells is None:  # the default view: most of a big table's lines
            done = len(lines)
            try:
                for s in servers:
                    key = DEFAULT_TAIL(s)
                    tail = tails.get(key)
                    if tail is None:
                        tail = tails[key] = "".join("\t" + _cell(value, escaped) for value in key)
                    lines.append(prefix + address(s) + tail)
            except TypeError:  # a cell that cannot be hashed (a hand-made snapshot): no cache
                del lines[done:]
                lines += [prefix + address(s) + "".join("\t" + _cell(value, escaped) for value in DEFAULT_TAIL(s))
                          for s in servers]
        else:
            lines += [prefix + address(s) + server_cells(s) for s in servers]
    return "\n".join(lines) + "\n" if lines else ""


def _with_pod(names: K8sNames, key: ServiceKey, escaped: dict[str, str]) -> Callable[[RealServer], str]:
    """The SERVER cell of a real server of service ``key``, a tab and its POD cell ("-": none)."""
    return lambda s: f"{server_address(s)}\t{_cell(names.pod(key, s.address, s.port) or '-', escaped)}"


def _cached(cache: dict[Any, str], key: Any, make: Callable[[], str]) -> str:
    """cache[key], made first if missing (and made each time for a key that cannot be hashed)."""
    try:
        text = cache.get(key)
    except TypeError:
        return make()
    if text is None:
        text = cache[key] = make()
    return text


def timeouts_listing(timeouts: Timeouts) -> Listing:
    text = f"Timeout (tcp tcpfin udp): {timeouts.tcp} {timeouts.tcp_fin} {timeouts.udp}\n"
    return Listing(
        columns=[Column("TCP", "tcp", justify="right"), Column("TCPFIN", "tcp_fin", justify="right"),
                 Column("UDP", "udp", justify="right")],
        rows=[timeouts.to_dict()], data=timeouts.to_dict(), formats={"ipvsadm": lambda: text},
    )


def daemon_line(daemon: SyncDaemon) -> str:
    """One line of `ipvsadm -L --daemon`."""
    line = f"{daemon.state} sync daemon (mcast={daemon.mcast_ifn}, syncid={daemon.syncid}"
    if daemon.sync_maxlen:
        line += f", maxlen={daemon.sync_maxlen}"
    if daemon.mcast_group:
        line += f", group={daemon.mcast_group}"
    if daemon.mcast_port:
        line += f", port={daemon.mcast_port}"
    if daemon.mcast_ttl:
        line += f", ttl={daemon.mcast_ttl}"
    return line + ")\n"


def daemons_listing(daemons: list[SyncDaemon]) -> Listing:
    keys = [("STATE", "state"), ("INTERFACE", "mcast_ifn"), ("SYNCID", "syncid"), ("MAXLEN", "sync_maxlen"),
            ("GROUP", "mcast_group"), ("PORT", "mcast_port"), ("TTL", "mcast_ttl")]
    return Listing(
        columns=[Column(h, k) for h, k in keys], rows=[d.to_dict() for d in daemons],
        data=[d.to_dict() for d in daemons], formats={"ipvsadm": lambda: "".join(daemon_line(d) for d in daemons)},
    )


def connection_lines(conns: Iterable[Connection]) -> Iterator[str]:
    """The lines of `ipvsadm -Lnc` (print_conn), without their line breaks; each endpoint an
    addrport of the address as the Connection has it (inet_ntop's text: kpctl.core.ipvs_conn).
    What comes before the client (protocol, expiry, state) and after it (virtual and real server),
    which connections share, is made once each."""
    heads: dict[tuple[str, int, str], str] = {}
    tails: dict[tuple[str, int, str, int], str] = {}
    for proto, client, client_port, virtual, virtual_port, server, server_port, state, expires, _, _ in conns:
        head = heads.get((proto, expires, state))
        if head is None:
            expiry = f"{expires // 60:02d}:{expires % 60:02d}"
            head = heads[proto, expires, state] = f"{proto:<3} {expiry:<6} {state:<11} "
        tail = tails.get((virtual, virtual_port, server, server_port))
        if tail is None:
            tail = tails[virtual, virtual_port, server, server_port] = \
                f"{addrport(virtual, virtual_port):<18} {addrport(server, server_port)}"
        yield f"{head}{addrport(client, client_port):<18} {tail}"


def connections_listing(conns: list[Connection]) -> Listing:
    def text() -> Iterator[str]:  # (lines, written as they are made)
        head = ["IPVS connection entries", f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination"]
        return chain(head, connection_lines(conns))

    def rows() -> Iterator[dict[str, Any]]:
        endpoint = addrport
        return ({"protocol": c.protocol, "client": endpoint(c.client_address, c.client_port),
                 "virtual": endpoint(c.virtual_address, c.virtual_port),
                 "server": endpoint(c.server_address, c.server_port), "state": c.state, "expires": str(c.expires),
                 "pe": (f"{c.pe_name} {c.pe_data}".strip())} for c in conns)

    columns = [Column("PRO", "protocol"), Column("CLIENT", "client"), Column("VIRTUAL", "virtual"),
               Column("SERVER", "server"), Column("STATE", "state"), Column("EXPIRES", "expires", justify="right"),
               Column("PE", "pe", 1)]
    # each made only for the formats that read it: a busy node has hundreds of thousands of connections
    # -o json: one connection a line, written from its values (-o yaml: each one's dict made as it is written)
    return Listing(columns=columns, rows=MadeRows(rows), data=lambda: OneLineItems(conns, fields=Connection._fields),
                   formats={"ipvsadm": text})
