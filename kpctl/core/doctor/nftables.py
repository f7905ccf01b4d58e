"""Doctor checks for kube-proxy's nftables mode, over `nft -j list ruleset` (libnftables JSON):
the `kube-proxy` table missing or incomplete, nft or kernel too old for it, map elements and
jumps to chains that are gone, service chains reaching no endpoint, ClusterIPs in no map,
and the cluster-ips-check chain.

Each kube-proxy table (``ip``, and ``ip6`` on dual-stack nodes) is indexed once: chains and
their rules by name, sets and maps by name (the trace's own index, kpctl.core.trace.nftables).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kpctl.core.modes import NFT_TABLE
from kpctl.core.nft_json import TableIndex, jump_targets
from kpctl.core.nft_json import items as _items
from kpctl.model.doctor import ERROR, WARNING, Finding, NodeState

# What every kube-proxy since 1.31 (nftables GA path) writes, whatever the Services.
REQUIRED_CHAINS: dict[str, str | None] = {  # chain -> the hook it must be on (None: a regular chain)
    "nat-prerouting": "prerouting", "nat-output": "output", "nat-postrouting": "postrouting",
    "filter-input": "input", "filter-forward": "forward", "filter-output": "output",
    "services": None, "masquerading": None, "mark-for-masquerade": None, "service-endpoints-check": None,
}
REQUIRED_MAPS: tuple[str, ...] = ("service-ips", "service-nodeports", "no-endpoint-services")
# kube-proxy refuses to start its nftables mode below these (pkg/proxy/nftables: nft 1.0.1, kernel 5.13).
MIN_NFT = (1, 0, 1)
MIN_KERNEL = (5, 13)
SERVICE_MAPS: tuple[str, ...] = ("service-ips", "no-endpoint-services")


def _version(text: str | None) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def _tables(node: NodeState) -> list[tuple[str, TableIndex]]:
    """(family, index) of every kube-proxy table, indexed once per node for all the checks."""
    tables: list[tuple[str, TableIndex]] | None = node.derived.get("nft-tables")
    if tables is None:
        tables = node.derived["nft-tables"] = [
            (family, TableIndex(node.nftables, family, NFT_TABLE))
            for family in (str(t.get("family", "")) for t in _items(node.nftables, "table") if t.get("name") == NFT_TABLE)]
    return tables


def _key(element: Any) -> str:
    """A map element's key as nft prints it: ``10.96.0.1 . tcp . 443``."""
    if isinstance(element, dict) and "elem" in element:
        element = element["elem"].get("val", element["elem"])
    if isinstance(element, dict) and "concat" in element:
        return " . ".join(str(part) for part in element["concat"])
    return str(element)


def _map_entries(index: TableIndex, name: str) -> Iterator[tuple[str, Any]]:
    for pair in (index.sets.get(name) or {}).get("elem") or ():
        if isinstance(pair, list) and len(pair) == 2:
            yield _key(pair[0]), pair[1]


def check_table_missing(node: NodeState) -> list[Finding]:
    if any(True for _ in _tables(node)):
        return []
    return [Finding(
        "nft-table-missing", ERROR, f"nft table {NFT_TABLE}",
        f"kube-proxy's mode is nftables but there is no `{NFT_TABLE}` nft table",
        "no Service address is translated on this node: every ClusterIP and NodePort is dead",
        "check that kube-proxy runs (kubectl -n kube-system get pods -l k8s-app=kube-proxy) and its "
        "log for nft errors")]


def check_table_incomplete(node: NodeState) -> list[Finding]:
    findings = []
    for family, index in _tables(node):
        chains = index.chains
        missing = [f"chain {name}" for name in REQUIRED_CHAINS if name not in chains]
        missing += [f"chain {name} not on hook {hook}" for name, hook in REQUIRED_CHAINS.items()
                    if hook and name in chains and chains[name].get("hook") != hook]
        missing += [f"map {name}" for name in REQUIRED_MAPS if name not in index.sets]
        if missing:
            findings.append(Finding(
                "nft-table-incomplete", ERROR, f"nft table {family} {NFT_TABLE}",
                f"{family} {NFT_TABLE} lacks {', '.join(missing)}",
                "kube-proxy's packet path runs hook chain -> services -> service-ips -> service-* -> "
                "endpoint-*: a missing piece breaks every Service (or masquerading) of this family",
                f"nft delete table {family} {NFT_TABLE}, then restart kube-proxy so it writes the whole table"))
    return findings


