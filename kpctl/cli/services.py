"""`kpctl services [SERVICE]`: what this node's data plane implements per Service, in any mode."""

from __future__ import annotations

from typing import Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.cli.k8s import k8s_options
from kpctl.output.listing import OutputSpec

# What the live read collects: the state of every mode, and the addresses node ports answer on.
LIVE_SECTIONS = ("ipvs", "ipsets", "iptables", "nftables", "links", "routes")


@click.command()
@click.argument("service", required=False)
@output_options()
@k8s_options
@pass_app
def services(app: AppContext, service: str | None, output: OutputSpec, k8s: Any) -> int:
    """What this node's data plane implements for each Service address, whatever kube-proxy's mode.

    One row per Service address and endpoint, read from the IPVS table and ipsets (ipvs mode),
    the KUBE-SERVICES chains (iptables mode) or the kube-proxy nft table (nftables mode): kind,
    traffic policy, session affinity, masquerade, each endpoint's chance of a new connection,
    and reject/drop for services without endpoints. The mode read is named; when the state of
    two modes coexists, both are listed (MODE column) and a note says so. Node ports served on
    every local address show as *:PORT.

    With --services FILE or --kubectl, names come from the API and drift is reported:
    endpoints the rules hold that no EndpointSlice lists (stale) and ready endpoints the rules
    lack (missing). Exit status 1 when there is drift, 3 when SERVICE is not implemented here.

    \b
    Examples:
      kpctl --snapshot examples/nftables-node.json services
      kpctl services 10.96.0.10:53/udp -o json
      kpctl services --kubectl -o wide
    """
    from kpctl.core.address import parse_service
    from kpctl.core.services import read_services
    from kpctl.core.snapshot_view import NodeView
    from kpctl.errors import InvalidInput, NotFound
    from kpctl.output.services import services_listing

    key = parse_service(service) if service is not None else None
    if key is not None and key.fwmark:
        raise InvalidInput(f"service {service!r}: kube-proxy makes no firewall-mark services; give ADDR:PORT[/PROTO]")
    snap = app.snapshot()
    if snap is None:
        from kpctl.backends.collect import collect_snapshot

        snap = collect_snapshot(app, LIVE_SECTIONS)
    view = NodeView(snap)
    report = read_services(view, key=key)
    if k8s is not None:
        from kpctl.core.services.k8s import join_names

        report = join_names(report, k8s)
    if key is not None and not report.services:
        raise NotFound(f"service {key} is not implemented on this node ({', '.join(report.read) or 'no mode'} read)")
    for note in report.notes:
        click.echo(f"kpctl: note: {note}", err=True)
    listing = services_listing(report)
    app.render(listing, output)
    app.keep(view, report, listing)
    return 1 if report.drift else 0
