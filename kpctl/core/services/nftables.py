"""Services of kube-proxy's nftables mode, read from the ``kube-proxy`` table (`nft -j` JSON).

kube-proxy writes (pkg/proxy/nftables/proxier.go), per family table ``ip``/``ip6 kube-proxy``:
the verdict maps ``service-ips`` (addr . proto . port → goto service-*/external-*/firewall-*)
and ``service-nodeports`` (proto . port → goto external-*), the set ``cluster-ips``, and for
services without endpoints ``no-endpoint-services`` / ``no-endpoint-nodeports`` (→ goto
reject-chain, or drop). A ``service-`` (Cluster) or ``local-`` (Local policy) chain marks
masquerade, re-picks the endpoint of a known client from its ``affinity-*`` set, then
``numgen random mod N vmap {…}`` spreads new connections over the ``endpoint-`` chains
(each key a 1/N share), which DNAT. ``external-`` chains short-cut pod and local traffic to the
service chain and send the rest to ``service-`` (Cluster) or ``local-`` (Local).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# The nftables JSON walking of the tracer: one reader of the `nft -j` document.
from kpctl.core.nft_json import TableIndex
from kpctl.core.nft_json import elements as _elements
from kpctl.core.nft_json import items as _items
from kpctl.core.address import canonical_address
from kpctl.core.services.common import Dispatch, Wanted
from kpctl.model.services import (
    ANY_LOCAL,
    CLUSTER_IP,
    EXTERNAL,
    LOAD_BALANCER,
    NODE_PORT,
    NodeService,
    ServiceEndpoint,
)

MODE = "nftables"
TABLE = "kube-proxy"
_BALANCING = ("service-", "local-")
_MAX_DEPTH = 8




def _verdict_target(value: Any) -> tuple[str, str | None]:
    """A map value or rule statement as (verdict, chain): ("goto", "service-…"), ("drop", None)…"""
    if isinstance(value, dict):
        for verdict in ("goto", "jump"):
            if verdict in value:
                return verdict, str((value[verdict] or {}).get("target", ""))
        for verdict in ("drop", "reject", "accept", "return"):
            if verdict in value:
                return verdict, None
    if isinstance(value, str):
        return value, None
    return "", None


def _name_of_chain(chain: str) -> str | None:
    """``service-HASH-ns/name/proto/port`` → ``ns/name:port``."""
    parts = chain.split("-", 2)
    if len(parts) < 3:
        return None
    fields = parts[2].split("__", 1)[0].split("/")
    return f"{fields[0]}/{fields[1]}:{fields[3]}" if len(fields) == 4 else None


def _masquerade(rule: list[dict[str, Any]]) -> str:
    """Which sources a ``jump mark-for-masquerade`` rule marks, in the words of the iptables reader."""
    for expr in rule:
        match = expr.get("match") if isinstance(expr, dict) else None
        if not isinstance(match, dict):
            continue
        left, right, negated = match.get("left") or {}, match.get("right"), match.get("op") == "!="
        if isinstance(left, dict) and (left.get("payload") or {}).get("field") == "saddr":
            if isinstance(right, dict) and "prefix" in right:
                return f"src {'!' if negated else ''}{right['prefix']['addr']}/{right['prefix']['len']}"
            if isinstance(right, str) and not right.startswith("@"):
                return "hairpin"
        if isinstance(left, dict) and "fib" in left and "saddr" in (left["fib"].get("flags") or ()):
            return f"src-type {'!' if negated else ''}{str(right).upper()}"
    return "all"


def _statement(rule: list[dict[str, Any]]) -> tuple[str, str | None]:
    for expr in reversed(rule):
        verdict, target = _verdict_target(expr)
        if verdict:
            return verdict, target
    return "", None


class _Table:
    def __init__(self, ruleset: Any, family: str) -> None:
        self.tables = TableIndex(ruleset, family, TABLE)
        self.family = family
        self._memo: dict[str, Dispatch] = {}

    def rules(self, chain: str) -> list[list[dict[str, Any]]]:
        # (each read decodes the chain's rules anew: their lists are this walk's, not copied)
        return [expr if type(expr := rule.get("expr")) is list else list(expr or ())
                for rule in self.tables.rules.get(chain, ())]

    def elements(self, name: str) -> list[tuple[Any, Any, str | None]]:
        """(key, value, comment) of each element of a map; keys without their element wrapper."""
        found = self.tables.sets.get(name)
        out = []
        for item in (found or {}).get("elem") or ():
            if isinstance(item, list) and len(item) == 2:
                wrapper = item[0].get("elem") if isinstance(item[0], dict) else None
                comment = wrapper.get("comment") if isinstance(wrapper, dict) else None
                key = _elements([item[0]])[0]
                out.append((key["concat"] if isinstance(key, dict) and "concat" in key else key, item[1], comment))
        return out

    def set_members(self, name: str) -> set[str]:
        found = self.tables.sets.get(name)
        return {str(e) for e in _elements((found or {}).get("elem"))}

    def affinity(self, set_reference: str) -> int | None:
        found = self.tables.sets.get(set_reference.lstrip("@"))
        timeout = (found or {}).get("timeout")
        return int(timeout) if isinstance(timeout, int) else None

    def endpoint(self, chain: str, chance: float) -> ServiceEndpoint | None:
        for rule in self.rules(chain):
            for expr in rule:
                dnat = expr.get("dnat") if isinstance(expr, dict) else None
                if isinstance(dnat, dict) and dnat.get("addr"):
                    return ServiceEndpoint(str(dnat["addr"]), int(dnat.get("port") or 0), chance)
        return None

    def dispatch(self, chain: str, depth: int = 0) -> Dispatch:
        if chain not in self._memo:
            self._memo[chain] = self._balance(chain) if chain.startswith(_BALANCING) else self._follow(chain, depth)
        return self._memo[chain]

    def _follow(self, chain: str, depth: int) -> Dispatch:
        rules = self.rules(chain)
        masquerade = next((_masquerade(r) for r in rules if _statement(r) == ("jump", "mark-for-masquerade")), None)
        final = next((r for r in reversed(rules) if not any("match" in e for e in r)), None)
        verdict, target = _statement(final) if final is not None else ("drop", None)
        if target is None or depth >= _MAX_DEPTH:
            return Dispatch((), None, masquerade, None, "reject" if verdict == "reject" else "drop")
        inner = self.dispatch(target, depth + 1)
        policy = "Local" if target.startswith("local-") else inner.policy
        return Dispatch(inner.endpoints, policy, masquerade or inner.masquerade, inner.affinity, inner.verdict)

    def _balance(self, chain: str) -> Dispatch:
        endpoints: list[ServiceEndpoint] = []
        masquerade: str | None = None
        affinity: int | None = None
        verdict = "dnat"
        for rule in self.rules(chain):
            kind, target = _statement(rule)
            if (kind, target) == ("jump", "mark-for-masquerade"):
                masquerade = masquerade or _masquerade(rule)
            elif any(isinstance(e, dict) and "vmap" in e for e in rule):
                endpoints.extend(self._spread(rule))
            elif target is not None and target.startswith("endpoint-"):
                sets = [str(e["match"].get("right")) for e in rule if isinstance(e, dict) and "match" in e]
                affinity_sets = [s for s in sets if s.startswith("@affinity-")]
                if affinity_sets:
                    affinity = self.affinity(affinity_sets[0])  # only re-picks a client's endpoint
                elif not sets:
                    found = self.endpoint(target, 1.0)
                    endpoints += [found] if found is not None else []
            elif kind in ("drop", "reject") or target == "reject-chain":
                verdict = "reject" if kind == "reject" or target == "reject-chain" else "drop"
                break
        if not endpoints and verdict == "dnat":
            verdict = "drop"
        policy = "Local" if chain.startswith("local-") else "Cluster"
        return Dispatch(tuple(endpoints), policy, masquerade, affinity, verdict)

    def _spread(self, rule: list[dict[str, Any]]) -> Iterator[ServiceEndpoint]:
        """``numgen random mod N vmap { k : goto endpoint-… }``: each key is a 1/N share."""
        vmap = next(e["vmap"] for e in rule if isinstance(e, dict) and "vmap" in e)
        numgen = (vmap.get("key") or {}).get("numgen") if isinstance(vmap.get("key"), dict) else None
        pairs = ((vmap.get("data") or {}).get("set") or []) if isinstance(vmap.get("data"), dict) else []
        mod = int((numgen or {}).get("mod") or len(pairs) or 1)
        shares: dict[str, int] = {}
        for pair in pairs:
            if isinstance(pair, list) and len(pair) == 2:
                _verdict, target = _verdict_target(pair[1])
                if target:
                    shares[target] = shares.get(target, 0) + 1
        for target, count in shares.items():
            found = self.endpoint(target, count / mod)
            if found is not None:
                yield found


def _kind(table: _Table, address: str, target: str | None, cluster_ips: set[str]) -> str:
    if address in cluster_ips:
        return CLUSTER_IP
    return LOAD_BALANCER if target and target.startswith("firewall-") else EXTERNAL




def read_table(ruleset: Any, family: str, wanted: Wanted = None) -> list[NodeService]:
    """Every service address one ``kube-proxy`` table implements (``wanted``: those it admits)."""
    table = _Table(ruleset, family)
    inet = "inet6" if family == "ip6" else "inet"
    cluster_ips = {canonical_address(a) for a in table.set_members("cluster-ips")}
    out: list[NodeService] = []
    for map_name, with_address in (("service-ips", True), ("service-nodeports", False)):
        for key, value, _comment in table.elements(map_name):
            if not isinstance(key, list) or len(key) != (3 if with_address else 2):
                continue
            address = canonical_address(key[0]) if with_address else ANY_LOCAL
            protocol, port = str(key[-2]), int(key[-1])
            if wanted is not None and not wanted(address, port, protocol):
                continue
            _verdict, target = _verdict_target(value)
            found = table.dispatch(target) if target else Dispatch((), None, None, None, "drop")
            kind = _kind(table, address, target, cluster_ips) if with_address else NODE_PORT
            out.append(NodeService(MODE, address, port, protocol, inet, kind, found.endpoints, found.verdict,
                                   affinity=found.affinity, masquerade=found.masquerade or "hairpin",
                                   policy=found.policy, name=_name_of_chain(target or "")))
    for map_name, with_address in (("no-endpoint-services", True), ("no-endpoint-nodeports", False)):
        for key, value, comment in table.elements(map_name):
            if not isinstance(key, list) or len(key) != (3 if with_address else 2):
                continue
            address = canonical_address(key[0]) if with_address else ANY_LOCAL
            if wanted is not None and not wanted(address, int(key[-1]), str(key[-2])):
                continue
            verdict, target = _verdict_target(value)
            kind = _kind(table, address, None, cluster_ips) if with_address else NODE_PORT
            out.append(NodeService(MODE, address, int(key[-1]), str(key[-2]), inet, kind, (),
                                   "reject" if verdict == "reject" or target == "reject-chain" else "drop",
                                   name=comment))
    return out


def read_nftables(ruleset: Any, wanted: Wanted = None) -> list[NodeService]:
    """Services of every ``kube-proxy`` table (ip and ip6) in an `nft -j list ruleset` document."""
    out: list[NodeService] = []
    for item in _items(ruleset, "table"):
        if item.get("name") == TABLE and item.get("family") in ("ip", "ip6"):
            out.extend(read_table(ruleset, str(item["family"]), wanted))
    return out
