"""nft syntax written from the libnftables JSON: rules, sets, maps, chains, tables (`-o save`).

What `nft -f` loads back into the same ruleset.  It covers what kube-proxy's nftables mode and
hand-written node firewalls use: payload/meta/ct/fib/numgen expressions, concatenations,
prefixes and ranges, named and anonymous sets and verdict maps, counters, jump/goto/verdicts,
reject, dnat/snat/masquerade/redirect, mark set, log, limit, set updates, comments.  Anything
else raises InvalidInput naming it: wrong syntax must never be printed as if it were right.
"""

from __future__ import annotations

import re
from typing import Any

from kpctl.core.nft_json import NAMED_PRIORITIES
from kpctl.errors import InvalidInput

_IDENTIFIER = re.compile(r"[A-Za-z_.][A-Za-z0-9_./\-]*\Z")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_.:/\-]+\Z")
# Keys whose values are strings (interface names, kinds): nft prints them quoted.
_STRING_KEYS = frozenset({"iifname", "oifname", "ibrname", "obrname", "iifkind", "oifkind", "sdifname", "iif", "oif"})
_STRING_TYPES = frozenset({"ifname"})  # sets of interface names: their elements quoted
_VERDICTS = ("accept", "drop", "continue", "return", "queue")
_BINARY = ("&", "|", "^", "<<", ">>")
_BINDS = {"<<": 4, ">>": 4, "&": 3, "^": 2, "|": 1}  # nft's grammar: shifts bind tightest, then & ^ |
_BINARY_SET = frozenset(_BINARY)
_SET_KEYS = frozenset({"family", "name", "table", "type", "handle", "flags", "elem", "timeout", "gc-interval",
                       "size", "policy", "comment", "map", "auto-merge"})
_CHAIN_KEYS = frozenset({"family", "table", "name", "handle", "type", "hook", "prio", "policy", "comment", "dev"})
_RULE_KEYS = frozenset({"family", "table", "chain", "handle", "expr", "comment", "index"})
_TABLE_KEYS = frozenset({"family", "name", "handle", "flags", "comment"})
_NAT_KEYS = frozenset({"addr", "port", "family", "flags"})
_UNQUALIFIED = frozenset({"iif", "oif", "iifname", "oifname", "iifgroup", "oifgroup"})  # nft writes no "meta"
# `reject` alone: what nft writes for the family's default (ICMP port unreachable of its kind)
_DEFAULT_REJECT = {"ip": "icmp", "ip6": "icmpv6", "inet": "icmpx"}
# Set elements nft writes on a line, by the key's type (five, two, else one per line)
_PER_LINE = {**dict.fromkeys(("nf_proto", "integer", "arp_op", "inet_proto", "inet_service", "tcp_flag",
                              "dccp_pkttype", "mark", "iface_index", "classid", "uid", "gid", "ct_dir"), 5),
             **dict.fromkeys(("ipv4_addr", "ct_state", "ct_status", "pkt_type"), 2)}
# Standard chain priorities nft writes by name, per family (with the one hook some are for); a
# priority within 10 of one is written from it ("dstnat - 10")
_PRIORITIES: dict[str, tuple[tuple[str, int], ...]] = {
    **dict.fromkeys(("ip", "ip6", "inet"), tuple(NAMED_PRIORITIES.items())),
    "bridge": (("dstnat", -300), ("filter", -200), ("out", 100), ("srcnat", 300)),
    "arp": (("filter", 0),), "netdev": (("filter", 0),)}
_PRIORITY_HOOK = {"dstnat": "prerouting", "srcnat": "postrouting", "out": "output"}


def unrenderable(what: str, value: Any) -> InvalidInput:
    shown = repr(value)
    return InvalidInput(f"cannot write nft syntax for {what} {shown[:80]}{'…' if len(shown) > 80 else ''}",
                        "kpctl's save covers kube-proxy's expressions; use -o json for the rest")


def _known(kind: str, body: Any, keys: frozenset[str]) -> None:
    """Refuse a ``kind`` (rule, chain, dnat…) with options nft syntax is not written for here
    (nothing made when all are known: this runs for each rule and NAT statement)."""
    if not keys.issuperset(body):
        raise unrenderable(f"{kind} option", sorted(set(body) - keys))


def name(text: Any) -> str:
    """A table, chain or set name; nft (1.0.6) reads only bare identifiers there, never quoted ones."""
    text = str(text)
    if not _IDENTIFIER.match(text):
        raise unrenderable("a name nft cannot read back", text)
    return text


