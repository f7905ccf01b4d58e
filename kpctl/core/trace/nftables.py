"""Walk nftables base chains (from `nft -j list ruleset`) with a packet.

Covers what kube-proxy's nftables mode writes: payload/meta/ct/fib matches, concatenations,
named sets and verdict maps (``ip daddr . meta l4proto . th dport vmap @service-ips``),
``numgen random mod N`` (a fork into N equally likely branches), mark arithmetic,
jump/goto/return, accept/drop/reject, dnat/snat/masquerade.  iptables-nft's own tables
(ip filter/nat/mangle/raw/security) are walked from iptables-save text instead.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any

from kpctl.core.nft_json import TableIndex
from kpctl.core.nft_json import elements as _elements
from kpctl.core.nft_json import priority as _priority
from kpctl.core.snapshot_view import NodeView
from kpctl.core.trace.netfilter import ConnState, NfBranch, Trail, queued, steps_of
from kpctl.model.trace import Packet, TraceStep

IPTABLES_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
MAX_VISITS = 50_000
_UNKNOWN = object()


@dataclass(frozen=True)
class NftChain:
    family: str
    table: str
    name: str
    type: str | None = None
    hook: str | None = None
    priority: int = 0
    policy: str = "accept"
    order: tuple[int, int] = (-1, -1)  # NodeView.nft_hook_order: (-1, -1) when the ruleset does not say


def _family_ok(nft_family: str, family: str) -> bool:
    return nft_family == "inet" or (nft_family == "ip") == (family == "inet") and nft_family in ("ip", "ip6")


def base_chains(view: NodeView, hook: str, family: str) -> list[NftChain]:
    """Base chains on ``hook`` for ``family`` outside iptables-nft's tables."""
    out = []
    for chain in view.nft_base_chains:
        if str(chain.get("hook", "")).upper() != hook or not _family_ok(chain.get("family", ""), family):
            continue
        if chain.get("table") in IPTABLES_TABLES and chain.get("family") in ("ip", "ip6"):
            continue
        out.append(NftChain(chain["family"], chain["table"], chain["name"], chain.get("type"),
                            chain.get("hook"), _priority(chain.get("prio", 0)), chain.get("policy", "accept"),
                            view.nft_hook_order.get((chain["family"], chain["table"], chain["name"]), (-1, -1))))
    return out


# ------------------------------------------------------------------ values


