"""Walk one iptables table/chain with a packet, as the kernel's ip_tables does.

Jumps push, gotos replace the current frame, RETURN (or falling off a user chain) pops,
falling off a built-in chain applies its policy.  Terminal targets end the walk of this
table for this hook.  ``statistic`` matches fork the walk into weighted branches, so the
result is a list of :class:`NfBranch` whose probabilities add up to the input's.

Matches are judged for the first packet of a new connection: conntrack state NEW (plus
DNAT/SNAT once translated), no earlier `recent` entries, a TCP SYN.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

from kpctl.core.snapshot_view import NodeView
from kpctl.model.trace import Packet, TraceStep

if TYPE_CHECKING:  # the nftables tracer shares this module's connection state: no iptables model for it
    from kpctl.model.iptables import Match, Rule, Ruleset, Target

MAX_RULE_VISITS = 50_000
NON_TERMINAL_TARGETS = frozenset({"LOG", "NFLOG", "ULOG", "TRACE", "AUDIT", "COUNTER", "CONNMARK",
                                  "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "TCPMSS", "CHECKSUM",
                                  "SECMARK", "CONNSECMARK", "IDLETIMER", "LED", "SET"})


@dataclass(frozen=True)
class ConnState:
    """What conntrack knows about the packet's connection while the trace walks."""

    original: Packet  # the packet as first seen (before any NAT)
    untracked: bool = False
    dnat: bool = False
    snat: bool = False
    recent_set: tuple[str, ...] = ()  # `recent --set` lists this trace added the client to


@dataclass(frozen=True)
class NfBranch:
    """One way through a table: its chance, the verdict, the packet after, the steps."""

    probability: float
    exact: bool
    verdict: str  # ACCEPT | DROP | REJECT | QUEUE
    packet: Packet
    conn: ConnState
    steps: tuple[TraceStep, ...] = ()
    nat: str | None = None  # DNAT | SNAT | MASQUERADE | REDIRECT
    reject_with: str | None = None
    rule: str | None = None  # the rule that decided (text), None for a policy
    notes: tuple[str, ...] = ()


# A walk's steps so far, newest last: (the steps before, the step), None for none.  A step is
# added by pairing, not by copying the tuple of all before it (quadratic in a chain's length: the
# trace of the last of 40,000 services, past their KUBE-SERVICES rules, took 6.9 s, now 3.2), and
# the branches a fork makes share the steps before it; a branch's tuple is made once, when it ends
# (steps_of).  Freeing a long trail is safe: the deallocator of nested tuples bounds its depth.
Trail = Optional[tuple["Trail", TraceStep]]


def steps_of(trail: Trail) -> tuple[TraceStep, ...]:
    """The steps of ``trail``, oldest first."""
    steps = []
    while trail is not None:
        trail, step = trail
        steps.append(step)
    steps.reverse()
    return tuple(steps)


@dataclass(frozen=True)
class _Machine:
    stack: tuple[tuple[str, int], ...]
    packet: Packet
    conn: ConnState
    probability: float
    exact: bool
    steps: Trail = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Judgement:
    """A match's answer: ``chance`` 1.0 matched, 0.0 not, in between a statistic fork."""

    chance: float
    reason: str
    exact: bool = True
    note: str | None = None


def _yes(reason: str, note: str | None = None) -> _Judgement:
    return _Judgement(1.0, reason, note=note)


def _no(reason: str, note: str | None = None) -> _Judgement:
    return _Judgement(0.0, reason, note=note)


def _answer(hit: bool, reason: str) -> _Judgement:
    return _yes(reason) if hit else _no(reason)


@dataclass
class _Env:
    view: NodeView
    hook: str
    table: str
    builtin: str = ""  # the built-in chain the walk started in (its policy ends it)


# ------------------------------------------------------------------ matches


