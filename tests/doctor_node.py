"""A healthy kube-proxy IPVS-mode node, as data: used by the doctor unit tests (as models)
and the doctor VM test (loaded into the kernel with ipvsadm, ipset, iptables, sysctl).

clusterCIDR 172.30.0.0/16, node address 10.1.0.8 on node0; ClusterIPs 10.254.0.1 (443/tcp)
and 10.254.0.2 (53/udp, 53/tcp); a LoadBalancer IP 203.0.113.20 (80/tcp); a NodePort 30080.
"""

from __future__ import annotations

from kpctl.model.ipvs import IPVSInfo, IPVSTable, RealServer, Timeouts, VirtualService
from kpctl.model.links import Link

NODE_IP = "10.1.0.8"
VIPS = ("10.254.0.1", "10.254.0.2", "203.0.113.20")

# (service, scheduler, [(server, weight)]) -- what `ipvsadm -A/-a` gets in the VM.
SERVICES_SPEC: tuple[tuple[str, str, str, int, tuple[tuple[str, int, int], ...]], ...] = (
    ("tcp", "10.254.0.1", "rr", 443, (("172.30.1.5", 6443, 1),)),
    ("udp", "10.254.0.2", "rr", 53, (("172.30.2.7", 53, 1), ("172.30.1.9", 53, 1))),
    ("tcp", "10.254.0.2", "rr", 53, (("172.30.2.7", 53, 1), ("172.30.1.9", 53, 1))),
    ("tcp", "203.0.113.20", "rr", 80, (("172.30.1.5", 8080, 1),)),
    ("tcp", NODE_IP, "rr", 30080, (("172.30.1.5", 8080, 1),)),
)

IPSETS = """\
create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.254.0.1,tcp:443
add KUBE-CLUSTER-IP 10.254.0.2,udp:53
add KUBE-CLUSTER-IP 10.254.0.2,tcp:53
create KUBE-LOAD-BALANCER hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-LOAD-BALANCER 203.0.113.20,tcp:80
create KUBE-EXTERNAL-IP hash:ip,port family inet hashsize 1024 maxelem 65536
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add KUBE-LOOP-BACK 172.30.1.5,tcp:8080,172.30.1.5
create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
add KUBE-NODE-PORT-TCP 30080
create KUBE-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535
create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536
add KUBE-IPVS-IPS 10.254.0.1
add KUBE-IPVS-IPS 10.254.0.2
add KUBE-IPVS-IPS 203.0.113.20
"""

# What kube-proxy's IPVS mode writes (trimmed to the rules the checks and a packet need).
RULES = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-TCP dst -j KUBE-MARK-MASQ
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SERVICES ! -s 172.30.0.0/16 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "Kubernetes service lb portal" -m set --match-set KUBE-LOAD-BALANCER dst,dst -j KUBE-LOAD-BALANCER
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-SERVICES -m set --match-set KUBE-LOAD-BALANCER dst,dst -j ACCEPT
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-IPVS-FILTER - [0:0]
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""

SYSCTLS: dict[str, str] = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.vs.conntrack": "1",
    "net.ipv4.vs.expire_nodest_conn": "1",
    "net.ipv4.vs.expire_quiescent_template": "1",
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.all.arp_announce": "2",
    "net.ipv4.tcp_keepalive_time": "600",
}

TIMEOUTS = Timeouts(tcp=900, tcp_fin=120, udp=300)


def services() -> tuple[VirtualService, ...]:
    return tuple(
        VirtualService(protocol=proto, address=address, port=port, scheduler=scheduler,
                       servers=tuple(RealServer(ip, sport, weight=w) for ip, sport, w in servers))
        for proto, address, scheduler, port, servers in SERVICES_SPEC)


def ipvs_table() -> IPVSTable:
    return IPVSTable(info=IPVSInfo("1.2.1", 4096), services=services())


def links() -> tuple[Link, ...]:
    return (
        Link("lo", "loopback", "UP", ("127.0.0.1/8", "::1/128")),
        Link("node0", "dummy", "UP", (f"{NODE_IP}/24",)),
        Link("kube-ipvs0", "dummy", "DOWN", tuple(f"{vip}/32" for vip in VIPS)),
    )
