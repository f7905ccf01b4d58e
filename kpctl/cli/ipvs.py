"""`kpctl ipvs …`: the kernel's IPVS table, at ipvsadm parity.

Every command checks all of its input before it opens the backend; commands that change
the kernel refuse to run on --snapshot.  Backends are imported inside command bodies.
"""

from __future__ import annotations

import contextlib
from typing import Any
from collections.abc import Callable, Iterator

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.cli.k8s import k8s_options
from kpctl.output.listing import OutputSpec

@contextlib.contextmanager
def _backend(app: AppContext) -> Iterator[Any]:
    from kpctl.backends.ipvs import open_ipvs

    backend = open_ipvs(app)
    try:
        yield backend
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def _service_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("-s", "--scheduler", metavar="SCHED", help="Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos (default wlc)."),
        click.option("-p", "--persistent", metavar="[TIMEOUT]", is_flag=False, flag_value="", default=None,
                     help="Persistent service; TIMEOUT seconds (default 300)."),
        click.option("-M", "--netmask", metavar="NETMASK", help="Persistence granularity: IPv4 mask or IPv6 prefix length."),
        click.option("-b", "--sched-flags", metavar="FLAGS", help="Comma list: flag-1,flag-2,flag-3, sh-fallback,sh-port, mh-fallback,mh-port."),
        click.option("--pe", "pe_name", metavar="NAME", help="Persistence engine (sip); needs -p."),
        click.option("-o", "--ops", "one_packet", is_flag=True, help="One-packet scheduling (UDP and fwmark services)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("-w", "--weight", metavar="W", help="Weight 0..65535 (default 1)."),
        click.option("-m", "--masquerading", "masq", is_flag=True, help="Forward by NAT (masquerading)."),
        click.option("-g", "--gatewaying", "route", is_flag=True, help="Forward by direct routing (the default)."),
        click.option("-i", "--ipip", "tunnel", is_flag=True, help="Forward by tunnelling."),
        click.option("-x", "--u-threshold", "upper", metavar="UPPER", help="Upper connection threshold."),
        click.option("-y", "--l-threshold", "lower", metavar="LOWER", help="Lower connection threshold."),
        click.option("--tun-type", metavar="T", help="Tunnel type: ipip (default), gue, gre."),
        click.option("--tun-port", metavar="P", help="Tunnel destination port (gue)."),
        click.option("--tun-nocsum", "nocsum", is_flag=True, help="Tunnel without checksums (gue, gre)."),
        click.option("--tun-csum", "csum", is_flag=True, help="Tunnel with checksums (gue, gre)."),
        click.option("--tun-remcsum", "remcsum", is_flag=True, help="Tunnel with remote checksum offload (gue)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _one_of(kwargs: dict[str, Any], names: tuple[str, ...], spell: Callable[[str], str]) -> str | None:
    from kpctl.errors import InvalidInput

    given = [name for name in names if kwargs.pop(name)]
    if len(given) > 1:
        raise InvalidInput(f"options {' and '.join(spell(n) for n in given)} exclude each other")
    return given[0] if given else None


def _parse_service_opts(kwargs: dict[str, Any]) -> Any:
    from kpctl.core.ipvs_options import parse_service_options

    return parse_service_options(kwargs["scheduler"], kwargs["persistent"], kwargs["netmask"],
                                 kwargs["sched_flags"], kwargs["pe_name"], kwargs["one_packet"])


def _parse_server_opts(kwargs: dict[str, Any]) -> Any:
    from kpctl.core.ipvs_options import parse_server_options

    forward = _one_of(kwargs, ("masq", "route", "tunnel"),
                      {"masq": "-m", "route": "-g", "tunnel": "-i"}.__getitem__)
    csum = _one_of(kwargs, ("nocsum", "csum", "remcsum"), lambda n: f"--tun-{n}")
    return parse_server_options(kwargs["weight"], forward, kwargs["upper"], kwargs["lower"],
                                kwargs["tun_type"], kwargs["tun_port"], csum)


@click.group()
def ipvs() -> None:
    """Virtual services and real servers in the kernel's IPVS table (ipvsadm's job).

    \b
    Examples:
      kpctl ipvs list --rate --watch
      kpctl ipvs add 10.254.0.1:443 -s rr
    """


@ipvs.command("list")
@click.argument("service", required=False)
@click.option("-n", "--numeric", is_flag=True, help="Numeric output (always; accepted for ipvsadm habits).")
@click.option("--stats", is_flag=True, help="Show traffic counters.")
@click.option("--rate", is_flag=True, help="Show rates (per second).")
@click.option("--thresholds", is_flag=True, help="Show upper/lower thresholds.")
@click.option("--persistent-conn", "persistent_conn", is_flag=True, help="Show persistent connections.")
@click.option("--tun-info", "tun_info", is_flag=True, help="Show tunnel information.")
@click.option("--exact", "-X", is_flag=True, help="Exact numbers (no K/M/G/T) in -o ipvsadm.")
@click.option("--watch", metavar="[SECONDS]", is_flag=False, flag_value="2", default=None,
              help="Refresh every SECONDS (default 2) until Ctrl-C; on a terminal changes are highlighted.")
@click.option("--count", type=click.IntRange(min=1), default=None, hidden=True, help="Stop --watch after N.")
@k8s_options
@output_options("ipvsadm", "save")
@pass_app
def list_services(app: AppContext, service: str | None, numeric: bool, exact: bool, output: OutputSpec,
                  watch: str | None, count: int | None, k8s: Any, **views: bool) -> int:
    """List virtual services and their real servers (ipvsadm -Ln).

    \b
    Examples:
      kpctl ipvs list
      kpctl ipvs list 10.254.0.1:443 --stats -o ipvsadm
      kpctl --snapshot node.json ipvs list -o json
      kpctl ipvs list --rate --watch 1
      kpctl ipvs list --services svc.json   # kubectl get svc,endpointslices -A -o json > svc.json
    """
    from kpctl.backends.ipvs import listed_table
    from kpctl.cli.ipvs_views import table_listing, text_listing
    from kpctl.cli.k8s import annotate_ipvs
    from kpctl.core.address import parse_service
    from kpctl.model.ipvs import IPVSTable
    from kpctl.output.progress import progress

    view = _one_of(views, ("stats", "rate", "thresholds", "persistent_conn", "tun_info"),
                   lambda n: "--" + n.replace("_", "-")) or "default"
    key = parse_service(service) if service else None
    interval = None
    if watch is not None:
        from kpctl.cli.watch import parse_interval

        interval = parse_interval(watch)

    def read(default_view: bool) -> IPVSTable:
        """The table listed: SERVICE's alone when one is named (read alone, as ipvsadm -Ln -t reads it)."""
        if key is not None:
            return IPVSTable(backend.info(), (backend.service(key),))
        return listed_table(backend, default_view)

    def listing() -> Any:
        return annotate_ipvs(table_listing(read(False), view.replace("_", "-"), exact, key), k8s)

    def plain_listing() -> Any:  # -o plain / ipvsadm: the same bytes written straight from the table (names too)
        return text_listing(read(view == "default"), view.replace("_", "-"), exact, key, output.no_headers, k8s)

    with _backend(app) as backend:
        if interval is not None:
            from kpctl.cli.watch import watch_listing

            title = "kpctl ipvs list" + ("" if view == "default" else " --" + view.replace("_", "-"))
            return watch_listing(app, listing, output, interval, count, title)
        with progress(app.env, "reading the IPVS table"):
            shown = plain_listing() if output.format in ("plain", "ipvsadm") else listing()
    app.render(shown, output)
    return 0


@ipvs.command("add")
@click.argument("service")
@_service_options
@pass_app
def add_service(app: AppContext, service: str, **kwargs: Any) -> None:
    """Add a virtual service (ipvsadm -A).

    \b
    Examples:
      kpctl ipvs add 10.254.0.1:443 -s rr
      kpctl ipvs add 10.254.0.2:53/udp -s sh -b sh-port --ops
      kpctl ipvs add fwmark:100 -s wlc -p 600 -M 255.255.255.0
    """
    from kpctl.core.address import parse_service
    from kpctl.core.ipvs_options import build_service, check_persistence_engine

    virtual = build_service(parse_service(service), _parse_service_opts(kwargs))
    check_persistence_engine(virtual)
    app.require_live("ipvs add")
    with _backend(app) as backend:
        backend.add_service(virtual)


@ipvs.command("edit")
@click.argument("service")
@_service_options
@pass_app
def edit_service(app: AppContext, service: str, **kwargs: Any) -> None:
    """Change a virtual service (ipvsadm -E); options not given keep their current values.

    \b
    Example:
      kpctl ipvs edit 10.254.0.1:443 -s wrr -p 900
    """
    from kpctl.core.address import parse_service
    from kpctl.core.ipvs_options import build_service, check_persistence_engine

    key, options = parse_service(service), _parse_service_opts(kwargs)
    app.require_live("ipvs edit")
    with _backend(app) as backend:
        virtual = build_service(key, options, base=backend.service(key))
        check_persistence_engine(virtual)
        backend.edit_service(virtual)


@ipvs.command("delete")
@click.argument("service")
@pass_app
def delete_service(app: AppContext, service: str) -> None:
    """Delete a virtual service and its real servers (ipvsadm -D).

    \b
    Example:
      kpctl ipvs delete 10.254.0.2:53/udp
    """
    from kpctl.core.address import parse_service

    key = parse_service(service)
    app.require_live("ipvs delete")
    with _backend(app) as backend:
        backend.delete_service(key)


@ipvs.command("add-server")
@click.argument("service")
@click.argument("server")
@_server_options
@pass_app
def add_server(app: AppContext, service: str, server: str, **kwargs: Any) -> None:
    """Add a real server to a virtual service (ipvsadm -a); forwarding defaults to -g as in ipvsadm.

    \b
    Examples:
      kpctl ipvs add-server 10.254.0.1:443 172.30.1.5:6443 -m -w 1
      kpctl ipvs add-server fwmark:100 10.0.0.7 -i --tun-type gue --tun-port 6080 --tun-csum
    """
    from kpctl.core.address import parse_service
    from kpctl.core.ipvs_options import build_server

    key = parse_service(service)
    real = build_server(key, server, _parse_server_opts(kwargs))
    app.require_live("ipvs add-server")
    with _backend(app) as backend:
        backend.add_server(key, real)


@ipvs.command("edit-server")
@click.argument("service")
@click.argument("server")
@_server_options
@pass_app
def edit_server(app: AppContext, service: str, server: str, **kwargs: Any) -> None:
    """Change a real server (ipvsadm -e); options not given keep their current values.

    \b
    Example (drain a server):
      kpctl ipvs edit-server 10.254.0.1:443 172.30.1.5:6443 -w 0
    """
    from kpctl.core.address import parse_service
    from kpctl.core.ipvs_options import build_server, server_identity

    key, options = parse_service(service), _parse_server_opts(kwargs)
    identity = server_identity(key, server)
    app.require_live("ipvs edit-server")
    with _backend(app) as backend:
        current = _find_server(backend.service(key), identity, server)
        backend.edit_server(key, build_server(key, server, options, base=current))


def _find_server(service: Any, identity: Any, text: str) -> Any:
    from kpctl.errors import NotFound

    for candidate in service.servers:
        if candidate.key == identity.key:
            return candidate
    for candidate in service.servers:  # ipvsadm gives route/tunnel servers the service's port
        if (not service.fwmark and candidate.forward in ("route", "tunnel")
                and candidate.key == (identity.address, service.port)):
            return candidate
    raise NotFound(f"server {text!r} does not exist in service {service.key}")


@ipvs.command("delete-server")
@click.argument("service")
@click.argument("server")
@pass_app
def delete_server(app: AppContext, service: str, server: str) -> None:
    """Remove a real server from a virtual service (ipvsadm -d).

    \b
    Example:
      kpctl ipvs delete-server 10.254.0.1:443 172.30.1.5:6443
    """
    from kpctl.core.address import parse_service
    from kpctl.core.ipvs_options import server_identity

    key = parse_service(service)
    real = server_identity(key, server)
    app.require_live("ipvs delete-server")
    with _backend(app) as backend:
        backend.delete_server(key, real)


@ipvs.command("clear")
@pass_app
def clear(app: AppContext) -> None:
    """Delete every virtual service (ipvsadm -C).

    \b
    Example:
      kpctl ipvs clear
    """
    app.require_live("ipvs clear")
    with _backend(app) as backend:
        backend.flush()


@ipvs.command("zero")
@click.argument("service", required=False)
@pass_app
def zero(app: AppContext, service: str | None) -> None:
    """Zero the packet, byte and rate counters of one service or all (ipvsadm -Z).

    \b
    Example:
      kpctl ipvs zero 10.254.0.1:443
    """
    from kpctl.core.address import parse_service

    key = parse_service(service) if service else None
    app.require_live("ipvs zero")
    with _backend(app) as backend:
        backend.zero(key)


@ipvs.command("save")
@click.option("-n", "--numeric", is_flag=True, help="Numeric output (always; accepted for ipvsadm habits).")
@pass_app
def save(app: AppContext, numeric: bool) -> None:
    """Print the table as ipvsadm rules (ipvsadm -Sn), loadable by `kpctl ipvs restore` and ipvsadm -R.

    \b
    Example:
      kpctl ipvs save -n > ipvs.rules
    """
    from kpctl.core.ipvsadm_list import format_save

    with _backend(app) as backend:
        table = backend.table()
    app.env.stdout.write(format_save(table))


@ipvs.command("restore")
@click.argument("file", required=False, default="-", type=click.File("r"))
@click.option("--flush", is_flag=True, help="Replace the table: clear it first.")
@click.option("--dry-run", is_flag=True, help="Print the operations instead of applying them.")
@pass_app
def restore(app: AppContext, file: Any, flush: bool, dry_run: bool) -> None:
    """Apply ipvsadm rules (ipvsadm -R input) all or nothing: checked first, rolled back on a kernel error.

    \b
    Examples:
      kpctl ipvs restore ipvs.rules --flush
      kpctl ipvs save -n | ssh node2 kpctl ipvs restore --dry-run
    """
    from kpctl.core.ipvs_save import parse_restore
    from kpctl.core.ipvs_plan import plan_restore

    ops = parse_restore(file.read())
    if not dry_run:
        app.require_live("ipvs restore")
    with _backend(app) as backend:
        plan = plan_restore(backend.table(), ops, flush)
        if dry_run:
            app.env.stdout.write("".join(op.describe() + "\n" for op in plan))
        else:
            from kpctl.output.progress import progress

            with progress(app.env, f"applying {len(plan)} IPVS operations"):
                backend.apply(plan)


@ipvs.command("timeout")
@click.argument("values", nargs=-1, metavar="[TCP TCPFIN UDP]")
@output_options("ipvsadm")
@pass_app
def timeout(app: AppContext, values: tuple[str, ...], output: OutputSpec) -> None:
    """Show or set the tcp, tcpfin and udp connection timeouts in seconds (0 keeps a value).

    \b
    Examples:
      kpctl ipvs timeout -o ipvsadm
      kpctl ipvs timeout 900 120 300
    """
    from kpctl.cli.ipvs_views import timeouts_listing
    from kpctl.core.ipvs_options import parse_timeouts
    from kpctl.model.ipvs import Timeouts

    if values:
        wanted = Timeouts(*parse_timeouts(values))
        app.require_live("ipvs timeout")
        with _backend(app) as backend:
            backend.set_timeouts(wanted)
        return
    with _backend(app) as backend:
        app.render(timeouts_listing(backend.timeouts()), output)


@ipvs.group("daemon")
def daemon() -> None:
    """The connection synchronisation daemons (ipvsadm --start-daemon/--stop-daemon).

    \b
    Examples:
      kpctl ipvs daemon start master --mcast-interface eth0
      kpctl ipvs daemon list
    """


@daemon.command("list")
@output_options("ipvsadm")
@pass_app
def daemon_list(app: AppContext, output: OutputSpec) -> None:
    """List running sync daemons (ipvsadm -L --daemon).

    \b
    Example:
      kpctl ipvs daemon list -o ipvsadm
    """
    from kpctl.cli.ipvs_views import daemons_listing

    with _backend(app) as backend:
        app.render(daemons_listing(backend.daemons()), output)


@daemon.command("start")
@click.argument("state", type=click.Choice(["master", "backup"]))
@click.option("--mcast-interface", metavar="IFNAME", help="Multicast interface (default eth0).")
@click.option("--syncid", metavar="ID", help="Sync id 0..255.")
@click.option("--sync-maxlen", metavar="N", help="Maximum sync message length.")
@click.option("--mcast-group", metavar="ADDR", help="Multicast group address.")
@click.option("--mcast-port", metavar="PORT", help="Multicast UDP port.")
@click.option("--mcast-ttl", metavar="TTL", help="Multicast TTL 1..255.")
@pass_app
def daemon_start(app: AppContext, state: str, mcast_interface: str | None, syncid: str | None,
                 sync_maxlen: str | None, mcast_group: str | None, mcast_port: str | None,
                 mcast_ttl: str | None) -> None:
    """Start a master or backup sync daemon (ipvsadm --start-daemon).

    \b
    Example:
      kpctl ipvs daemon start master --mcast-interface eth1 --syncid 7
    """
    from kpctl.core.ipvs_options import build_daemon

    wanted = build_daemon(state, mcast_interface, syncid, sync_maxlen, mcast_group, mcast_port, mcast_ttl)
    app.require_live("ipvs daemon start")
    with _backend(app) as backend:
        backend.start_daemon(wanted)


@daemon.command("stop")
@click.argument("state", type=click.Choice(["master", "backup"]))
@pass_app
def daemon_stop(app: AppContext, state: str) -> None:
    """Stop the master or backup sync daemon (ipvsadm --stop-daemon).

    \b
    Example:
      kpctl ipvs daemon stop backup
    """
    app.require_live("ipvs daemon stop")
    with _backend(app) as backend:
        backend.stop_daemon(state)


@ipvs.command("connections")
@click.argument("service", required=False)
@click.option("--server", metavar="ADDR[:PORT]", help="Only connections to this real server.")
@click.option("--client", metavar="ADDR[:PORT]", help="Only connections from this client.")
@output_options("ipvsadm")
@pass_app
def connections(app: AppContext, service: str | None, server: str | None, client: str | None,
                output: OutputSpec) -> None:
    """List IPVS connections (ipvsadm -Lnc), optionally for one service, server or client.

    \b
    Examples:
      kpctl ipvs connections 10.254.0.1:443
      kpctl ipvs connections --client 172.30.1.9 -o ipvsadm
    """
    from kpctl.cli.ipvs_views import connections_listing
    from kpctl.core.ipvs_connections import connection_filter, filter_connections

    chosen = connection_filter(service, server, client)
    with _backend(app) as backend:
        conns = filter_connections(backend.connections(), chosen)
    app.render(connections_listing(conns), output)


def _register_apply() -> None:
    from kpctl.cli.ipvs_apply import apply, diff  # declarative diff/apply live in their own module

    ipvs.add_command(diff)
    ipvs.add_command(apply)


_register_apply()
