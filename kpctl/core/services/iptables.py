"""Services of kube-proxy's iptables mode, read from the nat and filter tables.

kube-proxy writes (pkg/proxy/iptables/proxier.go): in nat KUBE-SERVICES one rule per service
address (``-d VIP -p PROTO --dport PORT -j KUBE-SVC-/KUBE-EXT-/KUBE-FW-/KUBE-SVL-…``, commented
"ns/name:port cluster IP|external IP|loadbalancer IP"), in nat KUBE-NODEPORTS one per node port;
KUBE-EXT-* ends in KUBE-SVC-* (Cluster policy) or KUBE-SVL-* (Local); KUBE-SVC/SVL hold one
rule per endpoint (``-m statistic --probability P`` on all but the last, ``-m recent --rcheck``
first when there is session affinity) jumping to KUBE-SEP-*, which DNATs. Services without
endpoints get REJECT (or DROP) in filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from kpctl.core.services.common import Dispatch, Wanted
from kpctl.model.iptables import Chain, PortMatch, ProtocolMatch, Rule, Ruleset, Table
from kpctl.model.services import (ANY_LOCAL, CLUSTER_IP, EXTERNAL_IP, LOAD_BALANCER, NODE_PORT, NodeService,
    ServiceEndpoint)

MODE = "iptables"
_KIND_BY_COMMENT = {"cluster IP": CLUSTER_IP, "external IP": EXTERNAL_IP, "loadbalancer IP": LOAD_BALANCER}
_KIND_BY_PREFIX = {"KUBE-SVC-": CLUSTER_IP, "KUBE-SVL-": CLUSTER_IP, "KUBE-EXT-": EXTERNAL_IP,
                   "KUBE-FW-": LOAD_BALANCER}
_DISPATCH = tuple(_KIND_BY_PREFIX)
_MAX_DEPTH = 8  # FW -> EXT -> SVL/SVC -> SEP is the longest path kube-proxy writes




def _dport(rule: Rule) -> PortMatch | None:
    return rule.first("dport")  # type: ignore[no-any-return]


def _proto(found: ProtocolMatch | None) -> str | None:
    """The name of a rule's -p (its ``rule.protocol``), unless negated."""
    return found.name.lower() if found is not None and not found.negated else None


def _name(rule: Rule) -> str | None:
    """``ns/name:port`` from kube-proxy's comment ("ns/name:port cluster IP", "… -> 10.0.0.1:80")."""
    comment = rule.comment or ""
    first = comment.split(" ", 1)[0]
    return first if "/" in first and ":" in first else None


def _condition(rule: Rule) -> str:
    """What a KUBE-MARK-MASQ rule masquerades, in words: "all", "src !CIDR", "src-type LOCAL"…"""
    src = rule.src
    if src is not None:
        return f"src {'!' if src.negated else ''}{src.cidr}"
    addrtype = rule.first("addrtype")
    if addrtype is not None and addrtype.src_type:
        return f"src-type {'!' if addrtype.src_negated else ''}{','.join(addrtype.src_type)}"
    return "all"


def _unconditional(rule: Rule) -> bool:
    """No match but a comment: the rule every packet that reaches it takes."""
    return all(m.module == "comment" for m in rule.matches)


class _Walker:
    """Follows one nat table's service chains; each chain is resolved once (a chain may be
    reached from a cluster IP, an external IP and a node port), so a chain read from text is
    not kept (LazyChains.once)."""

    def __init__(self, nat: Table) -> None:
        chains: Mapping[str, Chain] = nat.chains
        self.chain: Callable[[str], Chain | None] = getattr(chains, "once", chains.get)
        self._memo: dict[str, Dispatch] = {}

    def endpoint(self, name: str, chance: float) -> ServiceEndpoint | None:
        chain = self.chain(name)
        for rule in chain.rules if chain is not None else ():
            if rule.target_name != "DNAT":  # known without building the rule's parts
                continue
            nat = rule.target.to_destination  # type: ignore[union-attr]
            if nat is not None and nat.min_address:
                return ServiceEndpoint(nat.min_address, nat.min_port or 0, chance)
        return None

    def dispatch(self, name: str, depth: int = 0) -> Dispatch:
        if name not in self._memo:
            self._memo[name] = self._dispatch(name, depth)
        return self._memo[name]

    def _dispatch(self, name: str, depth: int) -> Dispatch:
        chain = self.chain(name)
        rules = chain.rules if chain is not None else ()
        if name.startswith(("KUBE-SVC-", "KUBE-SVL-")):
            return self._balance(name, rules)
        # KUBE-EXT-/KUBE-FW-: masquerade marks, short-cuts for pod and local traffic, then the
        # rule every other packet takes (KUBE-SVL-* under the Local policy, KUBE-SVC-* else).
        masquerade = next((_condition(r) for r in rules if r.jump == "KUBE-MARK-MASQ"), None)
        final = next((r for r in reversed(rules) if _unconditional(r)), None)
        if final is None or depth >= _MAX_DEPTH:
            return Dispatch((), None, masquerade, None, "drop")
        if final.jump is None or not final.jump.startswith(_DISPATCH):
            verdict = "drop" if final.jump == "KUBE-MARK-DROP" or (final.target and final.target.name == "DROP") \
                else "reject"
            return Dispatch((), None, masquerade, None, verdict)
        inner = self.dispatch(final.jump, depth + 1)
        policy = "Local" if final.jump.startswith("KUBE-SVL-") else inner.policy
        return Dispatch(inner.endpoints, policy, masquerade or inner.masquerade, inner.affinity, inner.verdict)

    def _balance(self, name: str, rules: tuple[Rule, ...]) -> Dispatch:
        remaining, endpoints, affinity, masquerade = 1.0, [], None, None
        verdict = "dnat"
        for rule in rules:
            jump = rule.jump or ""
            if jump == "KUBE-MARK-MASQ":
                masquerade = masquerade or _condition(rule)
            elif (recent := rule.first("recent")) is not None and recent.action == "rcheck":
                affinity = recent.seconds  # affinity rules come first and only re-pick a known endpoint
            elif jump.startswith("KUBE-SEP-"):
                statistic = rule.first("statistic")
                share = statistic.probability if statistic is not None and statistic.probability is not None \
                    else 1.0
                found = self.endpoint(jump, remaining * share)
                if found is not None:
                    endpoints.append(found)
                remaining *= 1.0 - share
            elif jump == "KUBE-MARK-DROP" or (rule.target is not None and rule.target.name in ("DROP", "REJECT")):
                verdict = "reject" if rule.target is not None and rule.target.name == "REJECT" else "drop"
                break
        policy = "Local" if name.startswith("KUBE-SVL-") else "Cluster"
        if not endpoints and verdict == "dnat":
            verdict = "drop"
        return Dispatch(tuple(endpoints), policy, masquerade, affinity, verdict)


