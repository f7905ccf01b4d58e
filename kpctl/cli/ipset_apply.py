"""`kpctl ipset diff|apply`: the kernel's ipsets made to look like an `ipset save` file."""

from __future__ import annotations

from typing import Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.output.listing import OutputSpec


@click.command("diff")
@click.argument("file", metavar="FILE|-")
@output_options("save")
@pass_app
def diff(app: AppContext, file: str, output: OutputSpec) -> int:
    """Compare the sets of an `ipset save` file with the kernel's (or --snapshot's); exit 0 equal, 1 different.

    Rows say what `kpctl ipset apply` would create, rebuild, add, delete and destroy; remaining
    timeouts and counters are not compared.  `-o save` prints the operations as ipset restore lines.

    \b
    Examples:
      kpctl ipset diff desired.ipsets
      kpctl --snapshot node.json ipset diff desired.ipsets -o json
    """
    from kpctl.backends.ipset import open_ipset
    from kpctl.cli.ipset import _read
    from kpctl.core.ipset_diff import plan_sets
    from kpctl.core.ipset_save import parse_save
    from kpctl.output.diff import IPSET_COLUMNS, diff_listing

    desired = parse_save(_read(file))
    reader = open_ipset(app)
    try:
        plan = plan_sets(reader.list_sets(), desired, lambda n: f"kpctl-new-{n}")
    finally:
        reader.close()
    app.render(diff_listing(IPSET_COLUMNS, plan), output)
    return 1 if plan.changes else 0


@click.command("apply")
@click.argument("file", metavar="FILE|-")
@click.option("--dry-run", is_flag=True, help="Print the operations (ipset restore lines) instead of running them.")
@pass_app
def apply(app: AppContext, file: str, dry_run: bool) -> None:
    """Make the kernel's sets equal to an `ipset save` file, all or nothing.

    Members are added and deleted in place: unchanged members keep their counters and
    timeouts.  A set whose type or options change is rebuilt aside and swapped in; sets
    missing from the file are destroyed.  A kernel refusal part way undoes what was done.

    \b
    Examples:
      kpctl ipset apply desired.ipsets --dry-run
      kpctl ipset save > s.txt; vi s.txt; kpctl ipset apply s.txt
    """
    import secrets

    from kpctl.backends.ipset import open_live
    from kpctl.backends.ipset_apply import check_destroys, execute_plan
    from kpctl.cli.ipset import _read
    from kpctl.core.ipset_diff import plan_sets
    from kpctl.core.ipset_save import parse_save

    desired = parse_save(_read(file))
    token = secrets.token_hex(3)
    backend: Any  # a reader for a dry run, the kernel's netlink otherwise
    if dry_run:
        from kpctl.backends.ipset import open_ipset

        backend = open_ipset(app)
    else:
        backend = open_live(app, "ipset apply")
    try:
        kernel = backend.list_sets()
        plan = plan_sets(kernel, desired, lambda n: f"kpctl-{token}-{n}")
        if dry_run:
            click.echo("".join(op.describe() + "\n" for op in plan.operations), nl=False)
            return
        check_destroys(plan, kernel)
        execute_plan(backend, plan, kernel)
    finally:
        backend.close()
    if app.verbose:
        click.echo(f"{len(plan.changes)} changes", err=True)
