"""Gather a NodeState (IPVS, links, ipsets, iptables, sysctls) live or from --snapshot.

A piece that cannot be read (no IPVS in this kernel, no ipset program, a snapshot without
the section) is left None and the reason recorded, so `vip list` and `doctor` still
work with what there is.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any

from kpctl.errors import KpctlError
from kpctl.model.doctor import NodeState
from kpctl.model.ipset import IPSet
from kpctl.model.iptables import Ruleset
from kpctl.model.ipvs import IPVSTable, Timeouts
from kpctl.model.links import Link

ALL_PIECES: tuple[str, ...] = ("ipvs", "links", "ipsets", "iptables", "sysctls")
SAVE_PROGRAMS: dict[tuple[str, str], str] = {
    ("ipv4", "nft"): "iptables-nft-save",
    ("ipv4", "legacy"): "iptables-legacy-save",
    ("ipv6", "nft"): "ip6tables-nft-save",
    ("ipv6", "legacy"): "ip6tables-legacy-save",
}


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
        ipsets = _guard(unavailable, "ipsets", lambda: _read_ipsets(app, snapshot))
    if "iptables" in wanted:
        iptables = _guard(unavailable, "iptables", lambda: _read_iptables(snapshot)) or {}
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


def _read_ipsets(app: Any, snapshot: Any) -> tuple[IPSet, ...]:
    from kpctl.core.ipset_save import parse_save
    from kpctl.errors import NotFound

    if snapshot is not None:
        text = snapshot.section("ipsets")
        if text is None:
            raise NotFound(f"snapshot {snapshot.source!r} has no ipsets section")
        return tuple(parse_save(str(text)))
    try:
        proc = subprocess.run(["ipset", "save"], capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise NotFound("no ipset program to read the sets with") from None
    if proc.returncode != 0:
        raise KpctlError(f"ipset save failed: {proc.stderr.strip()}")
    return tuple(parse_save(proc.stdout))


def _read_iptables(snapshot: Any) -> dict[str, dict[str, Ruleset]]:
    from kpctl.core.iptables_save import parse_save
    from kpctl.errors import NotFound

    result: dict[str, dict[str, Ruleset]] = {}
    if snapshot is not None:
        section = snapshot.section("iptables")
        if section is None:
            raise NotFound(f"snapshot {snapshot.source!r} has no iptables section")
        for family, backends in section.items():
            for backend, text in (backends or {}).items():
                if text:
                    result.setdefault(family, {})[backend] = parse_save(str(text), family=family, backend=backend)
        return result
    for (family, backend), program in SAVE_PROGRAMS.items():
        try:
            proc = subprocess.run([program], capture_output=True, text=True, timeout=120, check=False)
        except FileNotFoundError:
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            result.setdefault(family, {})[backend] = parse_save(proc.stdout, family=family, backend=backend)
    return result


def _read_sysctls(snapshot: Any) -> dict[str, str]:
    from kpctl.backends.sysctl import DOCTOR_SYSCTLS, read_sysctls, snapshot_sysctls

    if snapshot is not None:
        return snapshot_sysctls(snapshot.section("sysctls"))
    return read_sysctls(DOCTOR_SYSCTLS)
