"""`kpctl trace` against real traffic: kube-proxy-shaped nodes in the VM (IPVS, iptables and
nftables mode), pods as namespaces with socat servers that answer "ADDR:PORT PEER".

For every scenario: `kpctl snapshot save` the node, `kpctl --snapshot … trace SERVICE --from …`
predicts; then the client really connects.  The prediction must agree with what happened:
  - delivered: some server answered, it is one of the predicted servers, and the peer it saw
    is the source the trace predicted for that server (masqueraded or not);
  - rejected / to the local stack with nothing listening: the connection is refused;
  - the exit status is 0 exactly when delivered.
Every disagreement is a bug in trace.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cli_helpers import kpctl
from tests.vm.nodes import Node, Pod, ipvsadm, sh

pytestmark = pytest.mark.vm

NODE_IP = "192.168.10.10"
WEB1, WEB2, DNS, CLIENT, EXTERNAL = "172.30.22.4", "172.30.22.5", "172.30.78.2", "172.30.22.9", "198.51.100.7"


@pytest.fixture(autouse=True)
def _fresh_ipvs_table() -> Iterator[None]:
    """Override conftest's per-test IPVS wipe: a class builds its node once for all scenarios."""
    yield


# ---------------------------------------------------------------- the rule sets


IPVS_FILTER = """:KUBE-IPVS-FILTER - [0:0]
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT --reject-with icmp-port-unreachable
"""


def ipvs_rules(masquerade_all: bool, ipvs_filter: bool = False) -> str:
    """The seed article's IPVS-mode rules (masqueradeAll=false, clusterCIDR 172.30.0.0/16), plus the
    mangle rules of a firewall-mark service."""
    masq = ("-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ" if masquerade_all
            else "-A KUBE-SERVICES ! -s 172.30.0.0/16 -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ")
    return f"""*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.254.0.90/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x64/0xffffffff
-A OUTPUT -d 10.254.0.90/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x64/0xffffffff
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
{IPVS_FILTER if ipvs_filter else ""}-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -s 172.30.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-FORWARD -d 172.30.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KUBE-POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
{masq}
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
COMMIT
"""


IPVS_SETS = """create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.254.0.1,tcp:443
add KUBE-CLUSTER-IP 10.254.0.2,udp:53
add KUBE-CLUSTER-IP 10.254.0.2,tcp:53
add KUBE-CLUSTER-IP 10.254.0.2,tcp:9153
add KUBE-CLUSTER-IP 10.254.199.160,tcp:8080
add KUBE-CLUSTER-IP 10.254.0.60,tcp:80
add KUBE-CLUSTER-IP 10.254.0.70,tcp:80
add KUBE-CLUSTER-IP 10.254.0.80,tcp:80
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add KUBE-LOOP-BACK 172.30.22.4,tcp:8080,172.30.22.4
add KUBE-LOOP-BACK 172.30.22.5,tcp:8080,172.30.22.5
add KUBE-LOOP-BACK 172.30.78.2,tcp:53,172.30.78.2
add KUBE-LOOP-BACK 172.30.78.2,udp:53,172.30.78.2
add KUBE-LOOP-BACK 172.30.78.2,tcp:9153,172.30.78.2
create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536
add KUBE-IPVS-IPS 10.254.0.1
add KUBE-IPVS-IPS 10.254.0.2
add KUBE-IPVS-IPS 10.254.199.160
"""

