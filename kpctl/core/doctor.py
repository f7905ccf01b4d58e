"""`kpctl doctor`: named checks over a NodeState for the failures operators actually hit.

Each check has a stable id, a severity, and needs some pieces of the node (ipvs, links,
ipsets, iptables, sysctls); a check whose pieces could not be read is skipped and the
report says so once per piece.  Checks are pure functions NodeState -> [Finding].
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Union

from kpctl.errors import InvalidInput
from kpctl.model.doctor import ERROR, INFO, WARNING, DoctorReport, Finding, NodeState
from kpctl.model.iptables import Ruleset
from kpctl.model.ipvs import VirtualService
from kpctl.model.links import VIP_DEVICE

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # evaluated at run time: no `|` on 3.9
# Sets whose members are (service address, proto:port) of services bound on kube-ipvs0.
VIP_SETS: tuple[str, ...] = ("KUBE-CLUSTER-IP", "KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL",
                             "KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-LOCAL")
LB_SETS: tuple[str, ...] = ("KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-LOCAL")
MAXELEM_FRACTION = 0.9


@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    title: str
    needs: tuple[str, ...]
    run: Callable[[NodeState], list[Finding]]


def _ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        return None


def _set_name(base: str, family: str) -> str:
    """kube-proxy names its IPv6 sets KUBE-6-…"""
    return base if family == "inet" else base.replace("KUBE-", "KUBE-6-", 1)


def _vips(node: NodeState) -> set[IPAddress]:
    link = next((link for link in node.links or () if link.name == VIP_DEVICE), None)
    return {ip for ip in (_ip(a) for a in (link.addresses if link else ())) if ip is not None}


def _other_local(node: NodeState) -> set[IPAddress]:
    return {ip for link in node.links or () if link.name != VIP_DEVICE
            for ip in (_ip(a) for a in link.addresses) if ip is not None}


def _services(node: NodeState) -> tuple[VirtualService, ...]:
    return tuple(s for s in (node.ipvs.services if node.ipvs else ()) if not s.fwmark)


def _members(node: NodeState, names: Iterable[str]) -> set[tuple[str, IPAddress, str, int]]:
    """(set name, ip, proto, port) for every member of the named sets (both families)."""
    found = set()
    for base in names:
        for family in ("inet", "inet6"):
            ipset = node.ipset(_set_name(base, family))
            for member in ipset.members if ipset else ():
                ip = _ip(member.ip)
                if ip is not None and member.proto and member.port is not None:
                    found.add((ipset.name, ip, member.proto, member.port))  # type: ignore[union-attr]
    return found


def _svc_key(svc: VirtualService) -> tuple[IPAddress | None, str, int]:
    return _ip(svc.address), str(svc.protocol), svc.port


# ---------------------------------------------------------------------------- the checks

def check_vip_missing(node: NodeState) -> list[Finding]:
    vips, local = _vips(node), _other_local(node)
    findings = []
    for svc in _services(node):
        ip = _ip(svc.address)
        if ip is None or ip in vips or ip in local or ip.is_loopback:
            continue
        findings.append(Finding(
            "vip-missing", ERROR, str(svc.key),
            f"IPVS service {svc.key} but {ip} is not bound on {VIP_DEVICE} (nor on any other link)",
            "IPVS only sees packets addressed to the node itself: without the address on a local "
            "link the packets are routed away and the service does not answer",
            f"kpctl vip add {ip}  (kube-proxy re-adds it on its next sync; check its log if it keeps vanishing)"))
    return findings


def check_vip_orphan(node: NodeState) -> list[Finding]:
    used = {_ip(s.address) for s in _services(node)}
    return [Finding(
        "vip-orphan", WARNING, f"{ip}",
        f"{ip} is bound on {VIP_DEVICE} but no IPVS service uses it",
        "the node accepts packets for it locally and answers with resets or nothing: a stale "
        "service address that black-holes clients instead of failing over",
        f"kpctl vip delete {ip}  (or restart kube-proxy so it reconciles)")
        for ip in sorted(_vips(node) - used, key=str)]


def check_clusterip_ipset_missing(node: NodeState) -> list[Finding]:
    vips = _vips(node)
    services = [s for s in _services(node) if _ip(s.address) in vips]
    if not services:
        return []
    members = {(ip, proto, port) for _name, ip, proto, port in _members(node, VIP_SETS)}
    findings = []
    for svc in services:
        if _svc_key(svc) in members:
            continue
        ipset_name = _set_name("KUBE-CLUSTER-IP", svc.family)
        element = f"{svc.address},{svc.protocol}:{svc.port}"
        exists = node.ipset(ipset_name) is not None
        findings.append(Finding(
            "clusterip-ipset-missing", ERROR, str(svc.key),
            f"{element} (VIP on {VIP_DEVICE}) is in none of the KUBE-* service sets"
            + ("" if exists else f"; there is no {ipset_name} set at all"),
            "kube-proxy's iptables rules match service traffic by set membership: without the "
            "member it is neither accepted nor marked for masquerade, and KUBE-IPVS-FILTER rejects "
            "new connections to KUBE-IPVS-IPS addresses that are not in a service set",
            f"kpctl ipset add {ipset_name} {element}  (kube-proxy restores it on its next sync)"))
    return findings


def check_ipset_orphan_member(node: NodeState) -> list[Finding]:
    if node.ipvs is None:
        return []
    services = {_svc_key(s) for s in _services(node)}
    return [Finding(
        "ipset-orphan-member", WARNING, f"{name} {ip},{proto}:{port}",
        f"{name} holds {ip},{proto}:{port} but there is no IPVS service {ip}:{port}/{proto}",
        "the rules accept (and may masquerade) traffic for a service that does not exist; "
        "it usually means kube-proxy stopped syncing",
        f"kpctl ipset delete {name} {ip},{proto}:{port}")
        for name, ip, proto, port in sorted(_members(node, VIP_SETS), key=str)
        if (ip, proto, port) not in services]


def check_service_no_servers(node: NodeState) -> list[Finding]:
    findings = []
    for svc in node.ipvs.services if node.ipvs else ():
        if not svc.servers:
            found = f"{svc.key} has no real servers"
        elif all(server.weight == 0 for server in svc.servers):
            found = f"{svc.key} has {len(svc.servers)} real server(s), all at weight 0"
        else:
            continue
        findings.append(Finding(
            "service-no-servers", ERROR, str(svc.key), found,
            "IPVS has nowhere to send new connections: clients get ICMP port unreachable "
            "(connection refused)",
            "check the Service's endpoints (kubectl get endpointslices) and pod readiness"))
    return findings


def check_server_weight0_drained(node: NodeState) -> list[Finding]:
    findings = []
    for svc in node.ipvs.services if node.ipvs else ():
        for server in svc.servers:
            if server.weight == 0 and server.active_conns == 0 and server.inactive_conns == 0:
                findings.append(Finding(
                    "server-weight0-drained", WARNING, f"{svc.key} -> {server.address}:{server.port}",
                    f"real server {server.address}:{server.port} of {svc.key} is at weight 0 with no "
                    "connections left",
                    "weight 0 is kube-proxy's graceful termination; once the connections are gone it "
                    "should delete the server. Still being here means the termination is stuck",
                    f"kpctl ipvs delete-server {svc.key} {server.address}:{server.port}  "
                    "(and check kube-proxy's log)"))
    return findings


def check_loopback_vip(node: NodeState) -> list[Finding]:
    return [Finding(
        "loopback-vip", ERROR, str(svc.key),
        f"IPVS service on loopback address {svc.address}",
        "IPVS cannot forward connections made to 127.0.0.0/8 or ::1 to real servers "
        "(NAT to a non-local address from loopback is dropped): this service can never work",
        f"kpctl ipvs delete {svc.key}; for NodePorts set kube-proxy's --nodeport-addresses "
        "to exclude loopback")
        for svc in _services(node) if (ip := _ip(svc.address)) is not None and ip.is_loopback]


def _masquerades(ruleset: Ruleset) -> bool:
    chain = ruleset.chain("nat", "KUBE-POSTROUTING")
    return bool(chain and any(r.target is not None and r.target.name == "MASQUERADE" for r in chain.rules))


def check_vs_conntrack(node: NodeState) -> list[Finding]:
    value = node.sysctl("net.ipv4.vs.conntrack")
    masq = [r for by_backend in node.iptables.values() for r in by_backend.values() if _masquerades(r)]
    if value is None or value == "1" or not masq:
        return []
    return [Finding(
        "vs-conntrack", ERROR, "net.ipv4.vs.conntrack",
        f"net.ipv4.vs.conntrack = {value} while KUBE-POSTROUTING masquerades "
        f"({masq[0].family}/{masq[0].backend})",
        "without it IPVS connections bypass conntrack, so MASQUERADE never applies: replies "
        "from pods come back with the wrong source and connections hang",
        "sysctl -w net.ipv4.vs.conntrack=1  (kube-proxy sets it at start)")]


def _sysctl_check(check_id: str, name: str, want: str, severity: str, why: str) -> Callable[[NodeState], list[Finding]]:
    def run(node: NodeState) -> list[Finding]:
        value = node.sysctl(name)
        if value is None or value == want:
            return []
        return [Finding(check_id, severity, name, f"{name} = {value} (kube-proxy expects {want})", why,
                        f"sysctl -w {name}={want}")]
    return run


check_expire_nodest_conn = _sysctl_check(
    "sysctl-expire-nodest-conn", "net.ipv4.vs.expire_nodest_conn", "1", WARNING,
    "with 0, packets of connections whose real server was deleted are silently dropped until the "
    "entry times out (up to the 900 s TCP timeout) instead of being reset")
check_expire_quiescent_template = _sysctl_check(
    "sysctl-expire-quiescent-template", "net.ipv4.vs.expire_quiescent_template", "1", WARNING,
    "with 0, persistent (session affinity) templates keep sending clients to a weight-0, "
    "terminating real server")


def check_ip_forward(node: NodeState) -> list[Finding]:
    findings = _sysctl_check(
        "ip-forward", "net.ipv4.ip_forward", "1", ERROR,
        "the node does not forward packets: service traffic to pods on other nodes, and pod "
        "traffic through services, is dropped")(node)
    if any(s.family == "inet6" for s in _services(node)):
        findings += _sysctl_check(
            "ip-forward", "net.ipv6.conf.all.forwarding", "1", ERROR,
            "IPv6 services exist but the node does not forward IPv6")(node)
    return findings


def check_strict_arp(node: NodeState) -> list[Finding]:
    vips = _vips(node)
    lb_ips = {ip for _n, ip, _p, _port in _members(node, LB_SETS) if ip in vips}
    if not lb_ips:
        return []
    wrong = [(name, want, node.sysctl(name)) for name, want in
             (("net.ipv4.conf.all.arp_ignore", "1"), ("net.ipv4.conf.all.arp_announce", "2"))
             if node.sysctl(name) is not None and node.sysctl(name) != want]
    if not wrong:
        return []
    sample = ", ".join(sorted(str(ip) for ip in lb_ips)[:3])
    return [Finding(
        "strict-arp", WARNING, name,
        f"{name} = {value} while LoadBalancer IPs ({sample}) are bound on {VIP_DEVICE}",
        "every node answers ARP for the LoadBalancer IPs on kube-ipvs0, stealing traffic from the "
        "node the load balancer (e.g. MetalLB L2) announced",
        f"sysctl -w {name}={want}  (kube-proxy's ipvs.strictARP: true does this)")
        for name, want, value in wrong]


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


def check_ipvs_tcp_timeout(node: NodeState) -> list[Finding]:
    keepalive = node.sysctl("net.ipv4.tcp_keepalive_time")
    if node.timeouts is None or keepalive is None or not keepalive.isdigit():
        return []
    tcp = node.timeouts.tcp
    if tcp <= 0 or tcp >= int(keepalive):
        return []
    return [Finding(
        "ipvs-tcp-timeout", WARNING, "ipvs tcp timeout",
        f"IPVS tcp timeout {tcp} s is below net.ipv4.tcp_keepalive_time {keepalive} s",
        "IPVS forgets an idle established connection before the first keepalive is sent: "
        "long-lived idle connections (databases, gRPC) are cut and then reset",
        f"kpctl ipvs timeout {keepalive} 120 300 (kube-proxy: ipvs.tcpTimeout), or lower "
        f"net.ipv4.tcp_keepalive_time below {tcp}")]


CHECKS: dict[str, Check] = {c.id: c for c in (
    Check("vip-missing", ERROR, "IPVS service whose VIP is not bound", ("ipvs", "links"), check_vip_missing),
    Check("vip-orphan", WARNING, "VIP bound with no IPVS service", ("ipvs", "links"), check_vip_orphan),
    Check("clusterip-ipset-missing", ERROR, "service VIP missing from KUBE-CLUSTER-IP",
          ("ipvs", "links", "ipsets"), check_clusterip_ipset_missing),
    Check("ipset-orphan-member", WARNING, "service set member with no IPVS service", ("ipvs", "ipsets"),
          check_ipset_orphan_member),
    Check("service-no-servers", ERROR, "service with no (or only weight-0) real servers", ("ipvs",),
          check_service_no_servers),
    Check("server-weight0-drained", WARNING, "weight-0 real server with no connections left", ("ipvs",),
          check_server_weight0_drained),
    Check("loopback-vip", ERROR, "virtual service on a loopback address", ("ipvs",), check_loopback_vip),
    Check("vs-conntrack", ERROR, "net.ipv4.vs.conntrack off while masquerading", ("sysctls", "iptables"),
          check_vs_conntrack),
    Check("sysctl-expire-nodest-conn", WARNING, "net.ipv4.vs.expire_nodest_conn", ("sysctls",),
          check_expire_nodest_conn),
    Check("sysctl-expire-quiescent-template", WARNING, "net.ipv4.vs.expire_quiescent_template", ("sysctls",),
          check_expire_quiescent_template),
    Check("ip-forward", ERROR, "IP forwarding off", ("sysctls",), check_ip_forward),
    Check("strict-arp", WARNING, "ARP sysctls with LoadBalancer IPs bound", ("links", "ipsets", "sysctls"),
          check_strict_arp),
    Check("forward-drop", ERROR, "FORWARD policy DROP without KUBE-FORWARD accept", ("iptables",),
          check_forward_drop),
    Check("iptables-backends-mixed", ERROR, "KUBE-* rules in both iptables backends", ("iptables",),
          check_iptables_backends_mixed),
    Check("ipset-near-maxelem", WARNING, "ipset within 10% of maxelem", ("ipsets",), check_ipset_near_maxelem),
    Check("ipvs-tcp-timeout", WARNING, "IPVS tcp timeout below tcp_keepalive_time", ("ipvs", "sysctls"),
          check_ipvs_tcp_timeout),
)}


def select_checks(ids: Sequence[str]) -> list[Check]:
    """The checks named (all when none); an unknown id is bad input."""
    unknown = [i for i in ids if i not in CHECKS]
    if unknown:
        raise InvalidInput(f"unknown check {unknown[0]!r}", "known checks: " + ", ".join(CHECKS))
    return [CHECKS[i] for i in dict.fromkeys(ids)] if ids else list(CHECKS.values())


def run_checks(node: NodeState, checks: Sequence[Check]) -> DoctorReport:
    findings: list[Finding] = []
    skipped: dict[str, list[str]] = {}
    for check in checks:
        missing = [piece for piece in check.needs if piece in node.unavailable]
        if missing:
            skipped.setdefault(missing[0], []).append(check.id)
            continue
        findings.extend(check.run(node))
    for piece, ids in skipped.items():
        findings.append(Finding(
            "not-readable", INFO, piece, f"could not read {piece}: {node.unavailable[piece]}",
            "the checks that need it were skipped: " + ", ".join(ids),
            "fix the reason above (root, kernel support), or use a snapshot that has this section"))
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    findings.sort(key=lambda f: order[f.severity])
    return DoctorReport(findings=tuple(findings), checks_run=tuple(c.id for c in checks))
