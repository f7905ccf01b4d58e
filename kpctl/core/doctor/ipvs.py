"""Doctor checks for kube-proxy's IPVS mode: VIPs on kube-ipvs0, the KUBE-* service sets,
real servers, and the net.ipv4.vs.* sysctls.  They run when IPVS is the active mode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kpctl.core.doctor.base import address_key, address_of, ipvs_services, is_loopback, sysctl_check
from kpctl.model.doctor import ERROR, WARNING, Finding, NodeState
from kpctl.model.links import VIP_DEVICE

if TYPE_CHECKING:
    from kpctl.model.iptables import Ruleset
    from kpctl.model.ipvs import VirtualService

# Sets whose members are (service address, proto:port) of services bound on kube-ipvs0.
VIP_SETS: tuple[str, ...] = ("KUBE-CLUSTER-IP", "KUBE-EXTERNAL-IP", "KUBE-EXTERNAL-IP-LOCAL",
                             "KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-LOCAL")
LB_SETS: tuple[str, ...] = ("KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER-LOCAL")


def _set_name(base: str, family: str) -> str:
    """kube-proxy names its IPv6 sets KUBE-6-…"""
    return base if family == "inet" else base.replace("KUBE-", "KUBE-6-", 1)


def _vips(node: NodeState) -> set[bytes]:
    link = next((link for link in node.links or () if link.name == VIP_DEVICE), None)
    return {key for key in (address_key(a) for a in (link.addresses if link else ())) if key is not None}


def _other_local(node: NodeState) -> set[bytes]:
    return {key for link in node.links or () if link.name != VIP_DEVICE
            for key in (address_key(a) for a in link.addresses) if key is not None}


def _members(node: NodeState, names: Iterable[str]) -> set[tuple[str, bytes, str, int]]:
    """(set name, address key, proto, port) for every member of the named sets (both families)."""
    found = set()
    for base in names:
        for family in ("inet", "inet6"):
            ipset = node.ipset(_set_name(base, family))
            for member in ipset.members if ipset else ():
                key = address_key(member.ip)
                if key is not None and member.proto and member.port is not None:
                    found.add((ipset.name, key, member.proto, member.port))  # type: ignore[union-attr]
    return found


def _svc_key(svc: VirtualService) -> tuple[bytes | None, str, int]:
    return address_key(svc.address), str(svc.protocol), svc.port


def check_vip_missing(node: NodeState) -> list[Finding]:
    vips, local = _vips(node), _other_local(node)
    findings = []
    for svc in ipvs_services(node):
        key = address_key(svc.address)
        if key is None or key in vips or key in local or is_loopback(key):
            continue
        ip = address_of(key)
        findings.append(Finding(
            "vip-missing", ERROR, str(svc.key),
            f"IPVS service {svc.key} but {ip} is not bound on {VIP_DEVICE} (nor on any other link)",
            "IPVS only sees packets addressed to the node itself: without the address on a local "
            "link the packets are routed away and the service does not answer",
            f"kpctl vip add {ip}  (kube-proxy re-adds it on its next sync; check its log if it keeps vanishing)"))
    return findings


def check_vip_orphan(node: NodeState) -> list[Finding]:
    used = {address_key(s.address) for s in ipvs_services(node)}
    return [Finding(
        "vip-orphan", WARNING, f"{ip}",
        f"{ip} is bound on {VIP_DEVICE} but no IPVS service uses it",
        "the node accepts packets for it locally and answers with resets or nothing: a stale "
        "service address that black-holes clients instead of failing over",
        f"kpctl vip delete {ip}  (or restart kube-proxy so it reconciles)")
        for ip in sorted((address_of(key) for key in _vips(node) - used), key=str)]


def check_clusterip_ipset_missing(node: NodeState) -> list[Finding]:
    vips = _vips(node)
    services = [s for s in ipvs_services(node) if address_key(s.address) in vips]
    if not services:
        return []
    members = {(key, proto, port) for _name, key, proto, port in _members(node, VIP_SETS)}
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
    services = {_svc_key(s) for s in ipvs_services(node)}
    return [Finding(
        "ipset-orphan-member", WARNING, f"{name} {ip},{proto}:{port}",
        f"{name} holds {ip},{proto}:{port} but there is no IPVS service {ip}:{port}/{proto}",
        "the rules accept (and may masquerade) traffic for a service that does not exist; "
        "it usually means kube-proxy stopped syncing",
        f"kpctl ipset delete {name} {ip},{proto}:{port}")
        for name, ip, proto, port in sorted(((name, address_of(key), proto, port)
                                             for name, key, proto, port in _members(node, VIP_SETS)
                                             if (key, proto, port) not in services), key=str)]


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
        for svc in ipvs_services(node) if (key := address_key(svc.address)) is not None and is_loopback(key)]


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


check_expire_nodest_conn = sysctl_check(
    "sysctl-expire-nodest-conn", "net.ipv4.vs.expire_nodest_conn", "1", WARNING,
    "with 0, packets of connections whose real server was deleted are silently dropped until the "
    "entry times out (up to the 900 s TCP timeout) instead of being reset")
check_expire_quiescent_template = sysctl_check(
    "sysctl-expire-quiescent-template", "net.ipv4.vs.expire_quiescent_template", "1", WARNING,
    "with 0, persistent (session affinity) templates keep sending clients to a weight-0, "
    "terminating real server")


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


