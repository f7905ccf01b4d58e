"""Leftovers of another kube-proxy mode after a switch without `kube-proxy --cleanup`: the old
mode's state keeps matching packets beside the active mode's (stale DNAT to old endpoints,
VIPs answered locally, rule sets fighting over the same addresses)."""

from __future__ import annotations

import weakref
from collections.abc import Callable

from kpctl.core.modes import (
    IPTABLES,
    IPVS,
    NFT_TABLE,
    NFTABLES,
    USERSPACE,
    ModeReport,
    detect_modes,
    nft_tables,
)
from kpctl.model.doctor import ERROR, Finding, NodeState
from kpctl.model.links import VIP_DEVICE

SHOWN = 6  # objects named in a finding; the count says how many there are

# The last node asked about, by weak reference: the memo must not keep a whole node (110,000
# rules) alive after its run, for the collector to walk again at interpreter exit (0.2 s).
_memo: list[tuple[weakref.ref[NodeState], ModeReport]] = []


def node_modes(node: NodeState) -> ModeReport:
    """kpctl.core.modes' answer for this node, worked out once per NodeState (run_checks and
    every leftover check ask; each detection walks every chain)."""
    if _memo and _memo[0][0]() is node:
        return _memo[0][1]
    vips = next((link.addresses for link in node.links or () if link.name == VIP_DEVICE), ())
    report = detect_modes(
        ipvs_services=len(node.ipvs.services) if node.ipvs else 0, vip_addresses=vips,
        ipset_names=[s.name for s in node.ipsets or ()],
        rulesets=[r for by_backend in node.iptables.values() for r in by_backend.values()],
        nft_tables=nft_tables(node.nftables), hint=node.mode)
    _memo[:] = [(weakref.ref(node), report)]
    return report


def _describe(objects: tuple[str, ...]) -> str:
    """``9 ipsets: KUBE-CLUSTER-IP, …; 5 chains: filter/KUBE-IPVS-FILTER (ipv4/nft), …``: every kind
    of object named, a few of each, so a long list of one kind does not hide the others."""
    groups: dict[str, list[str]] = {}
    for obj in objects:
        kind = next((k for k in ("ipset", "chain", "nft table") if obj.startswith(k + " ")), "")
        groups.setdefault(kind, []).append(obj[len(kind) + 1:] if kind else obj)
    parts = list(groups.pop("", []))
    for kind, names in groups.items():
        more = ", …" if len(names) > SHOWN else ""
        parts.append(f"{len(names)} {kind}{'s' if len(names) > 1 else ''}: {', '.join(names[:SHOWN])}{more}")
    return "; ".join(parts)


_CHAINS_BY_HAND = ("remove the jumps to the KUBE-* chains listed from the built-in chains, then "
                   "iptables -t TABLE -F CHAIN && iptables -t TABLE -X CHAIN for each")


def _fix(mode: str, objects: tuple[str, ...]) -> str:
    """kube-proxy --cleanup removes every mode's state; the exact commands where they are short."""
    if mode == NFTABLES:
        families = sorted({o.split()[2] for o in objects if o.startswith("nft table ")})
        return " && ".join(f"nft delete table {family} {NFT_TABLE}" for family in families) + "  (or kube-proxy --cleanup)"
    if mode == IPVS:
        steps = ["ipvsadm -C"] if any("IPVS virtual service" in o for o in objects) else []
        if any(o.startswith(VIP_DEVICE) for o in objects):
            steps.append(f"ip link delete {VIP_DEVICE}")
        if any(o.startswith("chain ") for o in objects):
            steps.append(_CHAINS_BY_HAND)
        sets = [o.split()[1] for o in objects if o.startswith("ipset ")]
        steps += [f"ipset destroy {name}" for name in sets[:SHOWN]] + (["…"] if len(sets) > SHOWN else [])
        return "kube-proxy --cleanup (with mode: ipvs), or by hand: " + " && ".join(steps)
    return f"kube-proxy --cleanup (removes the KUBE-* chains of the {mode} mode), or by hand: {_CHAINS_BY_HAND}"


def _leftover_check(mode: str) -> Callable[[NodeState], list[Finding]]:
    def run(node: NodeState) -> list[Finding]:
        report = node_modes(node)
        state = report.state(mode)
        if state is None or report.active == mode:
            return []
        shown = _describe(state.objects)
        return [Finding(
            f"leftover-{mode}", ERROR, f"{mode} mode state",
            f"active mode is {report.active} ({report.reason}) but {mode} mode left: {shown}",
            "the old mode's state still matches packets beside the active mode's: stale DNAT to old "
            "endpoints, Service addresses answered locally, rules fighting over the same addresses",
            _fix(mode, state.objects))]
    return run


check_leftover_ipvs = _leftover_check(IPVS)
check_leftover_iptables = _leftover_check(IPTABLES)
check_leftover_nftables = _leftover_check(NFTABLES)
check_leftover_userspace = _leftover_check(USERSPACE)
