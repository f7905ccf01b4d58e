"""`kpctl vip …`: the service addresses kube-proxy binds on the dummy link kube-ipvs0."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.cli.k8s import k8s_options
from kpctl.output.listing import Column, Listing, OutputSpec

if TYPE_CHECKING:
    from kpctl.model.links import Vip

DEV_HELP = "The VIP device (kube-proxy's dummy link)."


@click.group()
def vip() -> None:
    """VIPs on kube-ipvs0: list them with what refers to them, add and delete them.

    \b
    Examples:
      kpctl vip list
      kpctl vip add 10.254.0.1
    """


@vip.command("list")
@click.option("--dev", default="kube-ipvs0", show_default=True, help=DEV_HELP)
@output_options()
@k8s_options
@pass_app
def list_vips(app: AppContext, dev: str, output: OutputSpec, k8s: object) -> None:
    """List the addresses on DEV with the IPVS services and ipset members that use them.

    \b
    Examples:
      kpctl vip list
      kpctl --snapshot node.json vip list -o json
    """
    from kpctl.backends.node import read_node
    from kpctl.core.vips import build_vips, validate_dev

    validate_dev(dev)
    node = read_node(app, ("ipvs", "links", "ipsets"))
    if node.links is None:
        from kpctl.errors import KpctlError

        raise KpctlError(f"cannot read links: {node.unavailable.get('links')}")
    services = node.ipvs.services if node.ipvs else ()
    vips = build_vips(node.links, dev, services, node.ipsets or ())
    from kpctl.cli.k8s import annotate_vips

    app.render(annotate_vips(_listing(vips), k8s), output)


@vip.command("add")
@click.argument("address")
@click.option("--dev", default="kube-ipvs0", show_default=True, help=DEV_HELP)
@pass_app
def add(app: AppContext, address: str, dev: str) -> None:
    """Bind ADDRESS (as /32 or /128) on DEV, creating DEV as a dummy link, left down, if needed.

    \b
    Examples:
      kpctl vip add 10.254.0.1
      kpctl vip add fd00::a --dev kube-ipvs0
    """
    from kpctl.backends.links import LiveLinks
    from kpctl.core.vips import parse_vip, validate_dev

    app.require_live("vip add")
    parsed, dev = parse_vip(address), validate_dev(dev)
    links = LiveLinks()
    try:
        created = links.add_vip(dev, parsed)
    finally:
        links.close()
    if app.verbose:
        click.echo(f"created dummy link {dev} (down)" if created else f"added {parsed} to {dev}", err=True)


@vip.command("delete")
@click.argument("address")
@click.option("--dev", default="kube-ipvs0", show_default=True, help=DEV_HELP)
@pass_app
def delete(app: AppContext, address: str, dev: str) -> None:
    """Remove ADDRESS from DEV (the link itself stays, as kube-proxy leaves it).

    \b
    Example:
      kpctl vip delete 10.254.0.1
    """
    from kpctl.backends.links import LiveLinks
    from kpctl.core.vips import parse_vip, validate_dev

    app.require_live("vip delete")
    parsed, dev = parse_vip(address), validate_dev(dev)
    links = LiveLinks()
    try:
        links.delete_vip(dev, parsed)
    finally:
        links.close()


def _listing(vips: tuple[Vip, ...]) -> Listing:
    rows = [{"vip": f"{v.address}/{v.prefixlen}", "dev": v.dev, "services": ", ".join(v.services) or "-",
             "ipset": ", ".join(v.ipset_entries) or "-", "nservices": len(v.services)} for v in vips]
    columns = [Column("VIP", "vip"), Column("DEV", "dev", priority=1), Column("SERVICES", "services"),
               Column("IPSET ENTRIES", "ipset")]
    return Listing(columns=columns, rows=rows, data=[v.to_dict() for v in vips])