class _Eval:
    def __init__(self, tables: TableIndex, packet: Packet, conn: ConnState, view: NodeView, numgen: int | None):
        self.tables, self.packet, self.conn, self.view, self.numgen = tables, packet, conn, view, numgen

    def value(self, expr: Any) -> Any:
        p = self.packet
        if not isinstance(expr, dict):
            return expr
        if "payload" in expr:
            field = expr["payload"].get("field")
            if field == "saddr":
                return p.src
            if field == "daddr":
                return p.dst
            proto = expr["payload"].get("protocol")
            if proto not in ("th", p.protocol):
                return _UNKNOWN
            return p.sport if field == "sport" else p.dport if field == "dport" else _UNKNOWN
        if "meta" in expr:
            key = expr["meta"].get("key")
            return {"l4proto": p.protocol, "protocol": "ip" if p.family == "inet" else "ip6",
                    "mark": p.mark, "iifname": p.iif, "oifname": p.oif, "iif": p.iif, "oif": p.oif,
                    "nfproto": "ipv4" if p.family == "inet" else "ipv6"}.get(key, _UNKNOWN)
        if "ct" in expr:
            key = expr["ct"].get("key")
            if key == "state":
                return ["untracked"] if self.conn.untracked else ["new"]
            if key == "status":
                return (["dnat"] if self.conn.dnat else []) + (["snat"] if self.conn.snat else [])
            if key == "direction":
                return "original"
            return _UNKNOWN
        if "fib" in expr:
            flags = expr["fib"].get("flags", [])
            address = p.dst if "daddr" in flags else p.src
            if expr["fib"].get("result") == "type":
                return self.view.address_type(address).lower()
            return _UNKNOWN
        if "concat" in expr:
            return [self.value(e) for e in expr["concat"]]
        if "numgen" in expr:
            return self.numgen if self.numgen is not None else _UNKNOWN
        for op in ("&", "|", "^"):
            if op in expr:
                left, right = (self.value(e) for e in expr[op])
                if not isinstance(left, int) or not isinstance(right, int):
                    return _UNKNOWN
                return left & right if op == "&" else left | right if op == "|" else left ^ right
        if "set" in expr:
            return {"__set__": _elements(expr["set"])}
        if "prefix" in expr or "range" in expr:
            return expr
        return _UNKNOWN

    def member(self, value: Any, element: Any) -> bool:
        if isinstance(element, dict) and "elem" in element:
            element = element["elem"].get("val")
        if isinstance(element, dict) and "concat" in element:
            element = element["concat"]
        if isinstance(element, list) and isinstance(value, list):
            return len(element) == len(value) and all(self.member(v, e) for v, e in zip(value, element))
        if isinstance(element, dict) and "prefix" in element:
            try:
                network = ipaddress.ip_network(f"{element['prefix']['addr']}/{element['prefix']['len']}", strict=False)
                return ipaddress.ip_address(str(value)) in network
            except ValueError:
                return False
        if isinstance(element, dict) and "range" in element:
            low, high = element["range"]
            try:
                if isinstance(value, int):
                    return int(low) <= value <= int(high)
                ip = int(ipaddress.ip_address(str(value)))
                return int(ipaddress.ip_address(low)) <= ip <= int(ipaddress.ip_address(high))
            except ValueError:
                return False
        if isinstance(value, list):
            return element in value
        return bool(value == element or str(value) == str(element))

    def set_elements(self, right: Any) -> list[Any] | None:
        if isinstance(right, str) and right.startswith("@"):
            found = self.tables.sets.get(right[1:])
            return None if found is None else _elements(found.get("elem"))
        if isinstance(right, dict) and "set" in right:
            return _elements(right["set"])
        return None

    def match(self, spec: dict[str, Any]) -> tuple[bool | None, str]:
        left = self.value(spec.get("left"))
        op = spec.get("op", "==")
        right = spec.get("right")
        text = f"{_show(spec.get('left'))} {op} {_show(right)}"
        if left is _UNKNOWN:
            return None, f"{text}: not modelled"
        elements = self.set_elements(right)
        if elements is not None:
            hit = any(self.member(left, e) for e in elements)
            why = f"{text}: {_show(left)} {'in' if hit else 'not in'} the set"
            if isinstance(right, str) and right.startswith("@affinity-") and not hit:
                why += " (session affinity: no earlier connection from this client recorded; first connection)"
            return (hit if op in ("==", "in") else not hit), why
        if isinstance(left, list) and not isinstance(right, (list, dict)):
            hit = right in left  # ct state new, …
        elif isinstance(right, list) and not isinstance(left, list):
            hit = left in right
        elif isinstance(right, dict) and ("prefix" in right or "range" in right):
            hit = self.member(left, right)
        else:
            rv = self.value(right)
            if op in ("<", ">", "<=", ">=") and isinstance(left, int) and isinstance(rv, int):
                hit = {"<": left < rv, ">": left > rv, "<=": left <= rv, ">=": left >= rv}[op]
                return hit, f"{text}: {left}"
            hit = self.member(left, rv)
        if op == "!=":
            hit = not hit
        return hit, f"{text}: {_show(left)}"


def _show(expr: Any) -> str:
    if isinstance(expr, dict):
        if "payload" in expr:
            return f"{expr['payload'].get('protocol')} {expr['payload'].get('field')}"
        if "meta" in expr:
            return f"meta {expr['meta'].get('key')}"
        if "ct" in expr:
            return f"ct {expr['ct'].get('key')}"
        if "fib" in expr:
            return f"fib {' . '.join(expr['fib'].get('flags', []))} {expr['fib'].get('result')}"
        if "concat" in expr:
            return " . ".join(_show(e) for e in expr["concat"])
        if "numgen" in expr:
            return f"numgen {expr['numgen'].get('mode')} mod {expr['numgen'].get('mod')}"
        if "prefix" in expr:
            return f"{expr['prefix']['addr']}/{expr['prefix']['len']}"
        if "range" in expr and isinstance(expr["range"], list):
            return "-".join(_show(e) for e in expr["range"])
        if "set" in expr:
            return "{ " + ", ".join(_show_element(e) for e in _elements(expr["set"])) + " }"
        if "elem" in expr:
            return _show(expr["elem"].get("val"))
        for op in ("&", "|", "^"):
            if op in expr:
                return f" {op} ".join(hex(e) if isinstance(e, int) else _show(e) for e in expr[op])
        if len(expr) == 1:
            (verb, target), = expr.items()
            if isinstance(target, dict) and "target" in target:
                return f"{verb} {target['target']}"
    if isinstance(expr, list):
        return " . ".join(_show(e) for e in expr)
    return str(expr)


