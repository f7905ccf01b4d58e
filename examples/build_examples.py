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
        link("lo", "", "UNKNOWN", "127.0.0.1/8"),
        link("eth0", "", "UP", "192.168.10.11/24"),
        link("flannel.1", "vxlan", "UNKNOWN", "172.30.22.0/32"),
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


if __name__ == "__main__":
    write("seed-ipvs-node.json", seed_ipvs_node())