def _judge_builtin(match: Match, packet: Packet) -> list[_Judgement]:
    out = []
    if match.src is not None:
        hit = match.src.matches(packet.src)
        out.append(_answer(hit, f"src {packet.src} {'∈' if hit != match.src.negated else '∉'} "
                                f"{match.src.cidr}" + (" (negated)" if match.src.negated else "")))
    if match.dst is not None:
        hit = match.dst.matches(packet.dst)
        out.append(_answer(hit, f"dst {packet.dst} {'∈' if hit != match.dst.negated else '∉'} "
                                f"{match.dst.cidr}" + (" (negated)" if match.dst.negated else "")))
    if match.protocol is not None:
        hit = match.protocol.matches(packet.protocol)
        out.append(_answer(hit, f"protocol {packet.protocol} {'is' if hit else 'is not'} "
                                f"{'!' if match.protocol.negated else ''}{match.protocol.name}"))
    for label, spec, device in (("in", match.in_interface, packet.iif), ("out", match.out_interface, packet.oif)):
        if spec is not None:
            hit = device is not None and spec.matches(device)
            if device is None:
                hit = spec.negated
            out.append(_answer(hit, f"{label}-interface {device or '(none)'} vs {'!' if spec.negated else ''}{spec.name}"))
    if match.fragment is not None:
        out.append(_answer(not match.fragment, "first packet is not a fragment"))
    return out


def _judge_ports(match: Match, packet: Packet) -> list[_Judgement]:
    out = []
    if match.module in ("tcp", "udp", "sctp", "udplite") and match.module != packet.protocol:
        return [_no(f"-m {match.module} needs a {match.module} packet")]
    for label, spec, port in (("sport", match.sport, packet.sport), ("dport", match.dport, packet.dport)):
        if spec is not None:
            hit = spec.matches(port)
            out.append(_answer(hit, f"{label} {port} {'matches' if hit else 'does not match'} "
                                    f"{'!' if spec.negated else ''}{_ranges(spec.ranges)}"))
    if match.ports is not None:
        hit = (any(lo <= p <= hi for lo, hi in match.ports.ranges for p in (packet.sport, packet.dport))
               != match.ports.negated)
        out.append(_answer(hit, f"ports {packet.sport}/{packet.dport} vs {_ranges(match.ports.ranges)}"))
    if match.module == "tcp":
        syn = match.option("--syn")
        flags = match.option("--tcp-flags")
        if syn is not None:
            out.append(_answer(not syn.negated, "first packet is a SYN"))
        if flags is not None and len(flags.values) == 2:
            mask = set(flags.values[0].upper().split(","))
            want = set(flags.values[1].upper().split(","))
            if "ALL" in mask:
                mask = {"SYN", "ACK", "FIN", "RST", "URG", "PSH"}
            have = {"SYN"} & mask
            want = want if "NONE" not in want else set()
            hit = (have == (want & mask)) != flags.negated
            out.append(_answer(hit, f"SYN packet vs --tcp-flags {flags.values[0]} {flags.values[1]}"))
    return out


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ranges)