IPVS_SERVICES = [
    "-A -t 10.254.0.1:443 -s rr", f"-a -t 10.254.0.1:443 -r {NODE_IP}:6443 -m",
    "-A -t 10.254.0.2:53 -s rr", f"-a -t 10.254.0.2:53 -r {DNS}:53 -m",
    "-A -u 10.254.0.2:53 -s rr", f"-a -u 10.254.0.2:53 -r {DNS}:53 -m",
    "-A -t 10.254.0.2:9153 -s rr", f"-a -t 10.254.0.2:9153 -r {DNS}:9153 -m",
    "-A -t 10.254.199.160:8080 -s rr", f"-a -t 10.254.199.160:8080 -r {WEB1}:8080 -m",
    f"-a -t 10.254.199.160:8080 -r {WEB2}:8080 -m",
    "-A -t 10.254.0.60:80 -s rr", f"-a -t 10.254.0.60:80 -r {WEB1}:8080 -m -w 0",
    "-A -t 10.254.0.70:80 -s rr",
    "-A -t 10.254.0.80:80 -s rr -p 300", f"-a -t 10.254.0.80:80 -r {WEB1}:8080 -m",
    f"-a -t 10.254.0.80:80 -r {WEB2}:8080 -m",
    "-A -f 100 -s rr", f"-a -f 100 -r {WEB2}:8080 -m",
    "-A -t 10.254.0.100:80 -s wrr", f"-a -t 10.254.0.100:80 -r {WEB1}:8080 -m -w 3",
    f"-a -t 10.254.0.100:80 -r {WEB2}:8080 -m -w 1",
    "-A -t 10.254.0.110:80 -s sh", f"-a -t 10.254.0.110:80 -r {WEB1}:8080 -m",
    f"-a -t 10.254.0.110:80 -r {WEB2}:8080 -m",
]
IPVS_VIPS = ["10.254.0.1", "10.254.0.2", "10.254.199.160", "10.254.0.60", "10.254.0.70", "10.254.0.80",
             "10.254.0.90", "10.254.0.100", "10.254.0.110"]


def _sep(name: str, ip: str, port: int, proto: str = "tcp", affinity: bool = False) -> list[str]:
    recent = f" -m recent --set --name {name} --mask 255.255.255.255 --rsource" if affinity else ""
    return [f"-A {name} -s {ip}/32 -j KUBE-MARK-MASQ",
            f"-A {name} -p {proto}{recent} -m {proto} -j DNAT --to-destination {ip}:{port}"]


def iptables_mode_rules(masquerade_all: bool, forward_policy: str = "ACCEPT") -> str:
    """kube-proxy iptables mode (1.2x layout) for this VM's pods."""
    src = "" if masquerade_all else "! -s 172.30.0.0/16 "
    chains = ["KUBE-MARK-MASQ", "KUBE-POSTROUTING", "KUBE-SERVICES", "KUBE-SVC-WEB", "KUBE-SEP-WEB1",
              "KUBE-SEP-WEB2", "KUBE-SVC-DNS", "KUBE-SEP-DNS", "KUBE-SVC-API", "KUBE-SEP-API", "KUBE-SVC-STICKY",
              "KUBE-SEP-STICKY1", "KUBE-SEP-STICKY2"]
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]"] + [f":{c} - [0:0]" for c in chains] + [
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE",
        "-A KUBE-SERVICES -d 10.254.199.160/32 -p tcp -m tcp --dport 8080 -j KUBE-SVC-WEB",
        "-A KUBE-SERVICES -d 10.254.0.2/32 -p udp -m udp --dport 53 -j KUBE-SVC-DNS",
        "-A KUBE-SERVICES -d 10.254.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-SVC-API",
        "-A KUBE-SERVICES -d 10.254.0.80/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-STICKY",
        f"-A KUBE-SVC-WEB {src}-d 10.254.199.160/32 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ",
        "-A KUBE-SVC-WEB -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-WEB1",
        "-A KUBE-SVC-WEB -j KUBE-SEP-WEB2",
        f"-A KUBE-SVC-DNS {src}-d 10.254.0.2/32 -p udp -m udp --dport 53 -j KUBE-MARK-MASQ",
        "-A KUBE-SVC-DNS -j KUBE-SEP-DNS",
        f"-A KUBE-SVC-API {src}-d 10.254.0.1/32 -p tcp -m tcp --dport 443 -j KUBE-MARK-MASQ",
        "-A KUBE-SVC-API -j KUBE-SEP-API",
        f"-A KUBE-SVC-STICKY {src}-d 10.254.0.80/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ",
        "-A KUBE-SVC-STICKY -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-STICKY1 --mask 255.255.255.255 --rsource -j KUBE-SEP-STICKY1",
        "-A KUBE-SVC-STICKY -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-STICKY2 --mask 255.255.255.255 --rsource -j KUBE-SEP-STICKY2",
        "-A KUBE-SVC-STICKY -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-STICKY1",
        "-A KUBE-SVC-STICKY -j KUBE-SEP-STICKY2",
    ] + _sep("KUBE-SEP-WEB1", WEB1, 8080) + _sep("KUBE-SEP-WEB2", WEB2, 8080) + _sep(
        "KUBE-SEP-DNS", DNS, 53, "udp") + _sep("KUBE-SEP-API", NODE_IP, 6443) + _sep(
        "KUBE-SEP-STICKY1", WEB1, 8080, affinity=True) + _sep("KUBE-SEP-STICKY2", WEB2, 8080, affinity=True) + [
        "COMMIT"]
    filt = ["*filter", ":INPUT ACCEPT [0:0]", f":FORWARD {forward_policy} [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":KUBE-SERVICES - [0:0]", ":KUBE-FORWARD - [0:0]",
            "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
            "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
            "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            "-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
            "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A KUBE-SERVICES -d 10.254.0.50/32 -p tcp -m comment --comment \"default/empty:http has no endpoints\" "
            "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable",
            "COMMIT"]
    return "\n".join(filt + nat) + "\n"


