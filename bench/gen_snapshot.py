"""Big kpctl snapshots for the trace benchmark, grown from the checked-in example nodes.

  python bench/gen_snapshot.py iptables N ENDPOINTS OUT.json [RULES_OUT]
      examples/iptables-node.json plus N services × ENDPOINTS endpoints written the way
      kube-proxy's iptables mode writes them (KUBE-SERVICES → KUBE-SVC-… → KUBE-SEP-…, about
      11 rules per 3-endpoint service); RULES_OUT gets the ipv4 rules (iptables-save text) for
      `iptables-restore --test`.
  python bench/gen_snapshot.py ipvs N ENDPOINTS OUT.json [RULES_OUT]
      examples/seed-ipvs-node.json plus N IPVS services (VIPs on kube-ipvs0, KUBE-CLUSTER-IP members).
  python bench/gen_snapshot.py nftables N ENDPOINTS OUT.json [RULES_OUT]
      examples/nftables-node.json plus N services written the way kube-proxy's nftables mode
      writes them into `table ip kube-proxy` (pkg/proxy/nftables/proxier.go): an element of the
      `cluster-ips` set and of the `service-ips` verdict map per service, a
      `service-HASH-bench/svc-I/tcp/http` chain (masquerade check, `numgen random mod E vmap`)
      and per endpoint an `endpoint-HASH-…__IP/8080` chain (masquerade check, dnat); every
      100th service (I % 100 == 50) has no endpoints and is rejected through
      `no-endpoint-services`.  RULES_OUT gets the table as nft syntax (kpctl's `-o save`) for
      `nft -c -f`.

The service to trace (the last one, so a linear scan sees every rule) is printed on stdout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def vip(i: int) -> str:
    return f"10.100.{(i >> 8) & 255}.{i & 255}" if i < 65536 else f"10.101.{(i >> 8) & 255}.{i & 255}"


def pod(n: int) -> str:
    return f"172.30.{100 + (n >> 8) % 150}.{n & 255}"


def grow_nat(text: str, services: int, endpoints: int) -> str:
    lines = text.split("\n")
    nat = lines.index("*nat")
    commit = lines.index("COMMIT", nat)
    chains: list[str] = []
    portals: list[str] = []
    rules: list[str] = []
    for i in range(services):
        name = f"bench/svc-{i}:http"
        svc = f"KUBE-SVC-BENCH{i:011d}"
        chains.append(f":{svc} - [0:0]")
        portals.append(f'-A KUBE-SERVICES -d {vip(i)}/32 -p tcp -m comment --comment "{name} cluster IP"'
                       f" -m tcp --dport 80 -j {svc}")
        rules.append(f'-A {svc} ! -s 172.30.0.0/16 -d {vip(i)}/32 -p tcp -m comment --comment "{name} cluster IP"'
                     f" -m tcp --dport 80 -j KUBE-MARK-MASQ")
        for j in range(endpoints):
            ep = pod(i * endpoints + j)
            sep = f"KUBE-SEP-BENCH{i:08d}{j:03d}"
            chains.append(f":{sep} - [0:0]")
            left = endpoints - j
            stat = f" -m statistic --mode random --probability {1 / left:.11f}" if left > 1 else ""
            rules.append(f'-A {svc} -m comment --comment "{name} -> {ep}:8080"{stat} -j {sep}')
            rules.append(f'-A {sep} -s {ep}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
            rules.append(f'-A {sep} -p tcp -m comment --comment "{name}" -m tcp -j DNAT --to-destination {ep}:8080')
    # KUBE-SERVICES portals go before its last rule (the nodeports one), chains after the declarations.
    body = lines[nat + 1:commit]
    last_decl = max(k for k, line in enumerate(body) if line.startswith(":"))
    nodeports = next(k for k, line in enumerate(body) if line.startswith("-A KUBE-SERVICES") and "nodeports" in line)
    new_body = (body[:last_decl + 1] + chains + body[last_decl + 1:nodeports] + portals
                + body[nodeports:] + rules)
    return "\n".join(lines[:nat + 1] + new_body + lines[commit:])


def iptables_node(services: int, endpoints: int) -> tuple[dict, str]:
    snap = json.loads((EXAMPLES / "iptables-node.json").read_text())
    v4 = snap["iptables"]["ipv4"]
    key = "nft" if v4.get("nft") else "legacy"
    v4[key] = grow_nat(v4[key], services, endpoints)
    return snap, v4[key]


def ipvs_node(services: int, endpoints: int) -> tuple[dict, str]:
    snap = json.loads((EXAMPLES / "seed-ipvs-node.json").read_text())
    link = next(link for link in snap["links"] if link["name"] == "kube-ipvs0")
    members = []
    for i in range(services):
        addr = vip(i)
        servers = [{"address": pod(i * endpoints + j), "port": 8080, "family": "inet", "forward": "masq",
                    "weight": 1} for j in range(endpoints)]
        snap["ipvs"]["services"].append({"family": "inet", "protocol": "tcp", "address": addr, "port": 80,
                                         "fwmark": 0, "scheduler": "rr", "flags": 0, "timeout": 0,
                                         "netmask": 4294967295, "servers": servers})
        link["addresses"].append(f"{addr}/32")
        snap["routes"]["local"].append({"type": "local", "dst": addr, "dev": "kube-ipvs0", "protocol": "kernel",
                                        "scope": "host", "prefsrc": addr})
        members.append(f"add KUBE-CLUSTER-IP {addr},tcp:80")
    text = snap["ipsets"]
    marker = "\ncreate KUBE-LOOP-BACK"
    cut = text.index(marker)
    snap["ipsets"] = text[:cut] + "\n" + "\n".join(members) + text[cut:]
    v4 = snap["iptables"]["ipv4"]
    return snap, v4.get("nft") or v4.get("legacy") or ""


def nft_vip(i: int) -> str:
    """Service ``i``'s address, in the upper half of the example's 10.96.0.0/16 service range (the
    example's own services are in the lower half): 32,768 services at most."""
    if not 0 <= i < 32768:
        raise ValueError(f"an nftables node of this generator holds at most 32,768 services (asked for #{i})")
    return f"10.96.{128 + (i >> 8)}.{i & 255}"


def nft_pod(n: int) -> str:
    return f"10.244.{10 + (n >> 8) % 246}.{n & 255}"  # in the cluster's 10.244.0.0/16 (repeating past 62,976, as pod())


def _hash(text: str) -> str:
    """kube-proxy's chain-name hash: the first 8 base32 characters of SHA-256."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]


def _match(left: dict, right: object, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def nftables_node(services: int, endpoints: int) -> tuple[dict, str]:
    snap = json.loads((EXAMPLES / "nftables-node.json").read_text())
    objects = snap["nftables"]["nftables"]
    named = {(kind, o[kind].get("name")): o[kind] for o in objects for kind in o if kind in ("set", "map")}
    cluster_ips, service_ips = named[("set", "cluster-ips")], named[("map", "service-ips")]
    no_endpoints = named[("map", "no-endpoint-services")]
    handle = max(body.get("handle", 0) for o in objects for body in o.values())
    last_chain = max(k for k, o in enumerate(objects) if "chain" in o)
    chains: list[dict] = []
    rules: list[dict] = []
    saddr, daddr = {"payload": {"protocol": "ip", "field": "saddr"}}, {"payload": {"protocol": "ip", "field": "daddr"}}
    base = {"family": "ip", "table": "kube-proxy"}

    def add_chain(name: str) -> None:
        nonlocal handle
        handle += 1
        chains.append({"chain": {**base, "name": name, "handle": handle}})

    def add_rule(chain: str, expr: list) -> None:
        nonlocal handle
        handle += 1
        rules.append({"rule": {**base, "chain": chain, "handle": handle, "expr": expr}})

    for i in range(services):
        name, address = f"bench/svc-{i}/tcp/http", nft_vip(i)
        key = {"concat": [address, "tcp", 80]}
        cluster_ips.setdefault("elem", []).append(address)
        if i % 100 == 50:
            no_endpoints.setdefault("elem", []).append(
                [{"elem": {"val": key, "comment": f"bench/svc-{i}:http"}}, {"goto": {"target": "reject-chain"}}])
            continue
        svc = f"service-{_hash(name)}-{name}"
        add_chain(svc)
        service_ips.setdefault("elem", []).append([key, {"goto": {"target": svc}}])
        add_rule(svc, [_match(daddr, address), _match({"payload": {"protocol": "tcp", "field": "dport"}}, 80),
                       _match(saddr, {"prefix": {"addr": "10.244.0.0", "len": 16}}, "!="),
                       {"jump": {"target": "mark-for-masquerade"}}])
        targets = []
        for j in range(endpoints):
            ep = nft_pod(i * endpoints + j)
            chain = f"endpoint-{_hash(name + ep)}-{name}__{ep}/8080"
            add_chain(chain)
            targets.append([j, {"goto": {"target": chain}}])
            add_rule(chain, [_match(saddr, ep), {"jump": {"target": "mark-for-masquerade"}}])
            add_rule(chain, [_match({"meta": {"key": "l4proto"}}, "tcp"), {"dnat": {"addr": ep, "port": 8080}}])
        if endpoints:
            add_rule(svc, [{"vmap": {"key": {"numgen": {"mode": "random", "mod": endpoints, "offset": 0}},
                                     "data": {"set": targets}}}])
    objects[last_chain + 1:last_chain + 1] = chains
    objects.extend(rules)
    from kpctl.core.nft_syntax import save_text  # the repository's own writer (bench runs from the checkout)

    return snap, save_text(snap["nftables"])


def kubectl_services(mode: str, services: int, endpoints: int) -> dict:
    """What `kubectl get svc,endpointslices -A -o json` says of the services a ``*_node`` generator
    wrote (Service bench/svc-I, port http 80 -> 8080, and its EndpointSlice): for --services."""
    address, endpoint = (nft_vip, nft_pod) if mode == "nftables" else (vip, pod)
    items: list[dict] = []
    for i in range(services):
        name = f"svc-{i}"
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "bench"},
                      "spec": {"type": "ClusterIP", "clusterIP": address(i), "clusterIPs": [address(i)],
                               "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]}})
        live = 0 if mode == "nftables" and i % 100 == 50 else endpoints
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                      "metadata": {"name": f"{name}-b3nch", "namespace": "bench",
                                   "labels": {"kubernetes.io/service-name": name}},
                      "endpoints": [{"addresses": [endpoint(i * endpoints + j)], "nodeName": "node-1",
                                     "conditions": {"ready": True, "serving": True, "terminating": False},
                                     "targetRef": {"kind": "Pod", "namespace": "bench", "name": f"{name}-{j}"}}
                                    for j in range(live)],
                      "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def ipvs_connections(snap: dict, per_server: int) -> dict:
    """A snapshot of ``snap``'s IPVS table with ``per_server`` connections to each of its real
    servers, as /proc/net/ip_vs_conn lists them (what `snapshot save` records; clients that are
    each other's), for `ipvs connections`; its own file, so that the node's other commands do not
    read them.  IPv4 services only (a generated node's are)."""
    def word(address: str) -> str:
        return socket.inet_aton(address).hex().upper()  # the kernel's %08X of the address

    lines = ["Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData"]
    for number, service in enumerate(snap["ipvs"]["services"]):
        virtual = f"{word(service['address'])} {service['port']:04X}"
        for server in service["servers"]:
            real = f"{word(server['address'])} {server['port']:04X}"
            for k in range(per_server):
                client = 0x0B000000 + len(lines) - 1  # 11.x.y.z: every client its own address
                state = "ESTABLISHED" if k % 4 else "TIME_WAIT"
                lines.append(f"{service['protocol'].upper():<3} {client:08X} {32768 + (number + k) % 28000:04X} "
                             f"{virtual} {real} {state:<11} {(number * 7 + k) % 900:7d}")
    ipvs = {key: value for key, value in snap["ipvs"].items() if key != "services"}
    head = {key: snap[key] for key in ("format", "version", "created", "hostname", "kernel", "mode")}
    return {**head, "ipvs": {**ipvs, "services": [], "connections": "\n".join(lines) + "\n"}}


def write(snap: dict[str, object], out: str) -> None:
    """The snapshot as `kpctl snapshot save` writes it (indented): the layout of a node's snapshot,
    written by the repository's own writer."""
    from kpctl.cli.snapshot import write_snapshot
    from kpctl.model.snapshot import NodeSnapshot

    sections = {key: value for key, value in snap.items() if key not in ("format", "version")}
    write_snapshot(NodeSnapshot(version=int(snap["version"]), sections=sections), out)  # type: ignore[call-overload]


def main() -> None:
    mode, services, endpoints, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    build = {"iptables": iptables_node, "ipvs": ipvs_node, "nftables": nftables_node}[mode]
    snap, rules = build(services, endpoints)
    write(snap, out)
    if len(sys.argv) > 5:
        Path(sys.argv[5]).write_text(rules if rules.endswith("\n") else rules + "\n")
    last = services - 1 if mode != "nftables" or services % 100 != 51 else services - 2
    print(f"{nft_vip(last) if mode == 'nftables' else vip(last)}:80")


if __name__ == "__main__":
    main()