def quoted(text: Any) -> str:
    text = str(text)
    if '"' in text or "\n" in text:
        raise unrenderable("a string with a double quote or newline", text)
    return f'"{text}"'


def value(item: Any, string: bool = False) -> str:
    if isinstance(item, str):
        if item.startswith("@") and _IDENTIFIER.match(item[1:]):
            return item  # a named set (after iifname too: quoted, it would be a name to match)
        if not string and _BARE_VALUE.match(item):
            return item
        return quoted(item)
    if isinstance(item, bool):
        return "exists" if item else "missing"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, list):  # flag values: ct state { established, related } → established,related
        return ",".join(value(v, string) for v in item)
    return expression(item, string)


def expression(expr: Any, string: bool = False) -> str:
    """One libnftables JSON expression as nft writes it."""
    if not isinstance(expr, dict):
        return value(expr, string)
    if len(expr) != 1:
        raise unrenderable("expression", expr)
    (kind, body), = expr.items()
    if kind == "payload":
        if "protocol" in body:
            return f"{body['protocol']} {body['field']}"
        return f"@{body['base']},{body['offset']},{body['len']}"
    if kind in ("meta", "rt"):
        key = body["key"]
        return key if kind == "meta" and key in _UNQUALIFIED else f"{kind} {key}"
    if kind == "ct":
        parts = ["ct"] + [body[k] for k in ("dir", "family") if body.get(k)] + [body["key"]]
        return " ".join(parts)
    if kind == "fib":
        flags = body.get("flags", [])
        return f"fib {' . '.join([flags] if isinstance(flags, str) else flags)} {body['result']}"
    if kind == "numgen":
        offset = f" offset {body['offset']}" if body.get("offset") else ""
        return f"numgen {body.get('mode', 'inc')} mod {body['mod']}{offset}"
    if kind == "concat":
        return " . ".join(_operand(e, string) for e in body)
    if kind == "prefix":
        return f"{value(body['addr'])}/{body['len']}"
    if kind == "range":
        low, high = body
        return f"{value(low, string)}-{value(high, string)}"
    if kind == "set":
        members = body if isinstance(body, list) else [body]
        return "{ " + ", ".join(element(e, string) for e in members) + " }"
    if kind == "elem":
        return element(expr, string)
    if kind == "map":
        return f"{expression(body['key'])} map {expression(body['data'])}"
    if kind in _BINARY:
        left, right = body
        # a tighter operation on the left is written without parentheses, as nft writes it
        # (meta mark & 0xff | 0x1); a shift's count is no mark
        count = kind in ("<<", ">>")
        second = None if count else _mark(left, right)
        return f"{_operand(left, string, _BINDS[kind])} {kind} {second or _operand(right, string)}"
    text = _verdict(kind, body)
    if text is None:
        raise unrenderable("expression", expr)
    return text


def _verdict(kind: str, body: Any) -> str | None:
    """A verdict (accept, drop, …) or a jump/goto to a chain as nft writes it; None for anything else."""
    if kind in ("jump", "goto"):
        return f"{kind} {name(body['target'])}"
    if kind in _VERDICTS and body is None:
        return kind
    return None


def _mark(expr: Any, item: Any) -> str | None:
    """``item`` as nft writes numbers met by a packet or connection mark (``meta mark``, ``ct
    mark``, an operation on one): ``0x00004000``, ``{ 0x00000001, 0x00000002 }``; None when
    ``item`` is no such number, range or set of them, or ``expr`` no mark."""
    if type(item) is not int and type(item) is not dict:  # (most matches: an address, a name)
        return None
    while isinstance(expr, dict) and len(expr) == 1:
        (kind, body), = expr.items()
        if kind in _BINARY:
            expr = body[0]
            continue
        if kind not in ("meta", "ct") or not isinstance(body, dict) or body.get("key") != "mark":
            return None
        members = item.get("set") if type(item) is dict else None
        if type(members) is list:
            texts = [text for text in map(_marked_number, members) if text]
            return "{ " + ", ".join(texts) + " }" if len(texts) == len(members) else None
        return _marked_number(item)
    return None


def _operand(expr: Any, string: bool, binds: int = 0) -> str:
    """An operand of a binary operation; one that is an operation itself in parentheses unless
    it binds tighter than ``binds`` (the operation it is the left of)."""
    if isinstance(expr, list):  # flags inside a binary operation: tcp flags & (syn | ack)
        return "(" + " | ".join(value(v, string) for v in expr) + ")"
    text = expression(expr, string)
    inner = next((_BINDS[k] for k in expr if k in _BINDS), None) if isinstance(expr, dict) else None
    return f"({text})" if inner is not None and (not binds or inner <= binds) else text


