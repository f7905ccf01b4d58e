"""Doctor checks that hold whatever kube-proxy's mode: forwarding, the FORWARD policy, the jumps
to kube-proxy's chains, the iptables backends, set sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kpctl.core.doctor.base import ipvs_services, sysctl_check
from kpctl.core.modes import NFT_TABLE, nft_tables
from kpctl.model.doctor import ERROR, WARNING, Finding, NodeState

if TYPE_CHECKING:
    from kpctl.model.iptables import Ruleset

MAXELEM_FRACTION = 0.9


def check_ip_forward(node: NodeState) -> list[Finding]:
    findings = sysctl_check(
        "ip-forward", "net.ipv4.ip_forward", "1", ERROR,
        "the node does not forward packets: service traffic to pods on other nodes, and pod "
        "traffic through services, is dropped")(node)
    if _ipv6_services(node):
        findings += sysctl_check(
            "ip-forward", "net.ipv6.conf.all.forwarding", "1", ERROR,
            "IPv6 services exist but the node does not forward IPv6")(node)
    return findings


def _ipv6_services(node: NodeState) -> bool:
    """IPv6 Services in any mode: IPVS inet6 services, ip6tables KUBE-SVC chains, an ip6 kube-proxy table."""
    if any(s.family == "inet6" for s in ipvs_services(node)):
        return True
    for ruleset in (node.iptables.get("ipv6") or {}).values():
        nat = ruleset.table("nat")
        if nat is not None and any(name.startswith("KUBE-SVC-") for name in nat.chains):
            return True
    return ("ip6", NFT_TABLE) in nft_tables(node.nftables)


def check_forward_drop(node: NodeState) -> list[Finding]:
    findings = []
    for by_backend in node.iptables.values():
        for ruleset in by_backend.values():
            forward = ruleset.chain("filter", "FORWARD")
            if forward is None or forward.policy != "DROP":
                continue
            jumps = any(r.jump == "KUBE-FORWARD" for r in forward.rules)
            kube_forward = ruleset.chain("filter", "KUBE-FORWARD")
            accepts = bool(kube_forward and any(r.target is not None and r.target.name == "ACCEPT"
                                                for r in kube_forward.rules))
            if jumps and accepts:
                continue
            missing = "no jump to KUBE-FORWARD" if not jumps else "KUBE-FORWARD has no ACCEPT rule"
            findings.append(Finding(
                "forward-drop", ERROR, f"{ruleset.family}/{ruleset.backend} filter FORWARD",
                f"FORWARD policy is DROP and {missing} ({ruleset.family}, {ruleset.backend})",
                "forwarded service traffic (marked for masquerade, or replies of established "
                "connections) is dropped by the policy",
                "restart kube-proxy so it restores KUBE-FORWARD, or accept forwarded pod traffic "
                "(iptables -P FORWARD ACCEPT)"))
    return findings


# kube-proxy's chains that packets reach only through a jump from a built-in chain, as both
# iptables-based modes write them (pkg/proxy/iptables and pkg/proxy/ipvs: iptablesJumpChain(s)):
# (table, chain, the built-in chains that jump to it, its jump's comment, what is lost without one).
# nat's are required wherever nat KUBE-SERVICES holds rules; filter's wherever the chain holds any.
# (filter KUBE-SERVICES/KUBE-EXTERNAL-SERVICES: iptables-no-endpoints-not-rejected; KUBE-FORWARD:
# forward-drop.)
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


def check_hooks_missing(node: NodeState) -> list[Finding]:
    findings = []
    for family, by_backend in node.iptables.items():
        for backend, ruleset in by_backend.items():
            services = ruleset.chain("nat", "KUBE-SERVICES")
            if services is None or not services.rules:  # not kube-proxy's rule set
                continue
            tool = f"{'ip6tables' if family == 'ipv6' else 'iptables'}-{backend}"
            for table, name, hooks, comment, why in HOOKS:
                chain = ruleset.chain(table, name)
                if table == "filter" and (chain is None or not chain.rules):
                    continue
                jumps = {hook: _jump(ruleset, table, hook, name) for hook in hooks}
                # the matches of a jump that is there (a mode's own: -m conntrack --ctstate NEW…), else kube-proxy's comment
                matches = next((found for found in jumps.values() if found), f'-m comment --comment "{comment}"')
                gone = "" if chain is not None else f" ({name} does not exist)"
                findings += [Finding(
                    "iptables-hook-missing", ERROR, f"{family}/{backend} {table} {hook}",
                    f"{table} {hook} does not jump to {name}{gone} ({family}, {backend})", why,
                    "kube-proxy puts its jumps back on every sync: restart it, or find what removed this one "
                    f"(a firewall reload that flushed the built-in chains); by hand: {tool} -t {table} -I {hook} "
                    f"{matches} -j {name}") for hook, found in jumps.items() if found is None]
    return findings


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


def _kube_chains(ruleset: Ruleset) -> list[str]:
    return sorted(f"{t.name}/{c}" for t in ruleset.tables.values() for c in t.chains if c.startswith("KUBE-"))


def check_iptables_backends_mixed(node: NodeState) -> list[Finding]:
    findings = []
    for family, by_backend in node.iptables.items():
        nft, legacy = by_backend.get("nft"), by_backend.get("legacy")
        nft_chains, legacy_chains = (_kube_chains(nft) if nft else []), (_kube_chains(legacy) if legacy else [])
        if nft_chains and legacy_chains:
            findings.append(Finding(
                "iptables-backends-mixed", ERROR, f"{family} iptables",
                f"KUBE-* chains in both iptables-nft ({len(nft_chains)}) and iptables-legacy "
                f"({len(legacy_chains)}), e.g. {legacy_chains[0]} in legacy",
                "both rule sets run on every packet; rules left in the backend kube-proxy no longer "
                "writes act on stale data (drops, wrong masquerade)",
                "find which backend kube-proxy uses (kpctl iptables backends), then flush KUBE-* "
                "chains from the other one"))
    return findings


def check_ipset_near_maxelem(node: NodeState) -> list[Finding]:
    findings = []
    for ipset in node.ipsets or ():
        count = ipset.entries if ipset.entries is not None else len(ipset.members)
        if ipset.maxelem and count >= MAXELEM_FRACTION * ipset.maxelem:
            findings.append(Finding(
                "ipset-near-maxelem", WARNING, ipset.name,
                f"{ipset.name} holds {count} of maxelem {ipset.maxelem} entries "
                f"({100 * count // ipset.maxelem}%)",
                "once full, adding members fails: new services or endpoints silently stop working",
                "raise the limit (kube-proxy sizes it from the number of services), or recreate the "
                "set with a larger --maxelem"))
    return findings



CONNTRACK_FRACTION = 0.9


def check_conntrack_near_max(node: NodeState) -> list[Finding]:
    count, maximum = node.sysctl("net.netfilter.nf_conntrack_count"), node.sysctl("net.netfilter.nf_conntrack_max")
    if not (count and maximum and count.isdigit() and maximum.isdigit()) or int(maximum) == 0:
        return []
    if int(count) < CONNTRACK_FRACTION * int(maximum):
        return []
    return [Finding(
        "conntrack-near-max", WARNING, "net.netfilter.nf_conntrack_max",
        f"conntrack table holds {count} of nf_conntrack_max {maximum} entries "
        f"({100 * int(count) // int(maximum)}%)",
        "once full the kernel drops new connections ('nf_conntrack: table full, dropping packet'): "
        "every Service, whatever the mode, stops accepting clients",
        f"sysctl -w net.netfilter.nf_conntrack_max={2 * int(maximum)}  (kube-proxy: conntrack.maxPerCore)")]


def check_br_netfilter(node: NodeState) -> list[Finding]:
    bridges = sorted(link.name for link in node.links or () if link.kind == "bridge")
    value = node.sysctl("net.bridge.bridge-nf-call-iptables")
    if not bridges or value == "1":
        return []
    found = (f"bridge-nf-call-iptables = {value}" if value is not None
             else "br_netfilter is not loaded (no net.bridge.bridge-nf-call-iptables)")
    return [Finding(
        "br-netfilter", ERROR, "net.bridge.bridge-nf-call-iptables",
        f"{found} while bridges exist ({', '.join(bridges[:3])})",
        "pod-to-pod traffic across a bridge skips netfilter: a pod reaching a Service endpoint on "
        "the same bridge is not DNATed back correctly (replies bypass conntrack) and the connection hangs",
        "modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1")]
