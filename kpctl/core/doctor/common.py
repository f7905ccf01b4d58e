"""Doctor checks that hold whatever kube-proxy's mode: forwarding, the FORWARD policy, the jumps
to kube-proxy's chains, the iptables backends, set sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpctl.core.doctor.base import ipvs_services, sysctl_check
from kpctl.core.doctor.leftovers import node_modes
from kpctl.core.modes import NFT_TABLE, NFTABLES, nft_tables
from kpctl.core.nft_json import TableIndex
from kpctl.core.nft_json import items as _items
from kpctl.model.doctor import ERROR, WARNING, Finding, NodeState

if TYPE_CHECKING:
    from kpctl.model.iptables import Rule, Ruleset

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
    nft_mode = node_modes(node).active == NFTABLES
    findings = []
    for by_backend in node.iptables.values():
        for ruleset in by_backend.values():
            forward = ruleset.chain("filter", "FORWARD")
            if forward is None or forward.policy != "DROP":
                continue
            subject = f"{ruleset.family}/{ruleset.backend} filter FORWARD"
            if nft_mode:  # kube-proxy writes no KUBE-FORWARD: only the chain's own rules can let it pass
                if not any(_accepts_dnat(rule) for rule in forward.rules):
                    findings.append(Finding(
                        "forward-drop", WARNING, subject,
                        f"FORWARD policy is DROP ({ruleset.family}, {ruleset.backend}) and kube-proxy's nftables "
                        "mode accepts nothing there",
                        "an accept in kube-proxy's nft table does not override another table's drop: forwarded "
                        "Service traffic (to endpoints, from pods, other hosts, NodePorts) passes only if this "
                        "chain's own rules accept it (`kpctl trace SERVICE --from external:ADDRESS` shows whether "
                        "they do)",
                        f"accept Service connections ahead of the policy: {_tool(ruleset)} -I FORWARD -m conntrack "
                        "--ctstate DNAT,RELATED,ESTABLISHED -j ACCEPT, or accept the pod network"))
                continue
            jumps = any(r.jump == "KUBE-FORWARD" for r in forward.rules)
            kube_forward = ruleset.chain("filter", "KUBE-FORWARD")
            accepts = bool(kube_forward and any(r.target is not None and r.target.name == "ACCEPT"
                                                for r in kube_forward.rules))
            if jumps and accepts:
                continue
            missing = "no jump to KUBE-FORWARD" if not jumps else "KUBE-FORWARD has no ACCEPT rule"
            findings.append(Finding(
                "forward-drop", ERROR, subject,
                f"FORWARD policy is DROP and {missing} ({ruleset.family}, {ruleset.backend})",
                "forwarded service traffic (marked for masquerade, or replies of established "
                "connections) is dropped by the policy",
                "restart kube-proxy so it restores KUBE-FORWARD, or accept forwarded pod traffic "
                "(iptables -P FORWARD ACCEPT)"))
    return findings + _nft_forward_drops(node)


# iptables-nft's own tables, as nft lists them: the iptables rulesets' (checked above)
_IPTABLES_NFT_TABLES = frozenset(("filter", "nat", "mangle", "raw", "security"))


def _nft_forward_drops(node: NodeState) -> list[Finding]:
    """An nft base chain at the forward hook (a firewall's, not kube-proxy's nor iptables-nft's)
    with policy drop and no rule accepting DNAT'ed connections: in every mode, as kube-proxy
    accepts them in no nft table (nor could: a drop in any base chain of a hook is final)."""
    dropping = sorted({(str(c.get("family")), str(c.get("table")), str(c.get("name")))
                       for c in _items(node.nftables, "chain")
                       if c.get("hook") == "forward" and c.get("policy") == "drop" and c.get("table") != NFT_TABLE
                       and not (c.get("table") in _IPTABLES_NFT_TABLES and c.get("name") == "FORWARD")})
    indexes: dict[tuple[str, str], TableIndex] = {}  # a firewall table's (only these chains' rules decoded)
    unaccepted = []
    for family, table, name in dropping:
        if (family, table) not in indexes:
            indexes[(family, table)] = TableIndex(node.nftables, family, table)
        if not any(map(_nft_accepts_dnat, indexes[(family, table)].rules.get(name, ()))):
            unaccepted.append((family, table, name))
    return [Finding(
        "forward-drop", WARNING, f"{family} {table} chain {name}",
        f"nft chain {name} of table {family} {table} (hook forward) has policy drop and no rule accepting "
        "DNAT'ed connections",
        "a drop in any base chain of a hook is final, whatever kube-proxy's rules accepted: forwarded "
        "Service traffic (to endpoints, from pods, other hosts, NodePorts) passes only if this chain "
        "accepts it (`kpctl trace SERVICE --from external:ADDRESS` shows whether it does)",
        f"accept Service connections ahead of the policy: nft insert rule {family} {table} {name} ct status dnat "
        "accept, or accept the pod network")
        for family, table, name in unaccepted]


def _nft_accepts_dnat(rule: dict[str, Any]) -> bool:
    """Whether an nft rule accepts every connection a Service's DNAT made: `ct status dnat`
    (and counters) then accept, or accept alone."""
    accepts = False
    for stmt in rule.get("expr", ()):
        kind, body = next(iter(stmt.items())) if isinstance(stmt, dict) and len(stmt) == 1 else ("?", None)
        if kind == "accept":
            accepts = True
        elif (kind == "match" and isinstance(body, dict) and body.get("left") == {"ct": {"key": "status"}}
              and body.get("op") in ("==", "in")):
            right = body.get("right")
            if "dnat" not in (right if isinstance(right, list) else [right]):
                return False
        elif kind != "counter":
            return False
    return accepts


def _accepts_dnat(rule: Rule) -> bool:
    """Whether ``rule`` accepts every forwarded connection a Service's DNAT made: an ACCEPT whose
    only matches are conntrack states that include DNAT (or none at all)."""
    from kpctl.model.iptables import ConntrackMatch

    if rule.target_name != "ACCEPT" or any(rule.builtins()):
        return False
    for match in rule.matches:
        if match.module in ("", "comment"):
            continue
        spec = match.conntrack
        if spec is None or "DNAT" not in (spec.ctstate or ()) or spec != ConntrackMatch(ctstate=spec.ctstate):
            return False
    return True


def check_hooks_missing(node: NodeState) -> list[Finding]:
    from kpctl.core.kube_hooks import family_gaps

    findings = []
    for family, by_backend in node.iptables.items():
        for ruleset, gap in family_gaps(tuple(by_backend.values())):
            where = f"{family}, {ruleset.backend}"
            findings.append(Finding(
                "iptables-hook-missing", ERROR, f"{family}/{ruleset.backend} {gap.table} {gap.hook}",
                f"{gap.table} {gap.hook} does not jump to {gap.chain}"
                f"{'' if gap.exists else f' ({gap.chain} does not exist)'} ({where})", gap.why,
                "kube-proxy puts its jumps back on every sync: restart it, or find what removed this one "
                "(a firewall reload that flushed the built-in chains); by hand: "
                f"{_tool(ruleset)} -t {gap.table} -I {gap.hook} {gap.matches} -j {gap.chain}"))
    return findings


def _tool(ruleset: Ruleset) -> str:
    """The command that edits ``ruleset``: iptables-nft, ip6tables-legacy…"""
    return f"{'ip6tables' if ruleset.family == 'ipv6' else 'iptables'}-{ruleset.backend}"


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