def element(item: Any, string: bool = False) -> str:
    """A set element (with its timeout, counter, comment) or a map element ``KEY : VALUE``."""
    if isinstance(item, list) and len(item) == 2:
        return f"{element(item[0], string)} : {expression(item[1])}"
    if isinstance(item, dict) and "elem" in item:
        body = item["elem"]
        text = expression(body["val"], string)
        if body.get("timeout"):
            text += f" timeout {duration(body['timeout'])}"
        if isinstance(body.get("counter"), dict):
            text += f" counter packets {body['counter'].get('packets', 0)} bytes {body['counter'].get('bytes', 0)}"
        if body.get("comment"):
            text += f" comment {quoted(body['comment'])}"
        return text
    return expression(item, string)


def _string_key(expr: Any) -> bool:
    if isinstance(expr, dict):
        body = expr.get("meta") or expr.get("rt")
        if isinstance(body, dict):
            return body.get("key") in _STRING_KEYS
        if "concat" in expr:
            return any(_string_key(e) for e in expr["concat"])
    return False


def _flags(body: dict[str, Any]) -> str:
    flags = body.get("flags")
    if not flags:
        return ""
    return " " + (flags if isinstance(flags, str) else ",".join(flags))


def _nat(kind: str, body: Any) -> str:
    if body is None:
        return kind
    _known(kind, body, _NAT_KEYS)
    text = kind + (f" {body['family']}" if body.get("family") else "")
    if "addr" in body or "port" in body:
        target = expression(body["addr"]) if "addr" in body else ""
        if "port" in body:
            if ":" in target and not isinstance(body["addr"], dict):
                target = f"[{target}]"
            target += f":{expression(body['port'])}"
        text += f" to {target}"
    return text + _flags(body)


_LOG_KEYS = ("prefix", "level", "group", "snaplen", "queue-threshold", "flags")  # in nft's order
_LOG_KNOWN = frozenset(_LOG_KEYS)
_LOG_FLAGS = ("ip options", "skuid", "ether")  # written after tcp's, each its own "flags"


def _log_flags(flags: Any) -> str:
    """A log statement's flags as nft writes them: ``flags all``, ``flags tcp sequence,options``,
    ``flags ip options``…"""
    if not flags:
        return ""
    flags = [flags] if isinstance(flags, str) else list(flags)
    if "all" in flags:
        return " flags all"
    tcp: list[str] = []
    rest = []
    for flag in flags:
        if isinstance(flag, str) and flag.startswith("tcp "):
            tcp.append(flag[4:])
        else:
            rest.append(flag)
    if any(flag not in _LOG_FLAGS for flag in rest):
        raise unrenderable("log flag", flags)
    return (f" flags tcp {','.join(tcp)}" if tcp else "") + "".join(f" flags {flag}" for flag in _LOG_FLAGS
                                                                   if flag in rest)