def _judge_module(match: Match, packet: Packet, conn: ConnState, env: _Env) -> list[_Judgement]:
    module = match.module
    if module == "":
        return _judge_builtin(match, packet)
    if module in ("tcp", "udp", "sctp", "udplite", "multiport"):
        return _judge_ports(match, packet)
    if module == "comment":
        return []
    if module == "set":
        spec = match.match_set
        if spec is None:
            return []
        from kpctl.core import ipset_find

        found = ipset_find.lookup(env.view.ipsets, spec.name, spec.flags, packet)
        hit = found.found != spec.negated
        prefix = "! " if spec.negated else ""
        return [_answer(hit, f"{prefix}match-set {spec.name} {','.join(spec.flags)}: {found.reason}")]
    if module in ("mark", "connmark"):
        mark_spec = match.mark
        if mark_spec is None:
            return []
        mark = packet.mark if module == "mark" else 0
        hit = mark_spec.matches(mark)
        return [_answer(hit, f"{'conn' if module == 'connmark' else ''}mark {mark:#x} & {mark_spec.mask:#x} "
                             f"{'==' if hit != mark_spec.negated else '!='} {mark_spec.value:#x}"
                             + (" (negated)" if mark_spec.negated else ""))]
    if module == "statistic":
        stat = match.statistic
        if stat is None:
            return []
        if stat.mode == "random" and stat.probability is not None:
            chance = 1.0 - stat.probability if stat.negated else stat.probability
            return [_Judgement(chance, f"statistic random: taken with probability {chance:.4f}")]
        every = stat.every or 1
        chance = 1.0 / every
        if stat.negated:
            chance = 1.0 - chance
        return [_Judgement(chance, f"statistic nth every {every}: one packet in {every} "
                                   f"(depends on the live counter)", exact=False)]
    if module == "recent":
        return [_judge_recent(match, conn)]
    if module == "addrtype":
        return _judge_addrtype(match, packet, env)
    if module in ("conntrack", "state"):
        return _judge_conntrack(match, packet, conn)
    if module == "physdev":
        phys = match.physdev
        if phys is None:
            return []
        wants = [w for w in (phys.is_in, phys.is_out, phys.is_bridged) if w is not None]
        hit = all(w is False for w in wants) and phys.physdev_in is None and phys.physdev_out is None
        return [_answer(hit, "the packet is routed, not bridged (no physdev)")]
    if module == "pkttype":
        opt = match.option("--pkt-type")
        hit = opt is not None and (opt.value == "unicast") != opt.negated
        return [_answer(hit, f"packet type unicast vs {opt.value if opt else '?'}")]
    if module in ("limit", "hashlimit", "connlimit", "length", "ttl", "hl", "u32"):
        return [_yes(f"-m {module} assumed to let the first packet through",
                     note=f"-m {module} is not modelled; assumed to match")]
    return [_no(f"-m {module} is not modelled; assumed not to match",
                note=f"-m {module} is not modelled; rules using it are assumed not to match")]


def _judge_recent(match: Match, conn: ConnState) -> _Judgement:
    spec = match.recent
    if spec is None:
        return _yes("recent")
    who = "source" if spec.side == "rsource" else "destination"
    if spec.action in ("rcheck", "update"):
        seen = spec.name in conn.recent_set
        hit = seen != spec.negated
        reason = (f"recent --{spec.action} {spec.name}: "
                  + ("client was just recorded" if seen else
                     f"no earlier connection from this {who} recorded (first connection)"))
        note = (f"session affinity ({spec.name}): later connections from the same {who} within "
                f"{spec.seconds or '∞'}s return to the endpoint chosen now")
        return _Judgement(1.0 if hit else 0.0, reason, note=note)
    if spec.action == "set":
        return _Judgement(0.0 if spec.negated else 1.0, f"recent --set {spec.name}: records the client")
    return _yes(f"recent --{spec.action} {spec.name}")


def _judge_addrtype(match: Match, packet: Packet, env: _Env) -> list[_Judgement]:
    spec = match.addrtype
    if spec is None:
        return []
    out = []
    for label, types, negated, address in (("src", spec.src_type, spec.src_negated, packet.src),
                                           ("dst", spec.dst_type, spec.dst_negated, packet.dst)):
        if types is None:
            continue
        kind = env.view.address_type(address)
        hit = (kind in {t.upper() for t in types}) != negated
        out.append(_answer(hit, f"{label}-type of {address} is {kind} "
                                f"({'!' if negated else ''}{','.join(types)} wanted; from the local table)"))
    return out


def _conn_states(conn: ConnState) -> set[str]:
    if conn.untracked:
        return {"UNTRACKED"}
    states = {"NEW"}
    if conn.dnat:
        states.add("DNAT")
    if conn.snat:
        states.add("SNAT")
    return states


