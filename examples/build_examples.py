"""Regenerate the example snapshots in this folder (run: python examples/build_examples.py).

The iptables-save, ipset save and nft -j texts embedded here were produced by the real
tools (iptables-restore/-save 1.8.9, ipset 7.17, nft 1.0.6) inside a throwaway network
namespace, so they are exactly what `kpctl snapshot save` records on such a node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SYSCTLS_IPVS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.vs.conntrack": "1",
    "net.ipv4.vs.expire_nodest_conn": "1",
    "net.ipv4.vs.expire_quiescent_template": "1",
    "net.ipv4.conf.all.route_localnet": "0",
    "net.bridge.bridge-nf-call-iptables": "1",
}


def link(name: str, kind: str, state: str, *addresses: str) -> dict[str, Any]:
    return {"name": name, "kind": kind, "state": state, "addresses": list(addresses)}


def local_routes(links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = [{"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "protocol": "kernel",
                                     "scope": "host", "prefsrc": "127.0.0.1"}]
    for item in links:
        for cidr in item["addresses"]:
            address = cidr.split("/")[0]
            if address == "127.0.0.1":
                continue
            routes.append({"type": "local", "dst": address, "dev": item["name"], "protocol": "kernel",
                           "scope": "host", "prefsrc": address})
    return routes


def server(address: str, port: int, weight: int = 1, active: int = 0) -> dict[str, Any]:
    return {"address": address, "port": port, "family": "inet", "forward": "masq", "weight": weight,
            "active_conns": active}


def service(protocol: str, address: str, port: int, servers: list[dict[str, Any]], scheduler: str = "rr",
            **extra: Any) -> dict[str, Any]:
    return {"family": "inet", "protocol": protocol, "address": address, "port": port, "fwmark": 0,
            "scheduler": scheduler, "flags": 2, "timeout": 0, "netmask": 0xFFFFFFFF, "servers": servers, **extra}


def snapshot(**sections: Any) -> dict[str, Any]:
    return {"format": "kpctl-snapshot", "version": 1, **sections}


def write(name: str, document: dict[str, Any]) -> None:
    (HERE / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read(name: str) -> str:
    return (HERE / "sources" / name).read_text(encoding="utf-8")


def seed_ipvs_node() -> dict[str, Any]:
    """The node of the seed article (kube-proxy-explained.zh.txt): IPVS mode, clusterCIDR 172.30.0.0/16,
    masqueradeAll=false.  The article prints the apiserver endpoint as `master:6443`; its address is not
    shown, so 192.168.10.10 stands in for it.  This node holds the pod network 172.30.22.0/24
    (flannel: cni0 bridge, vxlan flannel.1 to 172.30.78.0/24 on the other node)."""
    links = [
        link("lo", "", "UP", "127.0.0.1/8"),
        link("eth0", "", "UP", "192.168.10.11/24"),
        link("flannel.1", "vxlan", "UP", "172.30.22.0/32"),
        link("cni0", "bridge", "UP", "172.30.22.1/24"),
        link("kube-ipvs0", "dummy", "DOWN", "10.254.0.1/32", "10.254.0.2/32", "10.254.199.160/32"),
    ]
    return snapshot(
        created="2020-03-06T08:00:00Z", hostname="node1", kernel="4.19.0-8-amd64",
        mode="ipvs", cluster_cidr="172.30.0.0/16",
        comment="The IPVS-mode node of the seed article kube-proxy-explained.zh.txt",
        ipvs={
            "info": {"version": "1.2.1", "conn_table_size": 4096},
            "timeouts": {"tcp": 900, "tcp_fin": 120, "udp": 300},
            "services": [
                service("tcp", "10.254.0.1", 443, [server("192.168.10.10", 6443, active=1)]),
                service("tcp", "10.254.0.2", 53, [server("172.30.78.2", 53)]),
                service("tcp", "10.254.0.2", 9153, [server("172.30.78.2", 9153)]),
                service("tcp", "10.254.199.160", 8080, [server("172.30.22.4", 8080), server("172.30.78.4", 8080)]),
                service("udp", "10.254.0.2", 53, [server("172.30.78.2", 53)]),
            ],
            # /proc/net/ip_vs_conn: a pod's connection to the apiserver (the active one of 10.254.0.1:443)
            "connections": read("seed.ip_vs_conn"),
        },
        ipsets=read("seed.ipset"),
        iptables={"ipv4": {"nft": read("seed.rules"), "legacy": None}, "ipv6": {"nft": None, "legacy": None}},
        nftables=None,
        links=links,
        routes={
            "local": local_routes(links),
            "main": [
                {"dst": "default", "gateway": "192.168.10.1", "dev": "eth0", "protocol": "static"},
                {"dst": "192.168.10.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link",
                 "prefsrc": "192.168.10.11"},
                {"dst": "172.30.22.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link",
                 "prefsrc": "172.30.22.1"},
                {"dst": "172.30.78.0/24", "gateway": "172.30.78.0", "dev": "flannel.1", "flags": ["onlink"]},
            ],
        },
        sysctls=SYSCTLS_IPVS,
        modules=["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack", "xt_set", "ip_set",
                 "ip_set_hash_ipport", "ip_set_hash_ipportip"],
    )


def iptables_node() -> dict[str, Any]:
    """An iptables-mode node (kube-proxy >= 1.27 layout): same service addresses as the seed,
    clusterCIDR 172.30.0.0/16, this node holds 172.30.1.0/24; web (3 endpoints, ClientIP
    affinity), kube-dns, kubernetes, a service without endpoints (10.254.0.50:80)."""
    links = [
        link("lo", "", "UP", "127.0.0.1/8"),
        link("eth0", "", "UP", "10.0.0.11/24"),
        link("cni0", "bridge", "UP", "172.30.1.1/24"),
    ]
    return snapshot(
        created="2024-05-01T10:00:00Z", hostname="node-ipt", kernel="6.1.0-21-amd64",
        mode="iptables", cluster_cidr="172.30.0.0/16",
        comment="kube-proxy iptables mode; rules as kube-proxy 1.29 writes them",
        ipvs=None, ipsets=None,
        iptables={"ipv4": {"nft": read("iptables.rules"), "legacy": None}, "ipv6": {"nft": None, "legacy": None}},
        nftables=None, links=links,
        routes={"local": local_routes(links), "main": [
            {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0"},
            {"dst": "10.0.0.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "10.0.0.11"},
            {"dst": "172.30.1.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link", "prefsrc": "172.30.1.1"},
            {"dst": "172.30.2.0/24", "gateway": "10.0.0.12", "dev": "eth0"},
        ]},
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        modules=["nf_conntrack", "xt_statistic", "xt_recent", "xt_comment", "xt_addrtype", "xt_mark"],
    )


def nftables_node() -> dict[str, Any]:
    """An nftables-mode node (kube-proxy >= 1.31 `ip kube-proxy` table): clusterCIDR 10.244.0.0/16,
    service CIDR 10.96.0.0/16; web has 3 endpoints (numgen random mod 3), sticky has ClientIP
    affinity, empty has no endpoints (reject)."""
    links = [
        link("lo", "", "UP", "127.0.0.1/8"),
        link("eth0", "", "UP", "192.168.56.11/24"),
        link("cni0", "bridge", "UP", "10.244.1.1/24"),
    ]
    return snapshot(
        created="2024-09-01T10:00:00Z", hostname="node-nft", kernel="6.1.0-21-amd64",
        mode="nftables", cluster_cidr="10.244.0.0/16",
        comment="kube-proxy nftables mode",
        ipvs=None, ipsets=None, iptables=None,
        nftables=json.loads(read("nftables.json")), links=links,
        routes={"local": local_routes(links), "main": [
            {"dst": "default", "gateway": "192.168.56.1", "dev": "eth0"},
            {"dst": "192.168.56.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link",
             "prefsrc": "192.168.56.11"},
            {"dst": "10.244.1.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link", "prefsrc": "10.244.1.1"},
            {"dst": "10.244.2.0/24", "gateway": "192.168.56.12", "dev": "eth0"},
        ]},
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        modules=["nf_tables", "nf_conntrack", "br_netfilter", "nft_numgen", "nft_fib_ipv4", "nft_reject_ipv4"],
    )


def userspace_node() -> dict[str, Any]:
    """A userspace-mode node with the seed article's example: service 1.2.3.4:8888, kube-proxy
    listening on 32890 (REDIRECT for pods, DNAT to the node address for the node itself)."""
    links = [
        link("lo", "", "UP", "127.0.0.1/8"),
        link("eth0", "", "UP", "192.168.1.21/24"),
        link("cni0", "bridge", "UP", "10.1.0.1/24"),
    ]
    return snapshot(
        created="2016-01-01T10:00:00Z", hostname="node-us", kernel="4.4.0-21-generic",
        mode="userspace", cluster_cidr="10.1.0.0/16",
        comment="kube-proxy userspace mode, the seed article's 1.2.3.4:8888 example",
        ipvs=None, ipsets=None, nftables=None,
        iptables={"ipv4": {"nft": None, "legacy": read("userspace.rules")}, "ipv6": {"nft": None, "legacy": None}},
        links=links,
        routes={"local": local_routes(links), "main": [
            {"dst": "default", "gateway": "192.168.1.1", "dev": "eth0"},
            {"dst": "192.168.1.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "192.168.1.21"},
            {"dst": "10.1.0.0/24", "dev": "cni0", "protocol": "kernel", "scope": "link", "prefsrc": "10.1.0.1"},
        ]},
        sysctls={"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        modules=["nf_conntrack", "xt_REDIRECT", "xt_addrtype"],
    )


if __name__ == "__main__":
    write("seed-ipvs-node.json", seed_ipvs_node())
    write("iptables-node.json", iptables_node())
    write("nftables-node.json", nftables_node())
    write("userspace-node.json", userspace_node())