def _show_element(element: Any) -> str:
    if isinstance(element, list) and len(element) == 2 and isinstance(element[1], dict):
        return f"{_show(element[0])} : {_show(element[1])}"
    return _show(element)


def rule_text(rule: dict[str, Any]) -> str:
    """A short nft-like rendering of a rule (for steps)."""
    parts = []
    for expr in rule.get("expr", ()):
        (key, value), = expr.items() if isinstance(expr, dict) and len(expr) == 1 else (("?", expr),)
        if key == "match":
            left, op, right = value.get("left"), value.get("op"), value.get("right")
            binary = isinstance(left, dict) and any(k in left for k in ("&", "|", "^"))
            shown = "" if op in ("==", "in") and not binary else f"{op} "
            parts.append(f"{_show(left)} {shown}{hex(right) if binary and isinstance(right, int) else _show(right)}")
        elif key == "vmap":
            parts.append(f"{_show(value.get('key'))} vmap {_show(value.get('data'))}")
        elif key in ("jump", "goto"):
            parts.append(f"{key} {value.get('target')}")
        elif key == "mangle":
            parts.append(f"{_show(value.get('key'))} set {_show(value.get('value'))}")
        elif key in ("dnat", "snat"):
            parts.append(f"{key} to {value.get('addr')}" + (f":{value['port']}" if value.get("port") else ""))
        elif key == "queue" and isinstance(value, dict):
            flags = value.get("flags")
            flags = ",".join(flags) if isinstance(flags, list) else flags
            parts.append("queue" + (f" flags {flags}" if flags else "")
                         + (f" to {_show(value['num'])}" if "num" in value else ""))
        elif key == "counter":
            continue
        elif key == "set" and isinstance(value, dict):
            parts.append(f"{value.get('op')} {value.get('set')} {{ {_show(value.get('elem'))} }}")
        elif value is None:
            parts.append(key)
        else:
            parts.append(key)
    text = " ".join(parts)
    if rule.get("comment"):
        text += f' comment "{rule["comment"]}"'
    return text


# ------------------------------------------------------------------ the walk


@dataclass(frozen=True)
class _M:
    stack: tuple[tuple[str, int], ...]
    packet: Packet
    conn: ConnState
    probability: float
    steps: Trail = None  # see netfilter.Trail
    notes: tuple[str, ...] = ()
    numgen: tuple[tuple[int, int], ...] = ()  # (rule handle, value) chosen on this branch


def _numgen_mod(rule: dict[str, Any]) -> int | None:
    def find(expr: Any) -> int | None:
        if isinstance(expr, dict):
            if "numgen" in expr:
                return int(expr["numgen"].get("mod", 1))
            for value in expr.values():
                found = find(value)
                if found:
                    return found
        if isinstance(expr, list):
            for value in expr:
                found = find(value)
                if found:
                    return found
        return None
    return find(rule.get("expr"))


def _numgen_offset(rule: dict[str, Any]) -> int:
    text = str(rule.get("expr"))
    if "'offset'" in text:
        for expr in rule.get("expr", ()):
            value = expr.get("vmap", {}).get("key", {}) if isinstance(expr, dict) else {}
            if isinstance(value, dict) and "numgen" in value:
                return int(value["numgen"].get("offset", 0))
    return 0


