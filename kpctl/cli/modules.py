"""`kpctl modules check`: can kube-proxy's IPVS mode run on this kernel?"""

from __future__ import annotations

from typing import Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.errors import ExitStatus
from kpctl.output.listing import Column, Listing, OutputSpec

_EXIT = {"ready": ExitStatus.OK, "not-ready": ExitStatus.NEGATIVE, "impossible": ExitStatus.KERNEL_FEATURE_MISSING}


@click.group()
def modules() -> None:
    """Kernel modules kube-proxy's IPVS mode needs.

    \b
    Examples:
      kpctl modules check --load
    """


@modules.command("check")
@click.option("--load", is_flag=True, help="modprobe the required modules that are available but not loaded.")
@click.option("--scheduler", "schedulers", multiple=True, metavar="NAME",
              help="Also require ip_vs_NAME (repeatable), e.g. lc, wlc, mh.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="A KubeProxyConfiguration YAML; its ipvs.scheduler is required too.")
@output_options()
@pass_app
def check(app: AppContext, load: bool, schedulers: tuple[str, ...], config_file: str | None,
          output: OutputSpec) -> int:
    """Show each module kube-proxy needs (loaded, built in, available, missing), the ipset
    program, the IPVS netlink family, and the verdict.

    Exit 0 when IPVS mode can run, 1 when something is missing, 6 when this kernel
    cannot do IPVS at all.

    \b
    Examples:
      kpctl modules check
      kpctl modules check --load --scheduler lc
      kpctl modules check --config /var/lib/kube-proxy/config.conf -o json
    """
    import os

    from kpctl.backends.modules import ModuleProbe
    from kpctl.core import modules as core
    from kpctl.errors import InvalidInput, PermissionDenied

    if app.snapshot_path is not None:
        raise InvalidInput(f"modules check reads the running kernel; it does not work on --snapshot {app.snapshot_path}")
    wanted = _wanted_schedulers(schedulers, config_file)
    if load and os.geteuid() != 0:
        raise PermissionDenied("modules check --load runs modprobe")
    probe = ModuleProbe()
    facts = probe.facts()
    required = core.required_modules(core.parse_kernel_version(facts.release), wanted)
    report = core.assess(facts, required)
    if load and report.modules_supported and core.modules_to_load(report):
        changes = {}
        for name in core.modules_to_load(report):
            ok, message = probe.modprobe(name)
            changes[name] = "loaded by --load" if ok else f"modprobe failed: {message}"
        report = core.assess(probe.facts(), required, changes)
    app.render(_listing(report), output)
    return int(_EXIT[report.verdict])


def _wanted_schedulers(schedulers: tuple[str, ...], config_file: str | None) -> list[tuple[str, str]]:
    from kpctl.core.modules import (
        DEFAULT_SCHEDULER,
        scheduler_from_config,
        validate_scheduler,
    )

    wanted = [(validate_scheduler(name), "--scheduler") for name in schedulers]
    if config_file:
        with open(config_file, encoding="utf-8") as handle:
            configured = scheduler_from_config(handle.read(), config_file)
        wanted.append((configured or DEFAULT_SCHEDULER, f"ipvs.scheduler in {config_file}"))
    return wanted


def _listing(report: Any) -> Listing:
    rows: list[dict[str, Any]] = []
    if not report.modules_supported:
        rows.append({"kind": "kernel", "name": "modules", "state": "unsupported",
                     "detail": "no /proc/modules (CONFIG_MODULES unset): judged by what is built in"})
    for module in report.modules:
        detail = module.reason + (f"; {module.changed}" if module.changed else "")
        rows.append({"kind": "module", "name": module.name, "state": module.state, "detail": detail,
                     "evidence": module.evidence})
    ipset = report.ipset
    rows.append({"kind": "tool", "name": "ipset", "state": f"v{ipset.version}" if ipset.version else "missing",
                 "detail": ipset.error or f"protocol version {ipset.protocol}"})
    genl = {True: "reachable", False: "unreachable", None: "not probed"}[report.ipvs_genl]
    rows.append({"kind": "kernel", "name": "ipvs-genetlink", "state": genl,
                 "detail": "/proc/net/ip_vs present" if report.proc_net_ip_vs else "/proc/net/ip_vs absent"})
    rows.append({"kind": "verdict", "name": "ipvs-mode", "state": report.verdict, "detail": report.summary})
    rows.extend({"kind": "advice", "name": "", "state": "", "detail": line} for line in report.advice)
    columns = [Column("KIND", "kind"), Column("NAME", "name"), Column("STATE", "state"),
               Column("DETAIL", "detail"), Column("EVIDENCE", "evidence", priority=1)]
    return Listing(columns=columns, rows=rows, data=report.to_dict(), title=f"kernel {report.release}")