def statement(stmt: Any, family: str = "") -> str:
    """One rule statement (a match, a verdict, a NAT, a counter…) as nft writes it (in a rule of
    ``family``: a reject of its default kind is written as nft writes it, without ``with``)."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        raise unrenderable("statement", stmt)
    (kind, body), = stmt.items()
    if kind == "match":
        left, op, right = body["left"], body.get("op", "=="), body["right"]
        masked = left.get("&") if type(left) is dict and len(left) == 1 else None
        if type(masked) is list and len(masked) == 2 and type(masked[1]) is list and op in ("==", "!="):
            # flags under a mask of several: nft's VALUE / MASK (tcp flags syn / syn,ack)
            return f"{expression(masked[0])} {'!= ' if op == '!=' else ''}{value(right)} / {value(masked[1])}"
        string = _string_key(left)
        explicit = op not in ("==", "in") or (isinstance(left, dict) and not _BINARY_SET.isdisjoint(left))
        return f"{expression(left)} {op + ' ' if explicit else ''}{_mark(left, right) or value(right, string)}"
    verdict = _verdict(kind, body)
    if verdict is not None:
        return verdict
    if kind == "counter":
        if body is None:
            return "counter"
        if isinstance(body, str):
            return f"counter name {quoted(body)}"
        return f"counter packets {body.get('packets', 0)} bytes {body.get('bytes', 0)}"
    if kind == "vmap":
        return f"{expression(body['key'])} vmap {expression(body['data'])}"
    if kind == "mangle":
        key, new = body["key"], body["value"]
        return f"{expression(key)} set {_mark(key, new) or expression(new)}"
    if kind in ("dnat", "snat", "masquerade", "redirect"):
        return _nat(kind, body)
    if kind == "reject":
        if not body:
            return "reject"
        if body.get("type") == "tcp reset":
            return "reject with tcp reset"
        if body.get("expr") == "port-unreachable" and _DEFAULT_REJECT.get(family) == body.get("type"):
            return "reject"
        return f"reject with {body.get('type', 'icmp')} {body['expr']}"
    if kind == "notrack" and body is None:
        return "notrack"
    if kind == "log":
        if not body:
            return "log"
        _known("log", body, _LOG_KNOWN)
        return "log" + "".join(f" {key} {quoted(body[key]) if key == 'prefix' else body[key]}"
                               for key in _LOG_KEYS[:-1] if key in body) + _log_flags(body.get("flags"))
    if kind == "limit":
        unit = body.get("rate_unit", "packets")
        text = f"limit rate {'over ' if body.get('inv') else ''}{body['rate']}"
        text += f"/{body.get('per', 'second')}" if unit == "packets" else f" {unit}/{body.get('per', 'second')}"
        burst = body.get("burst")
        if burst and not (burst == 5 and unit == "packets"):  # (5 packets: nft's default, not written)
            text += f" burst {burst} {body.get('burst_unit', 'packets')}"
        return text
    if kind == "set":
        return f"{body['op']} {body['set']} {{ {element(body['elem'])} }}"
    if kind == "xt":  # iptables-nft's compat matches and targets: nft itself prints them only as comments
        raise InvalidInput(f"cannot write nft syntax for an iptables-nft rule (xt {body.get('type', '')}"
                           f" {body.get('name', '')})",
                           "list it with `kpctl iptables list`, or leave its table out with --table")
    raise unrenderable("statement", stmt)


def rule_text(rule: dict[str, Any]) -> str:
    _known("rule", rule, _RULE_KEYS)
    family = rule.get("family", "")
    text = " ".join([statement(s, family) for s in rule.get("expr", ())])
    if rule.get("comment"):
        text += f" comment {quoted(rule['comment'])}"
    return text


def _type(spec: Any) -> str:
    if isinstance(spec, dict) and "typeof" in spec:
        return "typeof " + expression(spec["typeof"])
    return "type " + (" . ".join(spec) if isinstance(spec, list) else str(spec))


def set_lines(kind: str, body: dict[str, Any]) -> list[str]:
    """The lines of a ``set``/``map`` block (declaration and elements)."""
    _known(kind, body, _SET_KEYS)
    declared = _type(body["type"])
    if kind == "map":
        target = body["map"]
        declared += " : " + (" . ".join(target) if isinstance(target, list) else str(target))
    lines = [f"{kind} {name(body['name'])} {{", "\t" + declared]
    if body.get("policy"):
        lines.append(f"\tpolicy {body['policy']}")
    if body.get("size"):
        lines.append(f"\tsize {body['size']}")
    flags = body.get("flags")
    if flags and not (body.get("timeout") and flags in ("timeout", ["timeout"])):  # (implied by a timeout)
        lines.append("\tflags" + _flags(body))
    if body.get("auto-merge"):
        lines.append("\tauto-merge")
    for key in ("timeout", "gc-interval"):
        if body.get(key):
            lines.append(f"\t{key} {duration(body[key])}")
    if body.get("comment"):
        lines.append(f"\tcomment {quoted(body['comment'])}")
    members = body.get("elem")
    if members:
        if not isinstance(members, list):
            members = [members]
        key = body["type"] if isinstance(body["type"], str) else ""  # (a concatenation: one per line)
        marks = (key == "mark", kind == "map" and body.get("map") == "mark")
        if any(marks):  # (numbers of a mark type: written as nft writes marks)
            texts = [_mark_element(e, *marks) for e in members]
        else:
            texts = [element(e, key in _STRING_TYPES) for e in members]
        step = _PER_LINE.get(key, 1)
        if step > 1:
            texts = [", ".join(texts[at:at + step]) for at in range(0, len(texts), step)]
        lines.append("\telements = { " + ",\n\t\t\t     ".join(texts) + " }")
    return lines + ["}"]


def _marked_number(item: Any) -> str | None:
    """A number (or a range of numbers) of a mark type as nft writes marks; None for anything else."""
    if type(item) is int and item >= 0:
        return f"0x{item:08x}"
    bounds = item.get("range") if type(item) is dict and len(item) == 1 else None
    if type(bounds) is list and len(bounds) == 2 and all(type(n) is int and n >= 0 for n in bounds):
        return f"0x{bounds[0]:08x}-0x{bounds[1]:08x}"
    return None


def _mark_element(item: Any, key: bool, data: bool) -> str:
    """An element of a set or map whose key (``key``) or mapped value (``data``) is a mark."""
    if isinstance(item, list) and len(item) == 2:
        return (f"{key and _marked_number(item[0]) or element(item[0])} : "
                f"{data and _marked_number(item[1]) or expression(item[1])}")
    return key and _marked_number(item) or element(item)


def duration(seconds: Any) -> str:
    """A timeout as nft writes it: ``3h``, ``1d1h1m1s``, ``30s``."""
    if type(seconds) is not int or seconds < 0:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


def priority_text(family: str, hook: str, value: Any) -> str:
    """A base chain's priority as nft writes it: a standard one by name (``dstnat``, ``filter + 10``)."""
    if type(value) is not int:
        return str(value)
    for label, base in _PRIORITIES.get(family, ()):
        if _PRIORITY_HOOK.get(label, hook) == hook and -10 <= value - base <= 10:
            offset = value - base
            return label if not offset else f"{label} {'+' if offset > 0 else '-'} {abs(offset)}"
    return str(value)


