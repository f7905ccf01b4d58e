"""Entry point: global options, command groups, and the one error handler."""

from __future__ import annotations

import errno
import gc
import importlib
import os
import sys
from typing import Any

import click

from kpctl import __version__
from kpctl.errors import ExitStatus, KpctlError

# name -> (module, attribute); imported only when the group is used or listed, so that
# `kpctl --help` loads no command's code.
COMMAND_GROUPS: dict[str, tuple[str, str]] = {
    "ipvs": ("kpctl.cli.ipvs", "ipvs"),
    "modules": ("kpctl.cli.modules", "modules"),
    "vip": ("kpctl.cli.vip", "vip"),
    "doctor": ("kpctl.cli.doctor", "doctor"),
    "iptables": ("kpctl.cli.iptables", "iptables"),
    "nft": ("kpctl.cli.nft", "nft"),
    "ipset": ("kpctl.cli.ipset", "ipset"),
    "snapshot": ("kpctl.cli.snapshot", "snapshot"), "trace": ("kpctl.cli.trace", "trace"),
    "services": ("kpctl.cli.services", "services"),
    "completion": ("kpctl.cli.completion", "completion"),
}

# What `kpctl --help` lists for each group: the first paragraph of its docstring, all that
# click's short help reads (tests/unit/test_startup_help.py keeps the two equal), so that the
# root help imports none of the command modules.
SUMMARIES: dict[str, str] = {
    "completion": "Print the completion script for SHELL (bash, zsh or fish).",
    "doctor": "Check this node (or a --snapshot) for broken kube-proxy state, whatever its mode:"
              " IPVS (VIPs, ipsets, real servers), iptables (KUBE-SVC/KUBE-SEP chains, no-endpoint rejects,"
              " rule count), both (the jumps into kube-proxy's chains), nftables (the kube-proxy table, its maps"
              " and chains, nft/kernel versions), what a mode switch left behind, a FORWARD policy or firewall"
              " chain that drops forwarded Service connections, and sysctls (ip_forward, conntrack,"
              " br_netfilter, route_localnet).  With --services or --kubectl, the endpoints and"
              " Services the API lists are compared with the node's, in every mode.",
    "ipset": "Sets of addresses, ports and networks in the kernel (ipset's job).",
    "iptables": "iptables rules as iptables-save shows them, for every family and backend.",
    "ipvs": "Virtual services and real servers in the kernel's IPVS table (ipvsadm's job).",
    "modules": "Kernel modules kube-proxy's IPVS mode needs.",
    "nft": "nftables rulesets as `nft -j list ruleset` gives them: chains, sets, maps, jump graph.",
    "services": "What this node's data plane implements for each Service address, whatever kube-proxy's mode.",
    "snapshot": "Node snapshots: IPVS, ipsets, iptables, nftables, addresses, routes, sysctls, modules.",
    "trace": "Trace SERVICE (ADDR:PORT[/PROTO]): every hook, rule, IPVS decision and NAT, with chances.",
    "vip": "VIPs on kube-ipvs0: list them with what refers to them, add and delete them.",
}
_SUMMARIES_ONLY = "kpctl.summaries_only"  # ctx.meta flag while the root help lists the groups


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (a tenth of `kpctl --help`)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(click.HelpFormatter):
    """click's help formatter, given the width click would work out (with shutil) itself."""

    def __init__(self, indent_increment: int = 2, width: int | None = None, max_width: int | None = None) -> None:
        if width is None and click.formatting.FORCED_WIDTH is None:
            width = max(min(terminal_columns(), 80 if max_width is None else max_width) - 2, 50)
        super().__init__(indent_increment, width, max_width)


class KpctlContext(click.Context):
    formatter_class = HelpFormatter