def _judge_conntrack(match: Match, packet: Packet, conn: ConnState) -> list[_Judgement]:
    spec = match.conntrack
    if spec is None:
        return []
    out = []
    have = _conn_states(conn)
    if spec.ctstate is not None:
        hit = bool(have & {s.upper() for s in spec.ctstate}) != spec.ctstate_negated
        out.append(_answer(hit, f"ctstate {','.join(sorted(have))} vs {'!' if spec.ctstate_negated else ''}"
                                f"{','.join(spec.ctstate)} (first packet of a connection)"))
    if spec.ctstatus is not None:
        hit = spec.ctstatus_negated
        out.append(_answer(hit, f"ctstatus of a new connection is none of {','.join(spec.ctstatus)}"))
    for key, value in (("ctorigsrc", conn.original.src), ("ctorigdst", conn.original.dst),
                       ("ctreplsrc", packet.dst), ("ctrepldst", packet.src)):
        address = getattr(spec, key)
        if address is not None:
            hit = address.matches(value)
            out.append(_answer(hit, f"{key} {value} vs {'!' if address.negated else ''}{address.network}"))
    for key, port in (("ctorigsrcport", conn.original.sport), ("ctorigdstport", conn.original.dport),
                      ("ctreplsrcport", packet.dport), ("ctrepldstport", packet.sport)):
        ports = getattr(spec, key)
        if ports is not None:
            out.append(_answer(ports.matches(port), f"{key} {port} vs {_ranges(ports.ranges)}"))
    if spec.ctproto is not None:
        out.append(_answer(spec.ctproto.matches(packet.protocol), f"ctproto {packet.protocol}"))
    if spec.ctdir is not None:
        out.append(_answer(spec.ctdir.upper() == "ORIGINAL", f"ctdir {spec.ctdir}: the packet goes ORIGINAL"))
    return out


def judge_rule(rule: Rule, packet: Packet, conn: ConnState, env: _Env) -> _Judgement:
    """Combine the rule's matches: any definite no → no; statistic chances multiply."""
    chance, exact, reasons, notes = 1.0, True, [], []
    for match in rule.matches:
        for judgement in _judge_module(match, packet, conn, env):
            if judgement.note:
                notes.append(judgement.note)
            if judgement.chance == 0.0:
                return _Judgement(0.0, judgement.reason, note="; ".join(notes) or None)
            chance *= judgement.chance
            exact = exact and judgement.exact
            reasons.append(judgement.reason)
    return _Judgement(chance, "; ".join(reasons) or "matches every packet", exact, "; ".join(notes) or None)


# ------------------------------------------------------------------ targets


def _nat_destination(target: Target, packet: Packet) -> tuple[Packet, str]:
    spec = target.to_destination
    if spec is None:
        return packet, "DNAT without --to-destination"
    dst = spec.min_address or packet.dst
    port = spec.min_port if spec.min_port is not None else packet.dport
    note = ""
    if spec.max_address and spec.max_address != spec.min_address:
        note = f" (range up to {spec.max_address}: the kernel picks one by hash)"
    return packet.with_(dst=dst, dport=port), f"DNAT → {packet.endpoint('dst')} becomes {dst}:{port}{note}"


def queued(what: str, queues: str, bypass: bool) -> tuple[str, str]:
    """(action text, verdict) of a packet handed to userspace queue(s) ``queues``: a program
    listening there gives the verdict, which kpctl cannot know; with none, the kernel drops the
    packet, or with bypass (`--queue-bypass`, nft `flags bypass`) lets it through as if accepted."""
    if bypass:
        return (f"{what} to userspace queue {queues} with bypass: with no program listening there the kernel lets "
                "the packet through, followed here as accepted; a listener's verdict would decide instead", "ACCEPT")
    return f"{what} to userspace queue {queues}", "QUEUE"


