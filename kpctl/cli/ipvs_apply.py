"""`kpctl ipvs diff|apply`: the IPVS table made to look like a file (ipvsadm -S or `ipvs list -o json|yaml`)."""

from __future__ import annotations

from typing import Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.output.listing import OutputSpec

_FILE = click.File("r")
_DRAIN_HELP = ("Seconds to let a removed server or service with open connections drain at weight 0 "
               "before it is deleted (default 0: delete at once).")


def _plan(app: AppContext, file: Any, drain_timeout: float) -> Any:
    from kpctl.cli.ipvs import _backend
    from kpctl.core.ipvs_diff import plan_apply, read_desired

    desired = read_desired(file.read())
    with _backend(app) as backend:
        return plan_apply(backend.table(), desired, drain=drain_timeout > 0)


@click.command("diff")
@click.argument("file", metavar="FILE|-", type=_FILE)
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=0, metavar="S", help=_DRAIN_HELP)
@output_options("save")
@pass_app
def diff(app: AppContext, file: Any, drain_timeout: float, output: OutputSpec) -> int:
    """Compare a desired IPVS table with the kernel's (or --snapshot's); exit 0 equal, 1 different.

    FILE is `ipvsadm -Sn` / `kpctl ipvs save` output or `kpctl ipvs list -o json|yaml`.
    Rows say what `kpctl ipvs apply` would add, change, drain (remove while connections are
    open) and remove; `-o save` prints its operations as ipvsadm -R lines.

    \b
    Examples:
      kpctl ipvs diff desired.rules
      kpctl --snapshot node.json ipvs diff desired.yaml -o json
      kpctl ipvs diff desired.rules --drain-timeout 30 -o save
    """
    from kpctl.output.diff import IPVS_COLUMNS, diff_listing

    plan = _plan(app, file, drain_timeout)
    app.render(diff_listing(IPVS_COLUMNS, plan), output)
    return 1 if plan.changes else 0


@click.command("apply")
@click.argument("file", metavar="FILE|-", type=_FILE)
@click.option("--dry-run", is_flag=True, help="Print the operations instead of running them.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=0, metavar="S", help=_DRAIN_HELP)
@click.option("--wait", is_flag=True, help="Block until drained servers are deleted (or --drain-timeout passes).")
@pass_app
def apply(app: AppContext, file: Any, dry_run: bool, drain_timeout: float, wait: bool) -> None:
    """Make the IPVS table equal to FILE with only the kernel calls needed, all or nothing.

    Unchanged services and servers are not touched (their connections and counters stay); a
    server whose weight changes is edited in place.  Servers and services that go away while
    they have connections are set to weight 0 first and deleted once their active and inactive
    connections reach 0 or --drain-timeout passes; without --wait the busy ones stay at
    weight 0 and a later apply deletes them (it writes nothing for them until then).
    A kernel error part way undoes what was applied.

    \b
    Examples:
      kpctl ipvs apply desired.rules --dry-run
      kpctl ipvs apply desired.rules --drain-timeout 300 --wait
      kpctl ipvs list -o yaml > t.yaml; vi t.yaml; kpctl ipvs apply t.yaml
    """
    from kpctl.cli.ipvs import _backend
    from kpctl.core.ipvs_diff import plan_apply, read_desired

    desired = read_desired(file.read())
    if not dry_run:
        app.require_live("ipvs apply")
    with _backend(app) as backend:
        plan = plan_apply(backend.table(), desired, drain=drain_timeout > 0)
        if dry_run:
            app.env.stdout.write(_dry_run_text(plan))
            return
        left = _run(app, backend, plan, drain_timeout, wait)
    for op in left:
        click.echo(f"kpctl: draining: {op.describe()} waits for open connections (weight 0); "
                   "apply again to finish", err=True)


def _dry_run_text(plan: Any) -> str:
    text = "".join(op.describe() + "\n" for op in plan.now)
    if plan.after_drain:
        text += "# once drained (no connections, or --drain-timeout passed):\n"
        text += "".join(op.describe() + "\n" for op in plan.after_drain)
    return text


def _run(app: AppContext, backend: Any, plan: Any, drain_timeout: float, wait: bool) -> Any:
    from kpctl.backends.ipvs_apply import apply_plan
    from kpctl.output.progress import progress

    with progress(app.env, f"applying {len(plan.now)} IPVS operations, draining {len(plan.after_drain)}",
                  total=len(plan.after_drain) or None) as step:
        return apply_plan(backend, plan, drain_timeout, wait, on_removed=step)
