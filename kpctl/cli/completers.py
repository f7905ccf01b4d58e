"""Values offered by shell completion for parameters whose click type knows none.

Looked up by (command path, parameter name) at completion time only, so the command
modules stay free of completion code.  Static lists (schedulers, ipset types, check ids)
always work; live lookups (virtual services, real servers, ipset names) read the
``--snapshot`` given on the command line, or the kernel when that is cheap: only as root,
only within a small time budget, never with output on errors.  Set
``KPCTL_COMPLETE_LIVE=0`` to switch the kernel lookups off, ``KPCTL_COMPLETE_BUDGET=SECONDS``
to change the time budget (1.5 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click
from click.shell_completion import CompletionItem

Provider = Callable[[click.Context, str], list[CompletionItem]]

LIVE_BUDGET_SECONDS = 1.5  # a TAB that hangs is worse than one that offers nothing
LIVE_LIMIT = 200  # more than this is noise on a terminal

SCHEDULER_HELP: dict[str, str] = {
    "rr": "round robin", "wrr": "weighted round robin", "lc": "least connection",
    "wlc": "weighted least connection (default)", "lblc": "locality-based least connection",
    "lblcr": "locality-based least connection with replication", "dh": "destination hashing",
    "sh": "source hashing", "sed": "shortest expected delay", "nq": "never queue",
    "mh": "maglev hashing", "fo": "weighted failover", "ovf": "weighted overflow",
    "twos": "weighted random twos choice",
}
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")
TUNNEL_TYPES = ("ipip", "gue", "gre")
TRACE_ORIGINS = {"node": "a process on this node", "pod:": "pod:IP, a pod on this node",
                 "external:": "external:IP, a client outside the node"}


def _items(values: Iterable[str], incomplete: str, help_: dict[str, str] | None = None) -> list[CompletionItem]:
    return [CompletionItem(v, help=(help_ or {}).get(v)) for v in values if v.startswith(incomplete)]


def _nothing(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return []


def _file(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(incomplete, type="file")]


def _schedulers(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from kpctl.model.ipvs import SCHEDULERS

    return _items(SCHEDULERS, incomplete, SCHEDULER_HELP)


def _sched_flags(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """A comma list: complete its last element, keep what came before."""
    from kpctl.model.ipvs import SCHED_FLAG_NAMES

    head, _, last = incomplete.rpartition(",")
    prefix = head + "," if head else ""
    taken = set(head.split(",")) if head else set()
    return [CompletionItem(prefix + name) for name in SCHED_FLAG_NAMES
            if name.startswith(last) and name not in taken]


def _set_types(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from kpctl.model.ipset import SET_TYPES

    return _items(SET_TYPES, incomplete)


def _check_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from kpctl.core.doctor import CHECKS

    return _items(CHECKS, incomplete, {cid: check.title for cid, check in CHECKS.items()})


def _static(values: Iterable[str], help_: dict[str, str] | None = None) -> Provider:
    frozen = tuple(values)
    return lambda ctx, incomplete: _items(frozen, incomplete, help_)


def _netns_names(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    try:
        return _items(sorted(os.listdir("/run/netns")), incomplete)
    except OSError:
        return []


# ---- live lookups --------------------------------------------------------------------------

class _OutOfTime(Exception):
    pass


@contextlib.contextmanager
def _budget(seconds: float) -> Iterator[None]:
    """Raise _OutOfTime in the block after ``seconds`` (completion runs in the main thread)."""

    def expire(signum: int, frame: Any) -> None:
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _app(ctx: click.Context) -> Any | None:
    """An AppContext for the global options on the command line, or None when a live
    lookup is not cheap or not allowed (not root, switched off)."""
    from kpctl.cli.context import AppContext

    root = ctx.find_root().params
    app = AppContext(netns=root.get("netns"), snapshot_path=root.get("snapshot_path"))
    if app.snapshot_path is not None:
        return app
    if os.environ.get("KPCTL_COMPLETE_LIVE", "1") == "0" or os.geteuid() != 0:
        return None
    if app.netns:
        from kpctl.backends.netns import enter_netns

        enter_netns(app.netns)
    return app


def _live(lookup: Callable[[Any], list[CompletionItem]]) -> Provider:
    """Run ``lookup(app)`` within the time budget; any failure means no completions."""

    def provider(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        try:
            with _budget(float(os.environ.get("KPCTL_COMPLETE_BUDGET", LIVE_BUDGET_SECONDS))):
                app = _app(ctx)
                if app is None:
                    return []
                items = lookup(app)
        except Exception:  # noqa: BLE001 - a TAB must never print a traceback or hang
            return []
        return [item for item in items if item.value.startswith(incomplete)][:LIVE_LIMIT]

    return provider


def _ipvs_table(app: Any) -> Any:
    from kpctl.backends.ipvs import open_ipvs

    backend = open_ipvs(app)
    try:
        return backend.table()
    finally:
        backend.close()


def _services(app: Any) -> list[CompletionItem]:
    from kpctl.core.ipvsadm_list import sorted_services

    return [CompletionItem(str(svc.key), help=f"{svc.scheduler}, {len(svc.servers)} server(s)")
            for svc in sorted_services(_ipvs_table(app))]  # ipvsadm's order, not the kernel's hash order


def _servers_of_service(ctx: click.Context) -> Callable[[Any], list[CompletionItem]]:
    def lookup(app: Any) -> list[CompletionItem]:
        from kpctl.core.address import addrport, parse_service
        from kpctl.core.ipvsadm_list import sorted_servers

        text = ctx.params.get("service")
        if not text:
            return []
        key = parse_service(text)
        for svc in _ipvs_table(app).services:
            if svc.key == key:
                return [CompletionItem(addrport(rs.address, rs.port), help=f"{rs.forward}, weight {rs.weight}")
                        for rs in sorted_servers(svc)]
        return []

    return lookup


def _servers(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return _live(_servers_of_service(ctx))(ctx, incomplete)


def _ipset_names(app: Any) -> list[CompletionItem]:
    from kpctl.backends.ipset import open_ipset

    reader = open_ipset(app)
    try:
        return [CompletionItem(name) for name in reader.names()]
    finally:
        reader.close()


_services_provider = _live(_services)
_ipset_provider = _live(_ipset_names)

# (command path without "kpctl", parameter name) -> provider.  A path of "" matches every
# command, a group name every command of that group; the most specific entry wins.
PROVIDERS: dict[tuple[str, str], Provider] = {
    ("", "netns"): _netns_names,
    ("", "scheduler"): _schedulers,
    ("", "schedulers"): _schedulers,
    ("", "sched_flags"): _sched_flags,
    ("", "pe_name"): _static(["sip"], {"sip": "SIP Call-ID persistence engine"}),
    ("", "tun_type"): _static(TUNNEL_TYPES),
    ("", "k8s_services"): _file,
    ("ipvs", "service"): _services_provider,
    ("ipvs add", "service"): _nothing,
    ("ipvs", "server"): _servers,
    ("ipvs add-server", "server"): _nothing,
    ("trace", "service"): _services_provider,
    ("trace", "origin"): _static(TRACE_ORIGINS, TRACE_ORIGINS),
    ("ipset", "name"): _ipset_provider,
    ("ipset create", "name"): _nothing,
    ("ipset rename", "old"): _ipset_provider,
    ("ipset swap", "first"): _ipset_provider,
    ("ipset swap", "second"): _ipset_provider,
    ("ipset create", "set_type"): _set_types,
    ("ipset restore", "file"): _file,
    ("snapshot save", "file"): _file,
    ("iptables list", "table"): _static(IPTABLES_TABLES),
    ("doctor", "check_ids"): _check_ids,
    ("vip", "dev"): _static(["kube-ipvs0"], {"kube-ipvs0": "the dummy link kube-proxy puts VIPs on"}),
}


def command_path(ctx: click.Context) -> str:
    """``ipvs add`` for the context of `kpctl ipvs add` (the root's name left out)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def provider_for(ctx: click.Context, param: click.Parameter) -> Provider | None:
    path = command_path(ctx)
    words = path.split()
    for scope in [" ".join(words[:n]) for n in range(len(words), -1, -1)]:
        provider = PROVIDERS.get((scope, param.name or ""))
        if provider is not None:
            return provider
    return None
