"""trace(view, packet, origin) → Trace: the hooks in the kernel's order.

Packets from a pod or from outside: PREROUTING → routing → INPUT (IPVS at LOCAL_IN,
priority 98, after filter) or FORWARD → POSTROUTING.  Packets the node sends itself:
routing (source address) → OUTPUT (IPVS at LOCAL_OUT, priority -98, after nat) →
re-route → POSTROUTING.  A packet IPVS translated is sent again through LOCAL_OUT (minus
nat, already bound, and IPVS) and POSTROUTING, as ip_vs_send_or_cont does.

At each hook the iptables tables and nftables base chains run in priority order.  nat
chains are consulted once per direction of manipulation, as for a connection's first
packet; untracked packets (IPVS with net.ipv4.vs.conntrack=0) skip nat altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Optional

from kpctl.core.modes import modes_of_view
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace import ipvs as ipvs_step
from kpctl.core.trace import netfilter, nftables
from kpctl.core.trace.netfilter import ConnState, NfBranch
from kpctl.model.trace import Disposition, Outcome, Packet, Trace, TraceStep

if TYPE_CHECKING:
    from kpctl.model.ipvs import VirtualService

# Priorities (include/uapi/linux/netfilter_ipv4.h) of the iptables tables at each hook.
TABLE_PRIORITY = {"raw": -300, "mangle": -150, "nat-dst": -100, "filter": 0, "security": 50, "nat-src": 100}
HOOK_TABLES = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "security", "nat"),
    "FORWARD": ("mangle", "filter", "security"),
    "OUTPUT": ("raw", "mangle", "nat", "filter", "security"),
    "POSTROUTING": ("mangle", "nat"),
}
NAT_DIRECTION = {"PREROUTING": "dst", "OUTPUT": "dst", "INPUT": "src", "POSTROUTING": "src"}
IPVS_PRIORITY = {"INPUT": 98, "OUTPUT": -98}  # NF_IP_PRI_NAT_SRC - 2, NF_IP_PRI_NAT_DST + 2


@dataclass(frozen=True)
class Flow:
    """One branch in flight."""

    packet: Packet
    conn: ConnState
    probability: float = 1.0
    exact: bool = True
    steps: tuple[TraceStep, ...] = ()
    notes: tuple[str, ...] = ()
    chance: tuple[str, ...] = ()  # how the branch's chance came about
    nat_done: frozenset[str] = frozenset()  # "dst"/"src": nat already bound that way
    translated: str | None = None  # "iptables DNAT" | "nftables dnat" | "IPVS" | "REDIRECT"
    server: str | None = None
    masqueraded: bool = False
    ipvs_done: bool = False

    def add(self, *steps: TraceStep, note: str | None = None) -> Flow:
        notes = self.notes + ((note,) if note and note not in self.notes else ())
        return replace(self, steps=self.steps + steps, notes=notes)


@dataclass(frozen=True)
class _Unit:
    priority: int
    kind: str  # iptables | nft | ipvs
    name: str
    ref: Any = None
    order: tuple[int, int] = (-1, -1)  # when its hook was registered (NodeView.nft_hook_order), if known


Result = list[tuple[Flow, Optional[Outcome]]]  # a finished branch carries its Outcome


def _units(view: NodeView, hook: str, family: str) -> list[_Unit]:
    units: list[_Unit] = []
    fam = "ipv6" if family == "inet6" else "ipv4"
    nft_family = "ip6" if family == "inet6" else "ip"
    for ruleset in view.rulesets.get(fam, ()):
        for table in HOOK_TABLES[hook]:
            if ruleset.table(table) is None:
                continue
            key = table if table != "nat" else f"nat-{NAT_DIRECTION[hook]}"
            order = view.nft_hook_order.get((nft_family, table, hook), (-1, -1)) if ruleset.backend == "nft" \
                else (-1, -1)  # (iptables-nft's tables are in the nft ruleset; legacy's are not)
            units.append(_Unit(TABLE_PRIORITY[key], "iptables", table, ruleset, order))
    for chain in nftables.base_chains(view, hook, family):
        units.append(_Unit(chain.priority, "nft", f"{chain.table}/{chain.name}", chain, chain.order))
    if hook in IPVS_PRIORITY and view.has_ipvs:
        units.append(_Unit(IPVS_PRIORITY[hook], "ipvs", "ipvs"))
    # By priority; of one priority, the hook registered last runs first (nf_hook_entries_grow puts a
    # new hook before those of its priority); unknown ones after, nft backend before legacy as listed.
    units.sort(key=lambda u: (u.priority, -u.order[0], -u.order[1]))
    return units


def _is_nat(unit: _Unit) -> bool:
    return unit.name == "nat" or (unit.kind == "nft" and unit.ref.type == "nat")


def _finish(flow: Flow, disposition: Disposition, reason: str) -> tuple[Flow, Outcome]:
    probability = flow.probability if flow.exact else None
    outcome = Outcome(
        probability=probability if probability is not None else flow.probability,
        disposition=disposition, reason=reason, final=flow.packet,
        server=flow.server if disposition is Disposition.DELIVERED else None,
        masqueraded=flow.masqueraded, chance_note="; ".join(flow.chance) if flow.chance else "",
        notes=flow.notes,
    )
    if not flow.exact:
        outcome = replace(outcome, chance_note=(outcome.chance_note + "; " if outcome.chance_note else "")
                          + "approximate: depends on live state")
    return flow, outcome


class Tracer:
    def __init__(self, view: NodeView) -> None:
        self.view = view

    # -------------------------------------------------------------- one hook

    def hook(self, flows: list[Flow], hook: str, skip_ipvs: bool = False) -> Result:
        """Run every unit of ``hook``; returns flows that go on (Outcome None) and finished ones."""
        out: Result = []
        for flow in flows:
            out.extend(self._hook_one(flow, hook, skip_ipvs))
        return out

    def _hook_one(self, flow: Flow, hook: str, skip_ipvs: bool) -> Result:
        live: list[Flow] = [flow]
        finished: Result = []
        units = _units(self.view, hook, flow.packet.family)
        # The kernel consults a hook's nat chains in turn until one translates; after the last, a
        # connection none translated is bound as it is (nf_nat_inet_fn, a null binding).
        last_nat = max((at for at, unit in enumerate(units) if _is_nat(unit)), default=-1)
        for at, unit in enumerate(units):
            nxt: list[Flow] = []
            for current in live:
                for result, outcome in self._unit(current, hook, unit, skip_ipvs, at == last_nat):
                    if outcome is None:
                        nxt.append(result)
                    else:
                        finished.append((result, outcome))
            live = nxt
        return [(f, None) for f in live] + finished

    def _unit(self, flow: Flow, hook: str, unit: _Unit, skip_ipvs: bool, last_nat: bool) -> Result:
        if unit.kind == "ipvs":
            if skip_ipvs or flow.ipvs_done:
                return [(flow, None)]
            return self._ipvs(flow, hook)
        is_nat = _is_nat(unit)
        if is_nat:
            direction = NAT_DIRECTION.get(hook, "dst")
            if flow.conn.untracked:
                return [(flow.add(TraceStep(hook=hook, stage="conntrack", table=unit.name, reason=(
                    "untracked packet: nat chains are not consulted"))), None)]
            if direction in flow.nat_done:
                return [(flow, None)]
        if unit.kind == "iptables":
            branches = netfilter.walk(unit.ref, unit.name, hook, hook, flow.packet, flow.conn, self.view,
                                      flow.probability, flow.exact)
        else:
            branches = nftables.walk(unit.ref, hook, flow.packet, flow.conn, self.view,
                                     flow.probability, flow.exact)
        results: Result = []
        for branch in branches:  # a nat chain that translated, or the hook's last, binds the connection
            binds = is_nat and (last_nat or branch.nat is not None)
            results.append(self._after_table(flow, hook, unit, branch, binds))
        return results

    def _after_table(self, flow: Flow, hook: str, unit: _Unit, branch: NfBranch,
                     binds: bool) -> tuple[Flow, Outcome | None]:
        chance = flow.chance
        if branch.probability < flow.probability - 1e-12:
            chance = chance + (f"{hook} {unit.name}: {branch.probability / flow.probability:.4f}",)
        nat_done = flow.nat_done | ({NAT_DIRECTION.get(hook, "dst")} if binds else set())
        new = replace(flow, packet=branch.packet, conn=branch.conn, probability=branch.probability,
                      exact=branch.exact, steps=flow.steps + branch.steps, chance=chance,
                      nat_done=frozenset(nat_done),
                      notes=flow.notes + tuple(n for n in branch.notes if n not in flow.notes))
        if branch.nat in ("DNAT", "REDIRECT"):
            # userspace mode: the portal rules send the packet to kube-proxy's own socket.
            words = (branch.rule or "").split()
            portal = len(words) > 1 and words[0] == "-A" and words[1].startswith("KUBE-PORTALS-")
            proxied = branch.nat == "REDIRECT" or (portal and self.view.is_local(branch.packet.dst))
            new = replace(new, translated=("REDIRECT" if proxied else f"{unit.kind} DNAT"),
                          server=branch.packet.endpoint("dst"))
        if branch.nat in ("MASQUERADE", "SNAT"):
            new = replace(new, masqueraded=True)
        if branch.verdict == "ACCEPT":
            return new, None
        where = f"{unit.kind} {unit.name} {hook}"
        if branch.verdict == "REJECT":
            return _finish(new, Disposition.REJECTED, f"rejected ({branch.reject_with or 'reject'}) in {where} by: "
                           f"{branch.rule}")
        if branch.verdict == "QUEUE":
            return _finish(new, Disposition.DROPPED, f"queued to userspace in {where} by: {branch.rule}; with no "
                           "program listening on the queue the kernel drops the packet, a listener's verdict "
                           "decides otherwise (kpctl cannot follow it)")
        by = f"by: {branch.rule}" if branch.rule else "by the chain policy"
        return _finish(new, Disposition.DROPPED, f"dropped in {where} {by}")

    # -------------------------------------------------------------- IPVS

    def _ipvs(self, flow: Flow, hook: str) -> Result:
        packet = flow.packet
        where = "LOCAL_IN" if hook == "INPUT" else "LOCAL_OUT"
        decision = ipvs_step.decide(_ipvs_services(self.view), packet)
        if decision.service is None:
            step = TraceStep(hook=where, stage="ipvs", table="ipvs", matched=False,
                             reason=decision.how_found + ": the packet goes on to the local stack",
                             action="NF_ACCEPT")
            return [(flow.add(step), None)]
        if decision.refusal is not None:
            step = TraceStep(hook=where, stage="ipvs", table="ipvs", matched=True, rule=str(decision.service.key),
                             reason=decision.how_found + "; " + decision.refusal,
                             action="ICMP port unreachable, packet dropped (ip_vs_leave)")
            flow = flow.add(step)
            for note in decision.notes:
                flow = flow.add(note=note)
            return [_finish(flow, Disposition.REJECTED,
                            f"IPVS: {decision.refusal}: the kernel answers ICMP port unreachable")]
        results: Result = []
        listing = ", ".join(f"{c.endpoint} w{c.server.weight} {_pct(c.probability)}" for c in decision.candidates)
        for candidate in decision.candidates:
            after = ipvs_step.translate(packet, candidate)
            step = TraceStep(
                hook=where, stage="ipvs", table="ipvs", matched=True, rule=str(decision.service.key),
                reason=f"{decision.how_found}; candidates: {listing}",
                action=f"schedule → {candidate.endpoint} ({candidate.how}); {candidate.server.forward} "
                       + ("DNAT" if candidate.server.forward == "masq" else "forwarding, address kept"),
                before=packet, after=after,
                details={"scheduler": decision.service.scheduler,
                         "candidates": [{"server": c.endpoint, "weight": c.server.weight,
                                         "probability": c.probability, "exact": c.exact} for c in decision.candidates]},
            )
            probability = flow.probability * (candidate.probability or 0.0)
            branch = replace(flow, packet=after, probability=probability, exact=flow.exact and candidate.exact,
                             chance=flow.chance + (candidate.how,), translated="IPVS",
                             server=candidate.endpoint, ipvs_done=True).add(step)
            for note in decision.notes:
                branch = branch.add(note=note)
            results.extend(self._after_ipvs(branch, hook))
        return results

    def _after_ipvs(self, flow: Flow, hook: str) -> Result:
        """ip_vs_nat_xmit: route to the real server, then LOCAL_OUT (or local delivery)."""
        packet = flow.packet
        if self.view.is_local(packet.dst) and hook == "INPUT":
            # ip_vs_nat_xmit to a local address: NF_ACCEPT, the packet goes on up LOCAL_IN.
            step = TraceStep(hook="ROUTING", stage="routing", reason=f"{packet.dst} is local: the real server "
                             "is a socket on this node", action="local delivery")
            return [_finish(flow.add(step), Disposition.DELIVERED,
                            f"IPVS delivered to the local real server {flow.server}")]
        conntrack = self.view.sysctl("net.ipv4.vs.conntrack")
        if conntrack != "1":
            flow = replace(flow, conn=replace(flow.conn, untracked=True)).add(
                TraceStep(hook="ROUTING", stage="conntrack",
                          reason=f"net.ipv4.vs.conntrack={conntrack or 'unknown (assumed 0)'}: IPVS marks the packet "
                                 "untracked, so nat POSTROUTING (MASQUERADE) is skipped"),
                note="net.ipv4.vs.conntrack is not 1: IPVS traffic is not masqueraded by iptables "
                     "(kube-proxy sets it to 1)")
        rerouted = self._route_out(flow, "IPVS re-route to the real server")
        if isinstance(rerouted, tuple):
            return [rerouted]
        return self._continue_output(rerouted, skip_ipvs=True, resend=True)

    # -------------------------------------------------------------- routing and paths

    def _route_out(self, flow: Flow, why: str) -> Flow | tuple[Flow, Outcome]:
        packet = flow.packet
        result = self.view.lookup(packet.dst)
        if result.kind == "none":
            step = TraceStep(hook="ROUTING", stage="routing", reason=f"{why}: no route to {packet.dst}",
                             action="ENETUNREACH")
            return _finish(flow.add(step), Disposition.NO_ROUTE, f"no route to {packet.dst}")
        if result.kind in ("blackhole", "unreachable", "prohibit"):
            assert result.route is not None
            step = TraceStep(hook="ROUTING", stage="routing", reason=f"{why}: {result.route.describe()}",
                             action=result.kind)
            return _finish(flow.add(step), Disposition.NO_ROUTE, f"{result.kind} route to {packet.dst}")
        assert result.route is not None
        oif = "lo" if result.kind == "local" else result.route.dev
        after = packet.with_(oif=oif)
        step = TraceStep(hook="ROUTING", stage="routing", reason=f"{why}: {result.route.describe()}",
                         action=("local (out via lo)" if result.kind == "local" else f"out via {oif}"))
        return replace(flow, packet=after).add(step)

    def _continue_output(self, flow: Flow, skip_ipvs: bool, resend: bool) -> Result:
        flow = flow.add(TraceStep(hook="OUTPUT", stage="note", reason=(
            "IPVS sends the translated packet through LOCAL_OUT again (nat already bound, IPVS skips it)")
            if resend else "locally generated packet"))
        return self._output_to_postrouting(flow, skip_ipvs)

    def _output_to_postrouting(self, flow: Flow, skip_ipvs: bool = False) -> Result:
        """OUTPUT, a re-route when its nat changed the destination, then POSTROUTING."""
        results: Result = []
        for out, outcome in self.hook([flow], "OUTPUT", skip_ipvs=skip_ipvs):
            if outcome is not None:
                results.append((out, outcome))
                continue
            if out.packet.dst != flow.packet.dst:
                rerouted = self._route_out(out, "re-route after OUTPUT nat")
                if isinstance(rerouted, tuple):
                    results.append(rerouted)
                    continue
                out = rerouted
            results.extend(self._postrouting(out))
        return results

    def _postrouting(self, flow: Flow) -> Result:
        results: Result = []
        for out, outcome in self.hook([flow], "POSTROUTING"):
            if outcome is not None:
                results.append((out, outcome))
                continue
            if out.packet.oif == "lo" or self.view.is_local(out.packet.dst):
                results.extend(self._input(replace(out, packet=out.packet.with_(iif="lo", oif=None)),
                                           looped=True))
                continue
            results.append(self._leave(out))
        return results

    def _leave(self, flow: Flow) -> tuple[Flow, Outcome]:
        packet = flow.packet
        masq = " (source masqueraded)" if flow.masqueraded else ""
        if flow.translated and flow.translated != "REDIRECT":
            return _finish(flow, Disposition.DELIVERED,
                           f"{flow.translated} to {packet.endpoint('dst')}, sent out {packet.oif}{masq}")
        return _finish(flow, Disposition.EXITS_NODE,
                       f"leaves via {packet.oif} to {packet.endpoint('dst')} untranslated: no service rule "
                       f"matched this address and port")

    def _input(self, flow: Flow, looped: bool = False) -> Result:
        results: Result = []
        hook_flows = [flow]
        if looped:
            # loopback: PREROUTING again (raw/mangle; nat is already bound), then INPUT.
            pre = self.hook(hook_flows, "PREROUTING")
            hook_flows = [f for f, o in pre if o is None]
            results.extend((f, o) for f, o in pre if o is not None)
        for out, outcome in self.hook(hook_flows, "INPUT", skip_ipvs=looped and flow.ipvs_done):
            if outcome is not None:
                results.append((out, outcome))
                continue
            results.append(self._local_stack(out))
        return results

    def _local_stack(self, flow: Flow) -> tuple[Flow, Outcome]:
        packet = flow.packet
        if flow.translated == "REDIRECT":
            return _finish(flow, Disposition.TO_LOCAL_STACK,
                           f"REDIRECT to {packet.endpoint('dst')}: a local proxy socket (kube-proxy userspace "
                           "mode picks an endpoint there)")
        if flow.translated:
            return _finish(flow, Disposition.DELIVERED,
                           f"{flow.translated} to {packet.endpoint('dst')}, a socket on this node")
        return _finish(flow, Disposition.TO_LOCAL_STACK,
                       f"handed to the local stack at {packet.endpoint('dst')}: nothing translated it; unless a "
                       "socket listens there, TCP answers with a reset (connection refused)")

    # -------------------------------------------------------------- entry points

    def from_remote(self, flow: Flow) -> Result:
        results: Result = []
        for out, outcome in self.hook([flow], "PREROUTING"):
            if outcome is not None:
                results.append((out, outcome))
                continue
            route = self.view.lookup(out.packet.dst)
            if route.kind == "local":
                assert route.route is not None
                step = TraceStep(hook="ROUTING", stage="routing", action="local: INPUT",
                                 reason=f"{out.packet.dst} is a local address: {route.route.describe()}")
                results.extend(self._input(out.add(step)))
                continue
            if self.view.sysctl("net.ipv4.ip_forward", "1") == "0":
                step = TraceStep(hook="ROUTING", stage="routing", reason="net.ipv4.ip_forward=0", action="drop")
                results.append(_finish(out.add(step), Disposition.DROPPED,
                                       "the node does not forward (net.ipv4.ip_forward=0)"))
                continue
            routed = self._route_out(out, "forward")
            if isinstance(routed, tuple):
                results.append(routed)
                continue
            for fwd, fwd_outcome in self.hook([routed], "FORWARD"):
                if fwd_outcome is not None:
                    results.append((fwd, fwd_outcome))
                    continue
                results.extend(self._postrouting(fwd))
        return results

    def from_node(self, flow: Flow) -> Result:
        routed = self._route_out(flow, "local socket")
        if isinstance(routed, tuple):
            return [routed]
        return self._output_to_postrouting(routed)


def _ipvs_services(view: NodeView) -> tuple[VirtualService, ...] | list[dict[str, Any]]:
    """The snapshot's IPVS service rows as they are (decide builds the one it finds), or, for a
    section of another shape, the view's fully built services."""
    rows = view.ipvs_service_rows
    return rows if rows is not None else view.ipvs_services


def _pct(probability: float | None) -> str:
    return "?" if probability is None else f"{probability * 100:.1f}%"


def _iter_outcomes(results: Result) -> Iterator[tuple[Flow, Outcome]]:
    for flow, outcome in results:
        if outcome is not None:
            yield flow, outcome


def trace(view: NodeView, packet: Packet, origin: str = "node", service: str = "") -> Trace:
    """The pure function behind `kpctl trace`: every branch the packet can take, with chances."""
    conn = ConnState(original=packet)
    flow = Flow(packet=packet, conn=conn)
    tracer = Tracer(view)
    start: Callable[[Flow], Result] = tracer.from_node if origin == "node" else tracer.from_remote
    results = start(flow)
    branches = [(f.steps, o) for f, o in _iter_outcomes(results)]
    branches.sort(key=lambda b: -(b[1].probability or 0.0))
    notes: list[str] = []
    for _, outcome in branches:
        for note in outcome.notes:
            if note not in notes:
                notes.append(note)
    return Trace.from_branches(service or packet.endpoint("dst"), origin, packet, modes_of_view(view).active,
                               branches, tuple(notes))
