"""The jumps from the built-in chains into kube-proxy's chains, without which its rules see no packet.

Both iptables-based modes put them in (pkg/proxy/iptables and pkg/proxy/ipvs: iptablesJumpChain(s))
and put them back on every sync; a firewall reload that flushes the built-in chains takes them out.
`doctor` reports each missing one (iptables-hook-missing), `services` notes it under its listing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from kpctl.model.iptables import Ruleset

# (table, kube-proxy's chain, the built-in chains that jump to it, its jump's comment, what is lost
# without one).  nat's are required wherever nat KUBE-SERVICES holds rules; filter's wherever the
# chain holds any.  (filter KUBE-SERVICES/KUBE-EXTERNAL-SERVICES: iptables-no-endpoints-not-rejected;
# KUBE-FORWARD: forward-drop.)
HOOKS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("nat", "KUBE-SERVICES", ("PREROUTING", "OUTPUT"), "kubernetes service portals",
     "packets to Service addresses skip kube-proxy's nat rules: iptables mode does not DNAT them to an "
     "endpoint (the ClusterIPs and NodePorts are dead for them), IPVS mode does not mark them for "
     "masquerading (NodePort and external clients get replies from an address they did not call)"),
    ("nat", "KUBE-POSTROUTING", ("POSTROUTING",), "kubernetes postrouting rules",
     "packets kube-proxy marked 0x4000 for masquerading leave with their source unchanged: endpoints "
     "answer NodePort, external and hairpin clients directly, and those connections fail"),
    ("filter", "KUBE-PROXY-FIREWALL", ("INPUT", "FORWARD"), "kube-proxy firewall rules",
     "loadBalancerSourceRanges are not enforced: every source reaches the LoadBalancer IPs"),
    ("filter", "KUBE-IPVS-FILTER", ("INPUT",), "kubernetes ipvs access filter",
     "the Service addresses bound on kube-ipvs0 answer on every port of this node, not only on "
     "their Services' ports"),
)


class MissingHook(NamedTuple):
    table: str
    hook: str  # the built-in chain that does not jump
    chain: str  # kube-proxy's chain it should jump to
    exists: bool  # whether that chain is there at all
    matches: str  # the jump's matches as kube-proxy writes them (a jump of another hook's, else its comment)
    why: str


def missing_hooks(ruleset: Ruleset) -> list[MissingHook] | None:
    """The jumps kube-proxy's rules in ``ruleset`` lack; None when nat KUBE-SERVICES holds no rule
    (not kube-proxy's rule set)."""
    services = ruleset.chain("nat", "KUBE-SERVICES")
    if services is None or not services.rules:
        return None
    out = []
    for table, name, hooks, comment, why in HOOKS:
        chain = ruleset.chain(table, name)
        if table == "filter" and (chain is None or not chain.rules):
            continue
        jumps = {hook: _jump(ruleset, table, hook, name) for hook in hooks}
        matches = next((found for found in jumps.values() if found), f'-m comment --comment "{comment}"')
        out += [MissingHook(table, hook, name, chain is not None, matches, why)
                for hook, found in jumps.items() if found is None]
    return out


def family_gaps(rulesets: Sequence[Ruleset]) -> list[tuple[Ruleset, MissingHook]]:
    """:func:`missing_hooks` of one family's rule sets (a backend each).  kube-proxy writes one
    backend: when another backend's rules lack every nat jump while one has them all, those are a
    stale copy that no packet reaches (iptables-backends-mixed names it), not jumps to put back."""
    found = [(ruleset, gaps) for ruleset in rulesets if (gaps := missing_hooks(ruleset)) is not None]
    hooked = any(not _nat(gaps) for _ruleset, gaps in found)
    return [(ruleset, gap) for ruleset, gaps in found
            if not (hooked and len(_nat(gaps)) == _NAT_JUMPS) for gap in gaps]


_NAT_JUMPS = sum(len(hooks) for table, _name, hooks, _comment, _why in HOOKS if table == "nat")


def _nat(gaps: list[MissingHook]) -> list[MissingHook]:
    return [gap for gap in gaps if gap.table == "nat"]


def _jump(ruleset: Ruleset, table: str, hook: str, name: str) -> str | None:
    """The matches of the first rule of built-in chain ``hook`` that jumps to ``name`` (its text
    between ``-A HOOK`` and ``-j NAME``, empty when that is not how it reads), None when no rule does."""
    built_in = ruleset.chain(table, hook)
    rule = next((rule for rule in built_in.rules if rule.jump == name), None) if built_in is not None else None
    if rule is None:
        return None
    head, tail = f"-A {hook} ", f" -j {name}"
    text = rule.text
    return text[len(head):-len(tail)].strip() if text.startswith(head) and text.endswith(tail) else ""