NFT_RULES = f"""table ip kube-proxy {{
    set cluster-ips {{ type ipv4_addr; elements = {{ 10.254.0.1, 10.254.0.2, 10.254.199.160, 10.254.0.50 }}; }}
    map no-endpoint-services {{
        type ipv4_addr . inet_proto . inet_service : verdict
        elements = {{ 10.254.0.50 . tcp . 80 : goto reject-chain }}
    }}
    map service-ips {{
        type ipv4_addr . inet_proto . inet_service : verdict
        elements = {{ 10.254.199.160 . tcp . 8080 : goto service-web, 10.254.0.2 . udp . 53 : goto service-dns }}
    }}
    chain filter-forward {{ type filter hook forward priority -110; policy accept;
        ct state new jump service-endpoints-check
        ct state new jump cluster-ips-check; }}
    chain filter-output {{ type filter hook output priority -110; policy accept;
        ct state new jump service-endpoints-check; }}
    chain filter-output-post-dnat {{ type filter hook output priority -90; policy accept;
        ct state new jump cluster-ips-check; }}
    chain cluster-ips-check {{
        ip daddr @cluster-ips reject
        ip daddr 10.254.0.0/16 drop; }}
    chain service-endpoints-check {{ ip daddr . meta l4proto . th dport vmap @no-endpoint-services; }}
    chain reject-chain {{ reject; }}
    chain mark-for-masquerade {{ mark set mark or 0x4000; }}
    chain masquerading {{
        mark and 0x4000 == 0 return
        mark set mark xor 0x4000
        masquerade fully-random; }}
    chain nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; jump services; }}
    chain nat-output {{ type nat hook output priority -100; policy accept; jump services; }}
    chain nat-postrouting {{ type nat hook postrouting priority srcnat; policy accept; jump masquerading; }}
    chain services {{ ip daddr . meta l4proto . th dport vmap @service-ips; }}
    chain service-web {{
        ip daddr 10.254.199.160 tcp dport 8080 ip saddr != 172.30.0.0/16 jump mark-for-masquerade
        numgen random mod 2 vmap {{ 0 : goto endpoint-web1, 1 : goto endpoint-web2 }}; }}
    chain endpoint-web1 {{ ip saddr {WEB1} jump mark-for-masquerade
        meta l4proto tcp dnat to {WEB1}:8080; }}
    chain endpoint-web2 {{ ip saddr {WEB2} jump mark-for-masquerade
        meta l4proto tcp dnat to {WEB2}:8080; }}
    chain service-dns {{
        ip daddr 10.254.0.2 udp dport 53 ip saddr != 172.30.0.0/16 jump mark-for-masquerade
        goto endpoint-dns; }}
    chain endpoint-dns {{ ip saddr {DNS} jump mark-for-masquerade
        meta l4proto udp dnat to {DNS}:53; }}
}}
"""


# ---------------------------------------------------------------- the nodes