def chain_lines(body: dict[str, Any], rules: list[str]) -> list[str]:
    """A chain's block, laid out to be written inside its table (as set_lines' elements are);
    ``rules``: the texts of its rules (:func:`rule_text`), written as one item of the list, a line
    each (joined once: 80,000 rules at 10,000 services)."""
    _known("chain", body, _CHAIN_KEYS)
    lines = [f"chain {name(body['name'])} {{"]
    if body.get("hook"):
        device = body.get("dev")
        where = ""
        if isinstance(device, list):
            where = " devices = { " + ", ".join(quoted(d) for d in device) + " }"
        elif device:
            where = f" device {quoted(device)}"
        lines.append(f"\ttype {body['type']} hook {body['hook']}{where}"
                     f" priority {priority_text(body.get('family', ''), body['hook'], body.get('prio', 0))};"
                     f" policy {body.get('policy', 'accept')};")
    if body.get("comment"):
        lines.append(f"\tcomment {quoted(body['comment'])}")
    if rules:
        lines.append("\t" + "\n\t\t".join(rules))
    lines.append("}")
    return lines


def save_text(ruleset: dict[str, Any]) -> str:
    """The whole (selected) ruleset as `nft list ruleset` would print it; `nft -f` loads it."""
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    parts: dict[tuple[str, str], list[list[str]]] = {}
    chains: dict[tuple[str, str, str], tuple[dict[str, Any], list[str]]] = {}
    for item in ruleset.get("nftables", ()):  # (rules held as text: decoded a run at a time, see nft_document)
        kind, body = next(iter(item.items()))
        if kind == "rule":
            family, table = body.get("family", ""), body.get("table", "")
            found = chains.get((family, table, body["chain"]))
            if found is None:
                raise InvalidInput(f"rule in {body['chain']!r} of table {family} {table}: no such chain")
            found[1].append(rule_text(body))  # (the text kept, not the rule: see RuleText)
            continue
        if kind == "metainfo":
            continue
        key = (body.get("family", ""), body.get("table", body.get("name", "")))
        if kind == "table":
            _known("table", body, _TABLE_KEYS)
            tables[key] = body
            parts.setdefault(key, [])
        elif kind in ("set", "map"):
            parts.setdefault(key, []).append(set_lines(kind, body))
        elif kind == "chain":
            chains[key + (body["name"],)] = (body, [])
        else:
            raise unrenderable("object", kind)
    for (family, table, _), (body, rules) in chains.items():
        parts.setdefault((family, table), []).append(chain_lines(body, rules))
    out: list[str] = []
    for key, blocks in parts.items():
        family, table = key
        out.append(f"table {family} {name(table)} {{")
        header = tables.get(key, {})
        if header.get("flags"):
            out.append("\tflags" + _flags(header))
        if header.get("comment"):
            out.append(f"\tcomment {quoted(header['comment'])}")
        if blocks:  # (each item of a block a tab in; a blank line between blocks)
            out.append("\n\n".join("\t" + "\n\t".join(block) for block in blocks))
        out.append("}")
    return "\n".join(out) + "\n" if out else ""