def check_versions(node: NodeState) -> list[Finding]:
    meta = next(iter(_items(node.nftables, "metainfo")), {})
    nft, kernel = _version(meta.get("version")), _version(node.kernel)
    old = []
    if nft is not None and nft < MIN_NFT:
        old.append(f"nft {meta.get('version')} (needs >= {'.'.join(map(str, MIN_NFT))})")
    if kernel is not None and kernel < MIN_KERNEL:
        old.append(f"kernel {node.kernel} (needs >= {'.'.join(map(str, MIN_KERNEL))})")
    if not old:
        return []
    return [Finding(
        "nft-too-old", ERROR, "nftables version",
        "nftables mode with " + " and ".join(old),
        "kube-proxy's nftables rules use syntax and kernel features older releases lack: "
        "it refuses to start in nftables mode, or its rule updates fail",
        "upgrade nftables/the kernel, or run kube-proxy in iptables mode (mode: iptables) on this node")]


def check_map_chain_missing(node: NodeState) -> list[Finding]:
    findings = []
    for family, index in _tables(node):
        for name in index.sets:
            for key, value in _map_entries(index, name):
                for target in jump_targets(value):
                    if target not in index.rules:
                        findings.append(Finding(
                            "nft-map-chain-missing", ERROR, f"{family} {NFT_TABLE} {name} {key}",
                            f"@{name} element {key} sends to chain {target}, which does not exist",
                            "packets of that service address stop at the verdict map: dropped instead "
                            "of reaching an endpoint",
                            f"nft delete element {family} {NFT_TABLE} {name} {{ {key} }}; restart kube-proxy "
                            "so it rewrites the service"))
        for chain in index.rules:
            for target in index.targets(chain):
                if target not in index.rules:
                    findings.append(Finding(
                        "nft-map-chain-missing", ERROR, f"{family} {NFT_TABLE} chain {chain}",
                        f"chain {chain} jumps to chain {target}, which does not exist",
                        "nft refuses a table with such a jump, so kube-proxy's next transaction fails",
                        f"nft flush chain {family} {NFT_TABLE} {chain}; restart kube-proxy"))
    return findings


def check_service_without_endpoint(node: NodeState) -> list[Finding]:
    findings = []
    for family, index in _tables(node):
        referenced = {t for name in ("service-ips", "service-nodeports")
                      for _key_, value in _map_entries(index, name) for t in jump_targets(value)}
        for chain in sorted(referenced):
            if not chain.startswith("service-") or chain not in index.rules:
                continue
            targets = index.targets(chain)
            if any(t.startswith("endpoint-") and t in index.rules for t in targets):
                continue
            findings.append(Finding(
                "nft-service-without-endpoint", ERROR, f"{family} {NFT_TABLE} chain {chain}",
                f"service chain {chain} (in @service-ips/@service-nodeports) reaches no endpoint-* chain",
                "packets for the service fall through it un-DNATed: clients get no answer instead "
                "of an endpoint or a reject",
                "restart kube-proxy (it rewrites the service chains); kubectl get endpointslices shows "
                "whether the Service has endpoints"))
    return findings


def check_cluster_ip_unserved(node: NodeState) -> list[Finding]:
    findings = []
    for family, index in _tables(node):
        cluster_ips = index.sets.get("cluster-ips")
        if cluster_ips is None:
            continue
        served = {key.split(" . ")[0] for name in SERVICE_MAPS for key, _v in _map_entries(index, name)}
        for element in cluster_ips.get("elem") or ():
            address = _key(element)
            if address in served:
                continue
            findings.append(Finding(
                "nft-cluster-ip-unserved", ERROR, f"{family} {NFT_TABLE} cluster-ips {address}",
                f"ClusterIP {address} is in @cluster-ips but in neither @service-ips nor @no-endpoint-services",
                "cluster-ips-check rejects every connection to it: the Service answers "
                "'connection refused' although it may have endpoints",
                "restart kube-proxy so it rewrites the maps (a flushed map is only refilled on a full sync)"))
    return findings


def check_cluster_ips_check(node: NodeState) -> list[Finding]:
    findings = []
    for family, index in _tables(node):
        jumped = any("cluster-ips-check" in index.targets(name) for name, chain in index.chains.items()
                     if chain.get("hook"))
        if "cluster-ips-check" in index.rules and jumped:
            continue
        state = "is not jumped to from a base chain" if "cluster-ips-check" in index.rules else "is missing"
        findings.append(Finding(
            "nft-cluster-ips-check", WARNING, f"{family} {NFT_TABLE} chain cluster-ips-check",
            f"chain cluster-ips-check {state}",
            "connections to an unused port of a ClusterIP, or to an unallocated ClusterIP, hang "
            "until timeout instead of being rejected (kube-proxy >= 1.30 writes the chain)",
            "upgrade kube-proxy, or restart it so it rewrites its table"))
    return findings
