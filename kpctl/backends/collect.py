"""Collect a NodeSnapshot from the running kernel (`kpctl snapshot save`, live `trace`).

Every piece is optional: what cannot be read (no IPVS in this kernel, no ipset or nft
program, no permission) is stored as null and the reason is listed under ``absent``, so a
snapshot of a half-configured node still says what it could.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Callable, Collection
from typing import Any

from kpctl.backends.sysctl import DOCTOR_SYSCTLS, read_sysctls
from kpctl.errors import KpctlError
from kpctl.model.snapshot import SNAPSHOT_VERSION, NodeSnapshot

TRACE_SYSCTLS: tuple[str, ...] = (
    "net.ipv4.ip_forward", "net.ipv4.vs.conntrack", "net.ipv4.conf.all.route_localnet",
    "net.ipv4.conf.all.rp_filter", "net.bridge.bridge-nf-call-iptables", "net.ipv4.vs.conn_reuse_mode",
    "net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.expire_quiescent_template",
)
_TIMEOUT = 60


def _run(argv: list[str]) -> str:
    program = shutil.which(argv[0]) or next(
        (os.path.join(d, argv[0]) for d in ("/usr/sbin", "/sbin") if os.path.exists(os.path.join(d, argv[0]))), None)
    if program is None:
        raise FileNotFoundError(f"{argv[0]} not found")
    done = subprocess.run([program, *argv[1:]], capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def _ipvs(app: Any, connections: bool, absent: dict[str, str]) -> dict[str, Any]:
    from kpctl.backends.ipvs import open_ipvs

    backend = open_ipvs(app)
    try:
        table = backend.table()
        section: dict[str, Any] = table.to_dict()
        section["timeouts"] = backend.timeouts().to_dict()
        if connections:
            try:
                section["connections"] = backend.connection_text()
            except KpctlError as exc:  # the table is kept without them, and the reason said
                absent["ipvs connections"] = str(exc).splitlines()[0]
        return section
    finally:
        backend.close()


def _iptables() -> dict[str, Any]:
    from kpctl.backends.iptables import LiveIptables

    texts = LiveIptables().save_texts()
    return {family: {backend: texts.get(family, {}).get(backend) for backend in ("nft", "legacy")}
            for family in ("ipv4", "ipv6")}


def read_nftables() -> Any:
    """`nft -j list ruleset` as a document (also what doctor reads live)."""
    from kpctl.backends.nft import parse_ruleset

    return parse_ruleset(_run(["nft", "-j", "list", "ruleset"]))


def _links() -> list[dict[str, Any]]:
    rows = json.loads(_run(["ip", "-j", "-d", "addr", "show"]) or "[]")
    out = []
    for row in rows:
        kind = (row.get("linkinfo") or {}).get("info_kind", "")
        out.append({
            "name": row.get("ifname"), "index": row.get("ifindex"), "kind": kind,
            # the administrative state (model.links.Link; what rtnetlink's IFF_UP says, as `vip list`
            # reads it live), and the kernel's operational one beside it
            "state": "UP" if "UP" in (row.get("flags") or ()) else "DOWN", "operstate": row.get("operstate", ""),
            "flags": row.get("flags", []),
            "addresses": [f"{a['local']}/{a['prefixlen']}" for a in row.get("addr_info", ()) if "local" in a],
        })
    return out


def _routes() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in ("local", "main"):
        rows = json.loads(_run(["ip", "-j", "route", "show", "table", table]) or "[]")
        rows += json.loads(_run(["ip", "-j", "-6", "route", "show", "table", table]) or "[]")
        out[table] = rows
    return out


def _modules() -> list[str]:
    with open("/proc/modules", encoding="utf-8") as handle:
        return sorted(line.split()[0] for line in handle if line.strip())


def collect_snapshot(app: Any, only: Collection[str] | None = None, connections: bool = False) -> NodeSnapshot:
    """Read every section this kernel offers (or the ``only`` ones); missing ones become null with a
    reason.  ``connections``: the IPVS connections too (the text of /proc/net/ip_vs_conn, in ``ipvs``)."""
    sections: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
    }
    absent: dict[str, str] = {}
    readers: dict[str, Callable[[], Any]] = {
        "ipvs": lambda: _ipvs(app, connections, absent),
        "ipsets": lambda: _run(["ipset", "save"]),
        "iptables": _iptables,
        "nftables": read_nftables,
        "links": _links,
        "routes": _routes,
        "sysctls": lambda: read_sysctls(sorted(set(TRACE_SYSCTLS) | set(DOCTOR_SYSCTLS))),
        "modules": _modules,
    }
    for name, read in readers.items():
        if only is not None and name not in only:
            continue
        try:
            sections[name] = read()
        except (KpctlError, OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            sections[name] = None
            absent[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if absent:
        sections["absent"] = absent
    return NodeSnapshot(version=SNAPSHOT_VERSION, sections=sections, source="(live)")
