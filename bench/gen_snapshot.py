"""Big kpctl snapshots for the trace benchmark, grown from the checked-in example nodes.

  python bench/gen_snapshot.py iptables N ENDPOINTS OUT.json [RULES_OUT]
      examples/iptables-node.json plus N services × ENDPOINTS endpoints written the way
      kube-proxy's iptables mode writes them (KUBE-SERVICES → KUBE-SVC-… → KUBE-SEP-…, about
      11 rules per 3-endpoint service); RULES_OUT gets the ipv4 rules (iptables-save text) for
      `iptables-restore --test`.
  python bench/gen_snapshot.py ipvs N ENDPOINTS OUT.json [RULES_OUT]
      examples/seed-ipvs-node.json plus N IPVS services (VIPs on kube-ipvs0, KUBE-CLUSTER-IP members).

The service to trace (the last one, so a linear scan sees every rule) is printed on stdout.
"""

from __future__ import annotations

import json
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


def main() -> None:
    mode, services, endpoints, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    snap, rules = (iptables_node if mode == "iptables" else ipvs_node)(services, endpoints)
    Path(out).write_text(json.dumps(snap))
    if len(sys.argv) > 5:
        Path(sys.argv[5]).write_text(rules if rules.endswith("\n") else rules + "\n")
    print(f"{vip(services - 1)}:80")


if __name__ == "__main__":
    main()
