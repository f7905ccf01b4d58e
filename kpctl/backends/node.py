"""Gather a NodeState (IPVS, links, ipsets, iptables, sysctls) live or from --snapshot.

A piece that cannot be read (no IPVS in this kernel, no ipset program, a snapshot without
the section) is left None and the reason recorded, so `vip list` and `doctor` still
work with what there is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kpctl.errors import KpctlError
from kpctl.model.doctor import NodeState
from kpctl.model.ipset import IPSet
from kpctl.model.iptables import Ruleset
from kpctl.model.ipvs import IPVSTable, Timeouts
from kpctl.model.links import Link

ALL_PIECES: tuple[str, ...] = ("ipvs", "links", "ipsets", "iptables", "sysctls")


def read_node(app: Any, pieces: Iterable[str] = ALL_PIECES) -> NodeState:
    wanted = set(pieces)
    unavailable: dict[str, str] = {}
    snapshot = app.snapshot()
    ipvs: IPVSTable | None = None
    timeouts: Timeouts | None = None
    links: tuple[Link, ...] | None = None
    ipsets: tuple[IPSet, ...] | None = None
    iptables: dict[str, dict[str, Ruleset]] = {}
    sysctls: dict[str, str] = {}
    if "ipvs" in wanted:
        ipvs, timeouts = _guard(unavailable, "ipvs", lambda: _read_ipvs(app)) or (None, None)
    if "links" in wanted:
        links = _guard(unavailable, "links", lambda: _read_links(app))
    if "ipsets" in wanted:
        ipsets = _guard(unavailable, "ipsets", lambda: _read_ipsets(app))
    if "iptables" in wanted:
        iptables = _guard(unavailable, "iptables", lambda: _read_iptables(app)) or {}
    if "sysctls" in wanted:
        sysctls = _read_sysctls(snapshot)
    return NodeState(ipvs=ipvs, timeouts=timeouts, links=links, ipsets=ipsets, iptables=iptables,
                     sysctls=sysctls, unavailable=unavailable)


def _guard(unavailable: dict[str, str], piece: str, read: Any) -> Any:
    try:
        return read()
    except KpctlError as exc:
        unavailable[piece] = str(exc)
        return None


def _read_ipvs(app: Any) -> tuple[IPVSTable, Timeouts | None]:
    from kpctl.backends.ipvs import open_ipvs

    backend = open_ipvs(app)
    try:
        table = backend.table()
        try:
            timeouts: Timeouts | None = backend.timeouts()
        except KpctlError:
            timeouts = None
        return table, timeouts
    finally:
        backend.close()


def _read_links(app: Any) -> tuple[Link, ...]:
    from kpctl.backends.links import open_links

    backend = open_links(app)
    try:
        return backend.links()
    finally:
        if hasattr(backend, "close"):
            backend.close()


def _read_ipsets(app: Any) -> tuple[IPSet, ...]:
    from kpctl.backends.ipset import open_ipset
    from kpctl.errors import NotFound

    snapshot = app.snapshot()
    if snapshot is not None and snapshot.section("ipsets") is None:
        raise NotFound(f"snapshot {snapshot.source!r} has no ipsets section")
    reader = open_ipset(app)
    try:
        return tuple(reader.list_sets())
    finally:
        reader.close()


def _read_iptables(app: Any) -> dict[str, dict[str, Ruleset]]:
    from kpctl.backends.iptables import open_iptables

    result: dict[str, dict[str, Ruleset]] = {}
    # doctor reads chain names and a few chains: the rest of 100,000 rules is never parsed
    for ruleset in open_iptables(app).read(lazy=True).rulesets:
        result.setdefault(ruleset.family, {})[ruleset.backend] = ruleset
    return result


def _read_sysctls(snapshot: Any) -> dict[str, str]:
    from kpctl.backends.sysctl import DOCTOR_SYSCTLS, read_sysctls, snapshot_sysctls

    if snapshot is not None:
        return snapshot_sysctls(snapshot.section("sysctls"))
    return read_sysctls(DOCTOR_SYSCTLS)
