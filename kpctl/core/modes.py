"""Which kube-proxy modes left state on a node, and which one is taken as active.

kube-proxy writes different kernel state per mode: IPVS services + kube-ipvs0 + KUBE-* ipsets
(ipvs), KUBE-SVC/KUBE-SEP chains (iptables), the ``kube-proxy`` nft table (nftables), or
KUBE-PORTALS chains (userspace). A mode switch without `kube-proxy --cleanup` leaves the old
mode's state behind, where it keeps matching packets; `services`, `doctor` and `trace` all
need the same answer to "what is here", so it is worked out once, here.

Pure: the caller hands in what it read (any of them may be empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kpctl.core.nft_json import items

if TYPE_CHECKING:
    from kpctl.model.iptables import Ruleset

IPVS, IPTABLES, NFTABLES, USERSPACE = "ipvs", "iptables", "nftables", "userspace"
MODES: tuple[str, ...] = (IPVS, IPTABLES, NFTABLES, USERSPACE)
NFT_TABLE = "kube-proxy"

# Chains only kube-proxy's IPVS mode creates (the shared KUBE-SERVICES & co. are told apart by content).
IPVS_ONLY_CHAINS = frozenset({"KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER", "KUBE-LOAD-BALANCER", "KUBE-NODE-PORT",
                              "KUBE-LOOP-BACK", "KUBE-SOURCE-RANGES-FIREWALL"})
# Per-service chains of iptables mode, by prefix.
IPTABLES_PREFIXES: tuple[str, ...] = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-SVL-", "KUBE-FW-")
USERSPACE_PREFIXES: tuple[str, ...] = ("KUBE-PORTALS-", "KUBE-NODEPORT-CONTAINER", "KUBE-NODEPORT-HOST")
# kubelet's own chains: never a kube-proxy leftover.
KUBELET_CHAINS = frozenset({"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-MARK-DROP"})
# When several modes carry services and nothing says which runs, the newer mode is taken as the
# one switched to (kube-proxy >= 1.29 removes nftables state itself when it starts in another mode).
_PREFERENCE: tuple[str, ...] = (NFTABLES, IPVS, IPTABLES, USERSPACE)


@dataclass(frozen=True)
class ModeState:
    """What one mode left on the node: named objects (``ipset KUBE-CLUSTER-IP``, ``chain nat/KUBE-SVC-X``…)."""

    mode: str
    objects: tuple[str, ...]
    carries_services: bool  # it implements at least one Service (not only scaffolding)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "objects": list(self.objects), "carries_services": self.carries_services}


@dataclass(frozen=True)
class ModeReport:
    active: str  # one of MODES, or "none"
    reason: str  # why that one
    present: tuple[ModeState, ...]  # in MODES order

    @property
    def leftovers(self) -> tuple[ModeState, ...]:
        return tuple(state for state in self.present if state.mode != self.active)

    def state(self, mode: str) -> ModeState | None:
        return next((s for s in self.present if s.mode == mode), None)

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "reason": self.reason, "present": [s.to_dict() for s in self.present]}


def _kube_services_mode(rulesets: Sequence[Ruleset]) -> str | None:
    """Which iptables-based mode last wrote nat KUBE-SERVICES (kube-proxy rewrites it on every sync)."""
    for ruleset in rulesets:
        chain = ruleset.chain("nat", "KUBE-SERVICES")
        for rule in chain.rules if chain is not None else ():
            jump = rule.jump or ""
            if jump.startswith(("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-")):
                return IPTABLES
            if "--match-set" in rule.text and "KUBE-" in rule.text:
                return IPVS
    return None


def detect_modes(*, ipvs_services: int = 0, vip_addresses: Iterable[str] = (), ipset_names: Iterable[str] = (),
                 rulesets: Iterable[Ruleset] = (), nft_tables: Iterable[tuple[str, str]] = (),
                 hint: str | None = None) -> ModeReport:
    """Every mode's state found, and the active mode: ``hint`` (e.g. kube-proxy's configured mode)
    when given, else the only mode carrying services, else who last wrote KUBE-SERVICES, else the
    newest mode present."""
    rulesets = tuple(rulesets)
    objects: dict[str, list[str]] = {mode: [] for mode in MODES}
    carries: dict[str, bool] = dict.fromkeys(MODES, False)
    if ipvs_services:
        objects[IPVS].append(f"{ipvs_services} IPVS virtual service(s)")
        carries[IPVS] = True
    vips = list(vip_addresses)
    if vips:
        objects[IPVS].append(f"kube-ipvs0 with {len(vips)} address(es)")
    objects[IPVS].extend(f"ipset {name}" for name in sorted(ipset_names) if name.startswith("KUBE-"))
    shared: list[str] = []
    for ruleset in rulesets:
        where = f"{ruleset.family}/{ruleset.backend}"
        for table in ruleset.tables.values():
            for name in table.chains:
                if not name.startswith("KUBE-") or name in KUBELET_CHAINS:
                    continue
                label = f"chain {table.name}/{name} ({where})"
                if name in IPVS_ONLY_CHAINS:
                    objects[IPVS].append(label)
                elif name.startswith(IPTABLES_PREFIXES):
                    objects[IPTABLES].append(label)
                    carries[IPTABLES] = carries[IPTABLES] or name.startswith("KUBE-SVC-")
                elif name.startswith(USERSPACE_PREFIXES):
                    objects[USERSPACE].append(label)
                    carries[USERSPACE] = True
                else:
                    shared.append(label)
    for family, name in nft_tables:
        if name == NFT_TABLE:
            objects[NFTABLES].append(f"nft table {family} {name}")
            carries[NFTABLES] = True
    writer = _kube_services_mode(rulesets)
    # The shared chains belong to the iptables-based mode that wrote them (or to ipvs/iptables by
    # what else is there); listed with that mode so leftovers name them.
    owner = writer or (IPVS if objects[IPVS] else IPTABLES if objects[IPTABLES] else None)
    if shared:
        objects[owner or IPTABLES].extend(shared)
    present = tuple(ModeState(mode, tuple(objects[mode]), carries[mode]) for mode in MODES if objects[mode])
    active, reason = _choose(present, writer, hint)
    return ModeReport(active=active, reason=reason, present=present)


def _choose(present: Sequence[ModeState], writer: str | None, hint: str | None) -> tuple[str, str]:
    if hint:
        return hint, f"configured mode {hint}"
    if not present:
        return "none", "no kube-proxy state found"
    serving = [s.mode for s in present if s.carries_services]
    if len(serving) == 1:
        return serving[0], f"only {serving[0]} state implements services"
    if len(present) == 1:
        return present[0].mode, f"only {present[0].mode} state found"
    candidates = serving or [s.mode for s in present]
    if NFTABLES not in candidates and writer in candidates:
        return writer, f"nat KUBE-SERVICES was last written by {writer} mode"
    best = min(candidates, key=_PREFERENCE.index)
    return best, f"state of {', '.join(candidates)} coexists; {best} taken as the mode switched to"


def modes_of_view(view: Any, hint: str | None = None) -> ModeReport:
    """detect_modes over a NodeView (kpctl.core.snapshot_view)."""
    rows = view.ipvs_service_rows
    ipvs_count = len(rows) if rows is not None else len(view.ipvs_services)
    vips = next((link.addresses for link in view.links if link.name == "kube-ipvs0"), ())
    rulesets = [r for group in view.rulesets.values() for r in group]
    return detect_modes(ipvs_services=ipvs_count, vip_addresses=vips, ipset_names=view.ipsets,
                        rulesets=rulesets, nft_tables=nft_tables(view.nftables), hint=hint or view.section("mode"))


def nft_tables(document: Any) -> list[tuple[str, str]]:
    """(family, name) of every table in an `nft -j list ruleset` document."""
    return [(str(table.get("family", "")), str(table.get("name", ""))) for table in items(document, "table")
            if isinstance(table, dict)]