def _apply_target(target: Target, packet: Packet, env: _Env) -> tuple[Packet, str, str | None, str | None]:
    """(packet after, action text, verdict or None to continue, nat kind)."""
    name = target.name
    if name == "MARK":
        after = packet.with_(mark=target.apply_mark(packet.mark))
        assert target.xmark is not None
        value, mask = target.xmark
        return after, f"MARK: ({packet.mark:#x} & ~{mask:#x}) ^ {value:#x} = {after.mark:#x}", None, None
    if name == "DNAT":
        after, text = _nat_destination(target, packet)
        return after, text, "ACCEPT", "DNAT"
    if name == "SNAT":
        spec = target.to_source
        src = spec.min_address if spec and spec.min_address else packet.src
        return packet.with_(src=src), f"SNAT → source becomes {src}", "ACCEPT", "SNAT"
    if name == "MASQUERADE":
        version = ipaddress.ip_address(packet.dst).version
        masq_src = env.view.primary_address(packet.oif, version) if packet.oif else None
        if masq_src is None:
            return packet, f"MASQUERADE: no address on {packet.oif or 'the output device'}", "ACCEPT", "MASQUERADE"
        own = env.view.primary_address(packet.oif, version, fallback=False) if packet.oif else None
        whose = f"address of {packet.oif}" if own else f"{packet.oif} has none: the node's first global address"
        return packet.with_(src=masq_src), f"MASQUERADE → source becomes {masq_src} ({whose})", \
            "ACCEPT", "MASQUERADE"
    if name == "REDIRECT":
        ports = target.to_ports
        version = ipaddress.ip_address(packet.dst).version
        if packet.iif is None:
            dst = "127.0.0.1" if version == 4 else "::1"
        else:
            found = env.view.primary_address(packet.iif, version, fallback=False)
            if found is None:
                return packet, f"REDIRECT: {packet.iif} has no address, the kernel drops the packet", "DROP", None
            dst = found
        port = ports[0] if ports else packet.dport
        after = packet.with_(dst=dst, dport=port)
        return after, f"REDIRECT → {dst}:{port} (a local socket)", "ACCEPT", "REDIRECT"
    if name in ("ACCEPT", "DROP"):
        return packet, name, name, None
    if name == "REJECT":
        return packet, f"REJECT with {target.reject_with}", "REJECT", None
    if name in ("QUEUE", "NFQUEUE"):
        given = target.option("--queue-balance", "--queue-num")
        queues = given.values[0] if given is not None else "0"
        text, verdict = queued(name, queues, target.option("--queue-bypass") is not None)
        return packet, text, verdict, None
    if name in ("NOTRACK", "CT"):
        return packet, f"{name}: conntrack setting (no NAT for untracked packets)", None, None
    if name in NON_TERMINAL_TARGETS:
        return packet, f"{name} (does not stop the walk)", None, None
    return packet, f"{name}: target not modelled, walk continues", None, None


# ------------------------------------------------------------------ the walk


def walk(ruleset: Ruleset, table: str, chain: str, hook: str, packet: Packet, conn: ConnState,
         view: NodeView, probability: float = 1.0, exact: bool = True) -> list[NfBranch]:
    """All branches of ``table``/``chain`` for ``packet`` (ACCEPT when the chain is missing)."""
    env = _Env(view, hook, table, chain)
    tab = ruleset.table(table)
    if tab is None or tab.chain(chain) is None:
        return [NfBranch(probability, exact, "ACCEPT", packet, conn)]
    builtin = tab.chains[chain]
    if not builtin.rules and (builtin.policy or "ACCEPT") == "ACCEPT":
        return [NfBranch(probability, exact, "ACCEPT", packet, conn)]  # nothing to show
    pending = [_Machine(((chain, 0),), packet, conn, probability, exact)]
    done: list[NfBranch] = []
    visits = 0
    label = f"{ruleset.family}/{ruleset.backend}" if ruleset.backend != "nft" else ruleset.family

    def step(m: _Machine, **kw: object) -> TraceStep:
        return TraceStep(hook=hook, stage="iptables", table=table, depth=len(m.stack) - 1,
                         details={"ruleset": label}, **kw)  # type: ignore[arg-type]

    while pending:
        m = pending.pop()
        while True:
            current, index = m.stack[-1]
            rules: Sequence[Rule] = tab.chains[current].rules if current in tab.chains else ()
            visits += 1
            if visits > MAX_RULE_VISITS:
                done.append(NfBranch(m.probability, m.exact, "DROP", m.packet, m.conn, steps_of(m.steps),
                                     notes=m.notes + ("rule walk too long (a loop?); stopped",)))
                break
            if index >= len(rules):
                if len(m.stack) == 1:
                    policy = tab.chains[chain].policy or "ACCEPT"
                    m = replace(m, steps=(m.steps, step(m, chain=current, matched=None, action=f"policy {policy}",
                                                        reason=f"end of {current}: policy of {chain} is {policy}")))
                    done.append(NfBranch(m.probability, m.exact, policy, m.packet, m.conn, steps_of(m.steps),
                                         notes=m.notes))
                    break
                m = replace(m, stack=m.stack[:-1], steps=(
                    m.steps, step(m, chain=current, action=f"return to {m.stack[-2][0]}",
                                  reason=f"end of {current}: back to the caller")))
                continue
            rule = rules[index]
            m = replace(m, stack=m.stack[:-1] + ((current, index + 1),))
            judgement = judge_rule(rule, m.packet, m.conn, env)
            notes = m.notes + ((judgement.note,) if judgement.note and judgement.note not in m.notes else ())
            if judgement.chance < 1.0:
                missed = replace(m, probability=m.probability * (1.0 - judgement.chance),
                                 exact=m.exact and judgement.exact, notes=notes,
                                 steps=(m.steps, step(m, chain=current, rule_number=rule.number, rule=rule.text,
                                                      matched=False, reason=judgement.reason)))
                if judgement.chance == 0.0:
                    m = missed
                    continue
                pending.append(missed)
                m = replace(m, probability=m.probability * judgement.chance, exact=m.exact and judgement.exact)
            m = replace(m, notes=notes)
            result = _take(m, rule, judgement, tab.chains, step, env)
            if isinstance(result, NfBranch):
                done.append(result)
                break
            m = result
    return done