def walk(chain: NftChain, hook: str, packet: Packet, conn: ConnState, view: NodeView,
         probability: float = 1.0, exact: bool = True) -> list[NfBranch]:
    tables = view.nft_table(chain.family, chain.table)
    label = f"{chain.family} {chain.table}"
    pending = [_M(((chain.name, 0),), packet, conn, probability)]
    done: list[NfBranch] = []
    visits = 0
    read: dict[str, list[dict[str, Any]]] = {}  # the rules of each chain met (decoded once: TableIndex.rules)

    def step(m: _M, chain_name: str, **kw: Any) -> TraceStep:
        return TraceStep(hook=hook, stage="nftables", table=label, chain=chain_name, depth=len(m.stack) - 1, **kw)

    while pending:
        m = pending.pop()
        while True:
            visits += 1
            if visits > MAX_VISITS:
                done.append(NfBranch(m.probability, exact, "DROP", m.packet, m.conn, steps_of(m.steps),
                                     notes=m.notes + ("nft walk too long; stopped",)))
                break
            current, index = m.stack[-1]
            rules = read.get(current)
            if rules is None:
                rules = read[current] = tables.rules.get(current, [])
            if index >= len(rules):
                if len(m.stack) == 1:
                    policy = chain.policy.upper()
                    m = replace(m, steps=(m.steps, step(m, current, action=f"policy {chain.policy}",
                                                        reason=f"end of base chain {current}")))
                    done.append(NfBranch(m.probability, exact, policy, m.packet, m.conn, steps_of(m.steps), notes=m.notes))
                    break
                m = replace(m, stack=m.stack[:-1], steps=(
                    m.steps, step(m, current, action=f"return to {m.stack[-2][0]}", reason=f"end of {current}")))
                continue
            rule = rules[index]
            m = replace(m, stack=m.stack[:-1] + ((current, index + 1),))
            mod = _numgen_mod(rule)
            handle = int(rule.get("handle", index))
            chosen = dict(m.numgen).get(handle)
            if mod and chosen is None:
                offset = _numgen_offset(rule)
                for value in range(offset + mod - 1, offset, -1):
                    pending.append(replace(m, stack=m.stack[:-1] + ((current, index),),
                                           probability=m.probability / mod, numgen=m.numgen + ((handle, value),)))
                m = replace(m, stack=m.stack[:-1] + ((current, index),), probability=m.probability / mod,
                            numgen=m.numgen + ((handle, offset),))
                continue
            outcome = _run_rule(rule, tables, m, view, chosen)
            text = rule_text(rule)
            base = {"rule_number": index + 1, "rule": text}
            if outcome[0] == "nomatch":
                m = replace(m, steps=(m.steps, step(m, current, matched=False, reason=outcome[1], **base)))
                continue
            _, reason, after, verdict, arg = outcome
            note = None
            if mod:
                reason = f"numgen random mod {mod} = {chosen} (chance 1/{mod}); " + reason
            entry = step(m, current, matched=True, reason=reason, action=_action(verdict, arg),
                         before=m.packet if after != m.packet else None, after=after if after != m.packet else None,
                         **base)
            conn2 = m.conn
            if verdict in ("dnat",):
                conn2 = replace(conn2, dnat=True)
            if verdict in ("snat", "masquerade"):
                conn2 = replace(conn2, snat=True)
            m = replace(m, packet=after, conn=conn2, steps=(m.steps, entry),
                        notes=m.notes + ((note,) if note else ()))
            if verdict in (None, "continue"):
                continue
            if verdict == "jump" or verdict == "goto":
                if arg not in tables.rules:
                    continue
                stack = m.stack if verdict == "jump" else m.stack[:-1]
                if not stack:  # goto from the base chain: its policy still applies at the end
                    stack = ((current, len(rules)),)
                m = replace(m, stack=stack + ((arg, 0),))
                continue
            if verdict == "return":
                if len(m.stack) == 1:
                    done.append(NfBranch(m.probability, exact, chain.policy.upper(), m.packet, m.conn, steps_of(m.steps),
                                         notes=m.notes))
                    break
                m = replace(m, stack=m.stack[:-1])
                continue
            final = {"accept": "ACCEPT", "drop": "DROP", "reject": "REJECT", "dnat": "ACCEPT", "snat": "ACCEPT",
                     "masquerade": "ACCEPT", "redirect": "ACCEPT", "queue": "QUEUE"}[verdict]
            nat = {"dnat": "DNAT", "snat": "SNAT", "masquerade": "MASQUERADE", "redirect": "REDIRECT"}.get(verdict)
            done.append(NfBranch(m.probability, exact, final, m.packet, m.conn, steps_of(m.steps), nat=nat,
                                 reject_with="icmp port-unreachable" if verdict == "reject" else None,
                                 rule=f"{label} {current}: {text}", notes=m.notes))
            break
    return done