def _kind(rule: Rule, jump: str) -> str:
    comment = rule.comment or ""
    for suffix, kind in _KIND_BY_COMMENT.items():
        if comment.endswith(suffix):
            return kind
    return next((kind for prefix, kind in _KIND_BY_PREFIX.items() if jump.startswith(prefix)), CLUSTER_IP)


def _no_endpoint_rules(ruleset: Ruleset) -> Iterator[tuple[Rule, str]]:
    """filter KUBE-SERVICES (cluster/external addresses) and KUBE-EXTERNAL-SERVICES (node ports,
    external addresses) REJECT/DROP rules of services without endpoints."""
    for chain_name in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES"):
        chain = ruleset.chain("filter", chain_name)
        for rule in chain.rules if chain is not None else ():
            if rule.target is not None and rule.target.name in ("REJECT", "DROP"):
                yield rule, rule.target.name.lower()


def read_ruleset(ruleset: Ruleset, wanted: Wanted = None) -> list[NodeService]:
    """Every service address one iptables-save document implements (nat dispatch, filter rejects);
    ``wanted``: those it admits (read_mode)."""
    family = "inet6" if ruleset.family == "ipv6" else "inet"
    nat = ruleset.table("nat")
    out: list[NodeService] = []
    if nat is not None:
        walker = _Walker(nat)
        for chain_name, kind_default in (("KUBE-SERVICES", None), ("KUBE-NODEPORTS", NODE_PORT)):
            chain = nat.chains.get(chain_name)
            for rule in chain.rules if chain is not None else ():
                service = _service_of(walker, rule, family, kind_default, wanted)
                if service is not None:
                    out.append(service)
    for rule, verdict in _no_endpoint_rules(ruleset):
        protocol, _src, dst, _iif, _oif = rule.builtins()
        dport, proto = _dport(rule), _proto(protocol)
        if dport is None or proto is None:
            continue
        address = dst.cidr.rpartition("/")[0] if dst is not None else ANY_LOCAL
        if wanted is not None and not wanted(address, dport.ranges[0][0], proto):
            continue
        kind = CLUSTER_IP if dst is not None else NODE_PORT
        comment = rule.comment or ""
        if "external" in comment or "load" in comment:
            kind = EXTERNAL_IP if dst is not None else NODE_PORT
        out.append(NodeService(MODE, address, dport.ranges[0][0], proto, family, kind, (), verdict,
                               name=_name(rule)))
    return out


def _service_of(walker: _Walker, rule: Rule, family: str, kind_default: str | None,
                wanted: Wanted = None) -> NodeService | None:
    jump = rule.jump or ""
    if not jump.startswith(_DISPATCH):
        return None
    protocol, _src, dst, _iif, _oif = rule.builtins()
    dport, proto = _dport(rule), _proto(protocol)
    if dport is None or proto is None:
        return None
    if kind_default is None and dst is None:
        return None
    address = dst.cidr.rpartition("/")[0] if dst is not None else ANY_LOCAL
    if wanted is not None and not wanted(address, dport.ranges[0][0], proto):
        return None
    kind = kind_default or _kind(rule, jump)
    found = walker.dispatch(jump)
    policy = "Local" if jump.startswith("KUBE-SVL-") else found.policy
    return NodeService(MODE, address, dport.ranges[0][0], proto, family, kind, found.endpoints, found.verdict,
                       affinity=found.affinity, masquerade=found.masquerade or "hairpin", policy=policy,
                       name=_name(rule))


def read_iptables(rulesets: Mapping[str, tuple[Ruleset, ...]], wanted: Wanted = None) -> list[NodeService]:
    """Services of every family; where both backends hold rules the first (nft) wins per address."""
    seen: set[tuple[str, int, str]] = set()
    out: list[NodeService] = []
    for group in rulesets.values():
        for ruleset in group:
            for service in read_ruleset(ruleset, wanted):
                key = (service.address, service.port, service.protocol)
                if key not in seen:
                    seen.add(key)
                    out.append(service)
    return out
