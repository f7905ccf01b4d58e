"""Gather a NodeState (IPVS, links, ipsets, iptables, nftables, sysctls) live or from --snapshot.

A piece that cannot be read (no IPVS in this kernel, no ipset or nft program, a snapshot
without the section) is left None and the reason recorded, so `vip list` and `doctor` still
work with what there is.  A snapshot section stored as null with no reason under ``absent``
was read and found empty (an iptables-mode node has no IPVS table): None, no reason.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kpctl.errors import KpctlError
from kpctl.model.doctor import NodeState

if TYPE_CHECKING:  # (types only: each piece's reader imports its model when the piece is read)
    from kpctl.model.ipset import IPSet
    from kpctl.model.iptables import Ruleset
    from kpctl.model.ipvs import IPVSTable, Timeouts
    from kpctl.model.links import Link

ALL_PIECES: tuple[str, ...] = ("ipvs", "links", "ipsets", "iptables", "nftables", "sysctls")


def read_node(app: Any, pieces: Iterable[str] = ALL_PIECES) -> NodeState:
    snapshot = app.snapshot()
    unavailable: dict[str, str] = {}
    wanted = set(pieces) - _empty_sections(snapshot)
    ipvs: IPVSTable | None = None
    timeouts: Timeouts | None = None
    links: tuple[Link, ...] | None = None
    ipsets: tuple[IPSet, ...] | None = None
    iptables: dict[str, dict[str, Ruleset]] = {}
    sysctls: dict[str, str] = {}
    nftables: Any = None
    if "ipvs" in wanted:
        ipvs, timeouts = _guard(unavailable, "ipvs", lambda: _read_ipvs(app)) or (None, None)
    if "links" in wanted:
        links = _guard(unavailable, "links", lambda: _read_links(app))
    if "ipsets" in wanted:
        ipsets = _guard(unavailable, "ipsets", lambda: _read_ipsets(app))
    if "iptables" in wanted:
        iptables = _guard(unavailable, "iptables", lambda: _read_iptables(app)) or {}
    if "nftables" in wanted:
        nftables = _guard(unavailable, "nftables", lambda: _read_nftables(snapshot))
    if "sysctls" in wanted:
        sysctls = _read_sysctls(snapshot)
    kernel = snapshot.section("kernel") if snapshot is not None else platform.release()
    mode = snapshot.section("mode") if snapshot is not None else None
    return NodeState(ipvs=ipvs, timeouts=timeouts, links=links, ipsets=ipsets, iptables=iptables,
                     sysctls=sysctls, nftables=nftables, kernel=str(kernel) if kernel else None,
                     mode=str(mode) if mode else None, unavailable=unavailable)


def _empty_sections(snapshot: Any) -> set[str]:
    """Sections a snapshot stores as null without a reason under ``absent``: read, nothing there."""
    if snapshot is None:
        return set()
    absent = snapshot.section("absent") or {}
    return {name for name in ALL_PIECES
            if snapshot.is_null(name) and name not in absent}


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

    reader = open_ipset(app)  # on a snapshot without the section: NotFound
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


def _read_nftables(snapshot: Any) -> Any:
    from kpctl.errors import KernelFeatureMissing, NotFound

    if snapshot is not None:
        section = snapshot.section("nftables")
        if section is None:
            reason = (snapshot.section("absent") or {}).get("nftables")
            raise NotFound(f"snapshot {snapshot.source!r} has no nftables section" + (f" ({reason})" if reason else ""))
        return section
    from kpctl.backends.collect import read_nftables

    try:
        return read_nftables()
    except (OSError, RuntimeError, ValueError) as exc:
        raise KernelFeatureMissing(f"nft -j list ruleset: {exc}") from None


def _read_sysctls(snapshot: Any) -> dict[str, str]:
    from kpctl.backends.sysctl import DOCTOR_SYSCTLS, read_sysctls, snapshot_sysctls

    if snapshot is not None:
        return snapshot_sysctls(snapshot.section("sysctls"))
    return read_sysctls(DOCTOR_SYSCTLS)