def _take(m: _Machine, rule: Rule, judgement: _Judgement, chains: Mapping[str, object],
          step: object, env: _Env) -> _Machine | NfBranch:
    make = step  # a closure building TraceSteps for this walk
    current = rule.chain
    target = rule.target
    reason = judgement.reason
    base = {"chain": current, "rule_number": rule.number, "rule": rule.text, "matched": True, "reason": reason}
    if target is None:
        return replace(m, steps=(m.steps, make(m, action="(no target: counts only)", **base)))  # type: ignore[operator]
    if target.is_chain:
        if target.name not in chains:
            return replace(m, steps=(m.steps, make(m, action=f"jump to missing chain {target.name}", **base)))  # type: ignore[operator]
        verb = "goto" if rule.goto else "jump"
        stack = m.stack[:-1] if rule.goto else m.stack
        return replace(m, steps=(m.steps, make(m, action=f"{verb} {target.name}", **base)),  # type: ignore[operator]
                       stack=stack + ((target.name, 0),))
    if target.name == "RETURN":
        entry = make(m, action="RETURN", **base)  # type: ignore[operator]
        if len(m.stack) == 1:
            tab_chain = chains[env.builtin]
            policy = getattr(tab_chain, "policy", None) or "ACCEPT"
            return NfBranch(m.probability, m.exact, policy, m.packet, m.conn, steps_of((m.steps, entry)), notes=m.notes)
        return replace(m, stack=m.stack[:-1], steps=(m.steps, entry))
    before = m.packet
    after, action, verdict, nat = _apply_target(target, before, env)
    conn = m.conn
    if target.name in ("NOTRACK",) or (target.name == "CT" and target.option("--notrack") is not None):
        conn = replace(conn, untracked=True)
    if nat == "DNAT" or nat == "REDIRECT":
        conn = replace(conn, dnat=True)
    if nat in ("SNAT", "MASQUERADE"):
        conn = replace(conn, snat=True)
    for match in rule.matches:
        spec = match.recent if match.module == "recent" else None
        if spec is not None and spec.action == "set" and spec.name not in conn.recent_set:
            conn = replace(conn, recent_set=conn.recent_set + (spec.name,))
    entry = make(m, action=action, before=before if after != before else None,  # type: ignore[operator]
                 after=after if after != before else None, **base)
    steps: Trail = (m.steps, entry)
    if verdict is None:
        return replace(m, packet=after, conn=conn, steps=steps)
    return NfBranch(m.probability, m.exact, verdict, after, conn, steps_of(steps), nat=nat,
                    reject_with=target.reject_with if verdict == "REJECT" else None, rule=rule.text,
                    notes=m.notes)