class Cluster:
    """One VM node with pods and servers; rules of one mode; snapshots per variant."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.node = Node(ip=NODE_IP)
        self.pods: dict[str, Pod] = {}
        self.dir = tempfile.mkdtemp(prefix=f"kpctl-trace-{mode}-")
        self.variant: str | None = None
        self.snapshots: dict[str, str] = {}
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        for name, ip in (("web1", WEB1), ("web2", WEB2), ("dns", DNS), ("client", CLIENT), ("external", EXTERNAL)):
            self.pods[name] = self.node.add_pod(ip, name=f"kptr-{self.mode[:3]}-{name}")
        # Answers "ADDR_PORT PEER" (a ':' would end socat's SYSTEM command).
        self.pods["web1"].serve(8080, reply=f"{WEB1}_8080")
        self.pods["web2"].serve(8080, reply=f"{WEB2}_8080")
        self.pods["dns"].serve(53, reply=f"{DNS}_53")
        self.pods["dns"].serve(53, "udp", reply=f"{DNS}_53")
        self.pods["dns"].serve(9153, reply=f"{DNS}_9153")
        self.node.serve(6443, reply=f"{NODE_IP}_6443")
        if self.mode == "ipvs":
            for vip in IPVS_VIPS:
                self.node.add_vip(vip)
            sh("ipset", "restore", input=IPVS_SETS)
            ipvsadm("-R", input="\n".join(IPVS_SERVICES) + "\n")

    def use(self, variant: str) -> str:
        """Apply the rules of ``variant`` (if not current) and return its snapshot file."""
        if variant != self.variant:
            masquerade_all = variant == "masquerade-all"
            if self.mode == "ipvs":
                sh("iptables-restore", input=ipvs_rules(masquerade_all, variant == "ipvs-filter"))
                self.node.sysctl("net.ipv4.vs.conntrack", "0" if variant == "vs-conntrack-0" else "1")
            elif self.mode == "iptables":
                sh("iptables-restore", input=iptables_mode_rules(
                    masquerade_all, "DROP" if variant == "forward-drop" else "ACCEPT"))
            else:
                sh("nft", "delete", "table", "ip", "kube-proxy", check=False)
                sh("nft", "-f", "-", input=NFT_RULES)
            sh("conntrack", "-F", check=False)
            self.variant = variant
        if variant not in self.snapshots:
            path = os.path.join(self.dir, f"{variant}.json")
            saved = kpctl("snapshot", "save", path)
            assert saved.exit_code == 0, saved.stderr
            self.snapshots[variant] = path
        return self.snapshots[variant]

    def connect(self, client: str, address: str, port: int, proto: str) -> tuple[str, str]:
        """('answer', "SERVER PEER") or ('refused'|'timeout'|'error', stderr)."""
        target = f"TCP:{address}:{port},connect-timeout=4" if proto == "tcp" else f"UDP:{address}:{port}"
        # -T10: under emulation the server's fork+exec of `echo` can take seconds; an answer
        # that never comes is retried, a refused or timed-out connect is not.
        # -t10: after our EOF socat waits only 0.5 s for the answer by default.
        argv = ["socat", "-T10", "-t10", "-", target]
        last = ("error", "")
        for _ in range(3):
            if client == "node":
                proc = sh(*argv, input="ping\n", check=False, timeout=30)
            else:
                proc = self.pods[client].exec(*argv, input="ping\n", check=False, timeout=30)
            if proc.returncode == 0 and proc.stdout.strip():
                return "answer", proc.stdout.strip()
            err = proc.stderr
            if "refused" in err.lower():
                return "refused", err.strip()
            last = ("timeout" if "timed out" in err.lower() or not err.strip() else "error", err.strip())
        return last

    def diagnose(self, address: str) -> str:
        """What the kernel saw, for a failure message."""
        out = []
        for cmd in (["ip", "route", "get", address], ["conntrack", "-L"], ["iptables-save", "-c", "-t", "nat"],
                    ["ipvsadm", "-Ln", "--stats"], ["nft", "list", "table", "ip", "kube-proxy"]):
            proc = sh(*cmd, check=False)
            out.append(f"$ {' '.join(cmd)}\n{proc.stdout.strip()}{proc.stderr.strip()}")
        return "\n".join(out)

    def close(self) -> None:
        self.node.cleanup()
        sh("sh", "-c", "for t in raw mangle nat filter; do iptables -t $t -F; iptables -t $t -X; done; "
                       "for c in INPUT FORWARD OUTPUT; do iptables -P $c ACCEPT; done; "
                       "ipset destroy 2>/dev/null; nft delete table ip kube-proxy 2>/dev/null; "
                       "ipvsadm -C; conntrack -F 2>/dev/null; true", check=False)


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    id: str
    client: str  # node | pod name
    service: str
    variant: str = "base"
    repeat: int = 1  # >1: the same client gets the same server every time (persistence/affinity)

    @property
    def origin(self) -> str:
        if self.client == "node":
            return "node"
        ip = {"web1": WEB1, "web2": WEB2, "dns": DNS, "client": CLIENT, "external": EXTERNAL}[self.client]
        return f"{'external' if self.client == 'external' else 'pod'}:{ip}"


IPVS_SCENARIOS = [
    Scenario("pod-web-rr", "client", "10.254.199.160:8080"),
    Scenario("node-web-masq", "node", "10.254.199.160:8080"),
    Scenario("pod-api-local-real-server", "client", "10.254.0.1:443"),
    Scenario("node-api-local-real-server", "node", "10.254.0.1:443"),
    Scenario("pod-dns-udp", "client", "10.254.0.2:53/udp"),
    Scenario("pod-dns-tcp", "client", "10.254.0.2:53/tcp"),
    Scenario("node-dns-udp-masq", "node", "10.254.0.2:53/udp"),
    Scenario("external-metrics-masq", "external", "10.254.0.2:9153"),
    Scenario("hairpin-web1", "web1", "10.254.199.160:8080"),
    Scenario("hairpin-dns", "dns", "10.254.0.2:9153"),
    Scenario("pod-weight-0", "client", "10.254.0.60:80"),
    Scenario("node-weight-0", "node", "10.254.0.60:80"),
    Scenario("pod-no-real-servers", "client", "10.254.0.70:80"),
    Scenario("pod-vip-without-port", "client", "10.254.0.1:80"),
    Scenario("node-vip-without-port", "node", "10.254.0.2:8080"),
    Scenario("pod-persistent", "client", "10.254.0.80:80", repeat=3),
    Scenario("pod-fwmark-service", "client", "10.254.0.90:80"),
    Scenario("node-fwmark-service", "node", "10.254.0.90:80"),
    Scenario("pod-wrr-3-to-1", "client", "10.254.0.100:80"),
    Scenario("pod-sh-source-hash", "client", "10.254.0.110:80", repeat=2),
    Scenario("masq-all-pod-web", "client", "10.254.199.160:8080", "masquerade-all"),
    Scenario("masq-all-pod-dns-udp", "client", "10.254.0.2:53/udp", "masquerade-all"),
    Scenario("masq-all-pod-metrics", "client", "10.254.0.2:9153", "masquerade-all"),
    Scenario("vs-conntrack-0-external", "external", "10.254.0.2:9153", "vs-conntrack-0"),
    Scenario("ipvs-filter-pod-vip-without-port", "client", "10.254.0.1:80", "ipvs-filter"),
    Scenario("ipvs-filter-node-vip-without-port", "node", "10.254.0.2:8080", "ipvs-filter"),
    Scenario("ipvs-filter-pod-web-still-works", "client", "10.254.199.160:8080", "ipvs-filter"),
]
IPTABLES_SCENARIOS = [
    Scenario("ipt-pod-web", "client", "10.254.199.160:8080"),
    Scenario("ipt-node-web-masq", "node", "10.254.199.160:8080"),
    Scenario("ipt-hairpin-web1", "web1", "10.254.199.160:8080"),
    Scenario("ipt-pod-no-endpoints", "client", "10.254.0.50:80"),
    Scenario("ipt-node-no-endpoints", "node", "10.254.0.50:80"),
    Scenario("ipt-pod-dns-udp", "client", "10.254.0.2:53/udp"),
    Scenario("ipt-external-web-masq", "external", "10.254.199.160:8080"),
    Scenario("ipt-pod-api-on-node", "client", "10.254.0.1:443"),
    Scenario("ipt-pod-affinity", "client", "10.254.0.80:80", repeat=3),
    Scenario("ipt-masq-all-pod-web", "client", "10.254.199.160:8080", "masquerade-all"),
    Scenario("ipt-forward-drop-pod-web", "client", "10.254.199.160:8080", "forward-drop"),
    Scenario("ipt-forward-drop-external-marked", "external", "10.254.199.160:8080", "forward-drop"),
]
NFT_SCENARIOS = [
    Scenario("nft-pod-web", "client", "10.254.199.160:8080"),
    Scenario("nft-node-web-masq", "node", "10.254.199.160:8080"),
    Scenario("nft-hairpin-web2", "web2", "10.254.199.160:8080"),
    Scenario("nft-pod-no-endpoints", "client", "10.254.0.50:80"),
    Scenario("nft-node-no-endpoints", "node", "10.254.0.50:80"),
    Scenario("nft-pod-dns-udp", "client", "10.254.0.2:53/udp"),
    Scenario("nft-external-web-masq", "external", "10.254.199.160:8080"),
    Scenario("nft-pod-wrong-port", "client", "10.254.199.160:9999"),
]


def _split(service: str) -> tuple[str, int, str]:
    body, _, proto = service.partition("/")
    address, _, port = body.rpartition(":")
    return address, int(port), proto or "tcp"


def check(cluster: Cluster, scenario: Scenario) -> None:
    snapshot = cluster.use(scenario.variant)
    predicted = kpctl("--snapshot", snapshot, "trace", scenario.service, "--from", scenario.origin, "-o", "json")
    assert predicted.exit_code in (0, 1), predicted.stderr
    doc: dict[str, Any] = json.loads(predicted.stdout)
    delivered = [o for o in doc["outcomes"] if o["disposition"] == "DELIVERED"]
    expected_src = {o["server"]: o["final"]["src"] for o in delivered}
    address, port, proto = _split(scenario.service)
    seen: list[str] = []
    for _ in range(scenario.repeat):
        kind, text = cluster.connect(scenario.client, address, port, proto)
        summary = f"{scenario.id}: trace said {doc['disposition']} {sorted(expected_src)}; reality {kind}: {text}"
        if doc["disposition"] == "DELIVERED":
            assert predicted.exit_code == 0, summary
            assert kind == "answer", summary + "\n" + cluster.diagnose(address)
            words = text.split()
            assert len(words) == 2, summary
            server, peer = words[0].replace("_", ":"), words[1]
            assert server in expected_src, summary
            assert peer == expected_src[server], f"{summary}; predicted source {expected_src[server]}"
            seen.append(server)
        elif doc["disposition"] == "DROPPED":
            assert predicted.exit_code == 1, summary
            assert kind == "timeout", summary
        else:
            assert predicted.exit_code == 1, summary
            assert doc["disposition"] in ("REJECTED", "TO_LOCAL_STACK"), summary
            assert kind == "refused", summary
    if scenario.repeat > 1:
        assert len(set(seen)) == 1, f"{scenario.id}: affinity predicted, servers seen {seen}"


@pytest.fixture(scope="class")
def ipvs_node() -> Iterator[Cluster]:
    cluster = Cluster("ipvs")
    yield cluster
    cluster.close()


@pytest.fixture(scope="class")
def iptables_node() -> Iterator[Cluster]:
    cluster = Cluster("iptables")
    yield cluster
    cluster.close()


@pytest.fixture(scope="class")
def nft_node() -> Iterator[Cluster]:
    cluster = Cluster("nftables")
    yield cluster
    cluster.close()


class TestIPVSMode:
    @pytest.mark.parametrize("scenario", IPVS_SCENARIOS, ids=lambda s: s.id)
    def test_trace_matches_traffic(self, ipvs_node: Cluster, scenario: Scenario) -> None:
        check(ipvs_node, scenario)


class TestIptablesMode:
    @pytest.mark.parametrize("scenario", IPTABLES_SCENARIOS, ids=lambda s: s.id)
    def test_trace_matches_traffic(self, iptables_node: Cluster, scenario: Scenario) -> None:
        check(iptables_node, scenario)


class TestNftablesMode:
    @pytest.mark.parametrize("scenario", NFT_SCENARIOS, ids=lambda s: s.id)
    def test_trace_matches_traffic(self, nft_node: Cluster, scenario: Scenario) -> None:
        check(nft_node, scenario)