def _action(verdict: str | None, arg: Any) -> str | None:
    if verdict is None:
        return None
    return f"{verdict} {arg}" if arg not in (None, "") else verdict


def _run_rule(rule: dict[str, Any], tables: TableIndex, m: _M, view: NodeView, numgen: int | None) -> tuple[Any, ...]:
    """("nomatch", reason) or ("match", reason, packet after, verdict or None, argument)."""
    ev = _Eval(tables, m.packet, m.conn, view, numgen)
    packet = m.packet
    reasons: list[str] = []
    for expr in rule.get("expr", ()):
        if not isinstance(expr, dict) or len(expr) != 1:
            continue
        (key, value), = expr.items()
        if key == "match":
            hit, why = ev.match(value)
            if hit is None:
                return ("nomatch", why + " (assumed not to match)")
            if not hit:
                return ("nomatch", why)
            reasons.append(why)
        elif key == "vmap":
            found = ev.value(value.get("key"))
            elements = ev.set_elements(value.get("data")) or []
            for element in elements:
                if isinstance(element, list) and len(element) == 2 and ev.member(found, element[0]):
                    verdict_expr = element[1]
                    (verb, target), = verdict_expr.items()
                    name = target.get("target") if isinstance(target, dict) else None
                    reasons.append(f"{_show(value.get('key'))} = {_show(found)} → {verb} {name or ''}")
                    return ("match", "; ".join(reasons), packet, verb, name)
            reasons.append(f"{_show(value.get('key'))} = {_show(found)}: not in {_show(value.get('data'))}")
            return ("match", "; ".join(reasons), packet, "continue", "no map entry")
        elif key == "mangle":
            target = value.get("key", {})
            if isinstance(target, dict) and target.get("meta", {}).get("key") == "mark":
                new = ev.value(value.get("value"))
                if isinstance(new, int):
                    reasons.append(f"mark {packet.mark:#x} → {new:#x}")
                    packet = packet.with_(mark=new & 0xFFFFFFFF)
                    ev.packet = packet
        elif key in ("jump", "goto"):
            return ("match", "; ".join(reasons) or "matches", packet, key, value.get("target"))
        elif key == "queue":
            spec = value if isinstance(value, dict) else {}
            flags = spec.get("flags", ())
            bypass = "bypass" in (flags if isinstance(flags, list) else (flags,))
            text, verdict = queued("queue", _show(spec.get("num", 0)), bypass)
            reasons.append(text)
            return ("match", "; ".join(reasons), packet, verdict.lower(), None)
        elif key in ("accept", "drop", "return", "reject"):
            return ("match", "; ".join(reasons) or "matches", packet, key, None)
        elif key == "dnat":
            address = value.get("addr", packet.dst)
            port = value.get("port", packet.dport)
            after = packet.with_(dst=str(address), dport=int(port))
            return ("match", "; ".join(reasons) or "matches", after, "dnat", f"{address}:{port}")
        elif key == "snat":
            after = packet.with_(src=str(value.get("addr", packet.src)))
            return ("match", "; ".join(reasons) or "matches", after, "snat", value.get("addr"))
        elif key == "masquerade":
            version = ipaddress.ip_address(packet.dst).version
            src = view.primary_address(packet.oif, version) if packet.oif else None
            after = packet.with_(src=src) if src else packet
            return ("match", "; ".join(reasons) or "matches", after, "masquerade", src)
        elif key == "redirect":
            port = (value or {}).get("port", packet.dport)
            dst = view.primary_address(packet.iif, 4) if packet.iif else "127.0.0.1"
            after = packet.with_(dst=dst or packet.dst, dport=int(port))
            return ("match", "; ".join(reasons) or "matches", after, "redirect", f"{dst}:{port}")
        # counter, log, limit, set updates (affinity), notrack…: do not change the verdict
    return ("match", "; ".join(reasons) or "matches", packet, None, None)