class KpctlGroup(click.Group):
    """Root group: lazy subcommands and the single exception → exit-code handler."""

    context_class = KpctlContext

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_GROUPS))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta[_SUMMARIES_ONLY] = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            ctx.meta[_SUMMARIES_ONLY] = False

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if ctx.meta.get(_SUMMARIES_ONLY) and name in SUMMARIES:
            return click.Command(name, help=SUMMARIES[name])  # stands in for the group in the list
        if name in COMMAND_GROUPS:
            module, attribute = COMMAND_GROUPS[name]
            return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `kpctl … | head`: the reader left; not an error of ours.  (Here, not in _run: click's
            # main turns a broken pipe into exit status 1, a negative answer for scripts.)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return ExitStatus.OK

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: str | None = None) -> None:
        instruction = os.environ.get(complete_var or "_KPCTL_COMPLETE", "")
        if instruction:  # the shell asks for completions
            from kpctl.cli.completion import SHELLS, completion_script, register

            shell, _, action = instruction.partition("_")
            if action == "source" and shell in SHELLS:
                # Exactly `kpctl completion SHELL`: click 8.1 (the last release for Python 3.9)
                # would print the script with one more newline than click 8.2+.
                click.echo(completion_script(shell, self), nl=False)
                sys.exit(0)
            register()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        # A run reads a node into large acyclic data (110,000 rules, 60,000 servers) and exits: the
        # cycle collector would only rescan it as it grows (a third of a 10k-service read).
        # `--watch`, which runs for long, turns it back on; an embedding process gets it back.
        collecting = gc.isenabled()
        gc.disable()
        try:
            status = self._run(args, prog_name or "kpctl", complete_var, **extra)
        finally:
            if collecting:
                gc.enable()
        sys.exit(status)

    def _run(self, args: Any, prog_name: str, complete_var: str | None, **extra: Any) -> int:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            return int(exc.exit_code)
        except click.exceptions.Abort:
            return _error("interrupted", ExitStatus.INTERRUPTED)
        except KeyboardInterrupt:
            return _error("interrupted", ExitStatus.INTERRUPTED)
        except click.UsageError as exc:
            if debug:
                raise
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            return _error(exc.format_message() + hint, ExitStatus.USAGE)
        except click.ClickException as exc:
            if debug:
                raise
            return _error(exc.format_message(), ExitStatus.USAGE)
        except KpctlError as exc:
            if debug:
                raise
            return _error(str(exc), exc.exit_status)
        except PermissionError as exc:
            if debug:
                raise
            return _error(f"{exc.strerror or exc} (run as root or with CAP_NET_ADMIN)", ExitStatus.PERMISSION_DENIED)
        except OSError as exc:
            if debug:
                raise
            if exc.errno in (errno.EPERM, errno.EACCES):
                return _error(f"{exc.strerror} (run as root or with CAP_NET_ADMIN)", ExitStatus.PERMISSION_DENIED)
            raise
        if isinstance(result, int):
            return int(result)
        return ExitStatus.OK


def _error(message: str, status: int) -> int:
    click.echo(f"kpctl: error: {message}", err=True)
    return int(status)


@click.group(cls=KpctlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--netns", envvar="KPCTL_NETNS", metavar="NAME",
              help="Act inside the network namespace /run/netns/NAME (like `ip -n NAME`).")
@click.option("--snapshot", "snapshot_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Read node state from a snapshot file instead of the kernel.")
@click.option("--color", "color_mode", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True, help="Colour output (auto: only on a TTY without NO_COLOR).")
@click.option("-v", "--verbose", count=True, help="Say more (repeatable).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(__version__, "--version", prog_name="kpctl", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, netns: str | None, snapshot_path: str | None, color_mode: str,
        verbose: int, debug: bool) -> None:
    """kpctl: kube-proxy's data plane on this node (IPVS, ipset, iptables, VIPs, modules, traces).

    \b
    Examples:
      kpctl ipvs list
      kpctl --snapshot examples/seed-ipvs-node.json ipvs list -o ipvsadm
      kpctl --netns test1 ipvs list -o json
    """
    # Here, not at import: `kpctl --help` (answered while parsing) needs neither.
    from kpctl.cli.context import AppContext
    from kpctl.output.env import Environment

    app = ctx.ensure_object(AppContext)
    if _Program.leaves:  # what the run reads and keeps stays until the process leaves: see main()
        _Program.run = app
    app.netns = netns
    app.snapshot_path = snapshot_path
    app.verbose = verbose
    app.debug = debug
    app.env = Environment(color_mode=color_mode)
    if netns and not snapshot_path:
        from kpctl.backends.netns import enter_netns

        enter_netns(netns)


class _Program:
    """`kpctl` run as a program (main()), which leaves with os._exit: its run's AppContext (the
    snapshot it read, what its command kept: AppContext.keep) is held here until then.  Callers of
    ``cli.main`` (tests) keep nothing beyond their run."""

    leaves = False
    run: Any = None


def main() -> None:
    """The `kpctl` program: the command line run, then the process left without the interpreter's
    teardown.  Freeing what a run read object by object is work the kernel does at once when the
    process ends: the ~1.7 million objects of a 10,000-service nftables ruleset took 0.1 s of a
    1 s command.  So the run's state is kept (``_Program``) and, once the output is flushed,
    the process ends with os._exit.  Nothing of kpctl waits on exit handlers: files are written and
    closed in with-blocks, netlink sockets close with the process.  (Callers of ``cli.main``, such
    as tests, keep the usual SystemExit.)"""
    _Program.leaves = True
    gc.disable()  # for good: see KpctlGroup.main (re-enabled at its end, a collection would walk the run's data)
    try:
        cli.main(prog_name="kpctl")
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):  # as the interpreter does with sys.exit("text")
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader left (`kpctl … | head`), or it was closed
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
