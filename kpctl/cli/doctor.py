"""`kpctl doctor`: named checks for the kube-proxy failures operators actually hit, in every mode."""

from __future__ import annotations

from typing import Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.cli.k8s import k8s_options
from kpctl.output.listing import Column, Listing, OutputSpec


@click.command()
@click.option("--check", "check_ids", multiple=True, metavar="ID",
              help="Run only this check (repeatable). `kpctl doctor --list-checks` shows the ids.")
@click.option("--list-checks", is_flag=True, help="List the checks with their id and severity, and exit.")
@output_options("text")
@k8s_options
@pass_app
def doctor(app: AppContext, check_ids: tuple[str, ...], list_checks: bool, output: OutputSpec, k8s: Any) -> int:
    """Check this node (or a --snapshot) for broken kube-proxy state, whatever its mode:
    IPVS (VIPs, ipsets, real servers), iptables (KUBE-SVC/KUBE-SEP chains, no-endpoint rejects,
    rule count), both (the jumps into kube-proxy's chains), nftables (the kube-proxy table, its maps
    and chains, nft/kernel versions), what a mode switch left behind, a FORWARD policy or firewall
    chain that drops forwarded Service connections, and sysctls (ip_forward, conntrack,
    br_netfilter, route_localnet).  With --services or --kubectl, the endpoints and
    Services the API lists are compared with the node's, in every mode.

    The active mode is worked out from the state (or the snapshot's `mode`); checks for other
    modes do not run.  Each finding says what was found, why it matters and the fix (`-o text`
    prints them as readable blocks).  Exit 0 when no finding is an error, 1 otherwise.

    \b
    Examples:
      kpctl doctor
      kpctl doctor --check vip-missing --check leftover-nftables
      kpctl --snapshot examples/nftables-node.json doctor -o json
      kpctl --netns node1 doctor -o text
      kpctl doctor --services svc.json   # also compare with kubectl get svc,endpointslices -A -o json
    """
    from kpctl.cli.k8s import k8s_checks, split_check_ids, with_k8s_findings
    from kpctl.core.doctor import MODE_PIECES, run_checks, select_checks

    core_ids, k8s_ids = split_check_ids(check_ids, k8s)
    checks = select_checks(core_ids) if core_ids or not check_ids else []
    if list_checks:
        app.render(_checks_listing(checks + [c for c in k8s_checks() if c.id in k8s_ids]), output)
        return 0
    from kpctl.backends.node import read_node

    needs = {piece for check in checks for piece in check.needs} | ({"ipvs"} if k8s_ids else set())
    needs |= set(MODE_PIECES)  # the active mode decides which checks apply
    node = read_node(app, needs)
    report = with_k8s_findings(run_checks(node, checks), node, k8s, k8s_ids)
    listing = _listing(report)
    app.render(listing, output)
    app.keep(node, report, listing)
    return 1 if report.errors else 0


def _listing(report: Any) -> Listing:
    rows = [finding.to_dict() for finding in report.findings]
    columns = [Column("SEVERITY", "severity"), Column("CHECK", "check"), Column("SUBJECT", "subject"),
               Column("FOUND", "found"), Column("WHY", "why", priority=1), Column("FIX", "fix", priority=1)]
    title = (f"{report.mode} mode ({report.mode_reason}); {len(report.checks_run)} checks: {report.errors} error(s), "
             f"{sum(1 for f in report.findings if f.severity == 'warning')} warning(s)")
    return Listing(columns=columns, rows=rows, data=report.to_dict(), title=title,
                   formats={"text": lambda: _text(report, title)})


def _text(report: Any, title: str) -> str:
    from kpctl.output.text import escape_cell

    blocks = [f"{escape_cell(f.severity).upper()} {escape_cell(f.check)}: {escape_cell(f.subject)}\n"
              f"  found: {escape_cell(f.found)}\n  why:   {escape_cell(f.why)}\n  fix:   {escape_cell(f.fix)}\n"
              for f in report.findings]
    return "\n".join(blocks + [title + "\n"])


def _checks_listing(checks: Any) -> Listing:
    rows = [{"id": c.id, "severity": c.severity, "modes": ",".join(c.modes) or "any",
             "title": c.title, "needs": ",".join(c.needs)} for c in checks]
    columns = [Column("ID", "id"), Column("SEVERITY", "severity"), Column("MODES", "modes"),
               Column("CHECKS FOR", "title"), Column("READS", "needs", priority=1)]
    return Listing(columns=columns, rows=rows, data=rows)
