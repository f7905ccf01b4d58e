"""`kpctl trace SERVICE`: where the first packet of a connection to SERVICE goes, hook by hook."""

from __future__ import annotations

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.cli.k8s import k8s_options
from kpctl.output.listing import OutputSpec


@click.command()
@click.argument("service")
@click.option("--from", "origin", default="node", show_default=True, metavar="node|pod:IP|external:IP",
              help="Where the connection starts: the node itself, a pod, or a client outside.")
@click.option("--sport", type=click.IntRange(1, 65535), default=None, metavar="N",
              help="Source port of the traced packet (default 43210).")
@output_options("tree")
@k8s_options
@pass_app
def trace(app: AppContext, service: str, origin: str, sport: int | None, output: OutputSpec, k8s: object) -> int:
    """Trace SERVICE (ADDR:PORT[/PROTO]): every hook, rule, IPVS decision and NAT, with chances.

    Exit status 0 when the packet reaches a real server on every branch, 1 otherwise.
    Without --snapshot the node is read live first.

    \b
    Examples:
      kpctl --snapshot examples/seed-ipvs-node.json trace 10.254.0.1:443
      kpctl trace 10.254.0.2:53/udp --from pod:172.30.22.5 -o json
    """
    from kpctl.core.snapshot_view import NodeView
    from kpctl.core.trace.engine import trace as run_trace
    from kpctl.core.trace.request import build_packet, parse_origin
    from kpctl.output.trace import trace_listing

    start = parse_origin(origin)
    snap = app.snapshot()
    if snap is None:
        from kpctl.backends.collect import collect_snapshot
        from kpctl.core.address import parse_service

        parse_service(service)  # bad input fails before reading the node
        snap = collect_snapshot(app)
    view = NodeView(snap)
    packet = build_packet(view, service, start, sport)
    result = run_trace(view, packet, str(start), service)
    from kpctl.cli.k8s import annotate_trace

    listing = annotate_trace(trace_listing(result), k8s, service)
    app.render(listing, output)
    app.keep(view, result, listing)
    return 0 if result.delivered else 1
