"""Issue 7 on the real IPVS kernel: live completion of services and servers, `ipvs list --watch`,
and the Kubernetes names (`--services` with the kubectl JSON fixture) on ipvs list and doctor.

The table is the seed node's (examples/seed-ipvs-node.json) built with ipvsadm, plus one real
server the API no longer lists (172.30.22.66); the fixture lists one ready endpoint
(172.30.22.9) that the table lacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli_helpers import kpctl
from tests.vm.nodes import ipvsadm

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = str(ROOT / "tests" / "unit" / "fixtures" / "k8s" / "services.json")
KPCTL = str(Path(sys.executable).parent / "kpctl")


def build_seed_table() -> None:
    rules = """\
-A -t 10.254.0.1:443 -s rr
-a -t 10.254.0.1:443 -r 192.168.10.10:6443 -m -w 1
-A -t 10.254.0.2:53 -s rr
-a -t 10.254.0.2:53 -r 172.30.78.2:53 -m -w 1
-A -t 10.254.0.2:9153 -s rr
-a -t 10.254.0.2:9153 -r 172.30.78.2:9153 -m -w 1
-A -t 10.254.199.160:8080 -s rr
-a -t 10.254.199.160:8080 -r 172.30.22.4:8080 -m -w 1
-a -t 10.254.199.160:8080 -r 172.30.78.4:8080 -m -w 1
-a -t 10.254.199.160:8080 -r 172.30.22.66:8080 -m -w 1
-A -u 10.254.0.2:53 -s rr
-a -u 10.254.0.2:53 -r 172.30.78.2:53 -m -w 1
"""
    ipvsadm("-R", input=rules)


def complete(line: str) -> list[str]:
    """What bash gets for LINE from a real kpctl process run as root (the live lookup)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "_KPCTL_COMPLETE": "bash_complete", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "COMP_WORDS": line, "COMP_CWORD": "0",
           # a Python start plus `import pyroute2` take seconds in this emulated VM
           "KPCTL_COMPLETE_BUDGET": "120"}
    proc = subprocess.run([KPCTL], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [entry.split(",", 1)[1] for entry in proc.stdout.splitlines() if entry]


def test_completion_offers_live_services_and_servers() -> None:
    build_seed_table()
    assert complete("kpctl ipvs delete 10.254.0.2:") == ["53/tcp", "9153/tcp", "53/udp"]
    servers = complete("kpctl ipvs delete-server 10.254.199.160:8080 172.30.")
    assert sorted(servers) == ["172.30.22.4:8080", "172.30.22.66:8080", "172.30.78.4:8080"]
    assert complete("kpctl ipvs add 10.254.0.9:80 -s w") == ["wrr", "wlc"]


def test_watch_repeats_plain_listings_with_fresh_counts() -> None:
    build_seed_table()
    out = kpctl("ipvs", "list", "--watch", "0.2", "--count", "3", "-o", "plain", "--no-headers")
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 * 7  # 7 rows per refresh (6 services, web has 3 servers)
    assert lines[:7] == lines[7:14]


def test_ipvs_list_with_kubernetes_names() -> None:
    build_seed_table()
    out = kpctl("ipvs", "list", "--services", FIXTURE, "-o", "plain")
    assert out.exit_code == 0, out.stderr
    print(out.stdout)  # the closing note's annotated listing
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert rows[0][:6] == ["SERVICE", "K8S SERVICE", "SCHEDULER", "FLAGS", "SERVER", "POD"]
    by_server = {(r[0], r[4]): (r[1], r[5]) for r in rows[1:]}
    assert by_server[("10.254.0.2:53/udp", "172.30.78.2:53")] == ("kube-system/kube-dns:dns",
                                                                   "kube-system/coredns-5d78c9869d-x7k2p")
    assert by_server[("10.254.199.160:8080/tcp", "172.30.22.66:8080")] == ("shop/web:http", "-")
    doc = json.loads(kpctl("ipvs", "list", "--services", FIXTURE, "-o", "json").stdout)
    assert {s["k8s_service"] for s in doc["services"]} >= {"default/kubernetes:https", "shop/web:http"}


def test_doctor_with_kubernetes_names_finds_stale_and_missing() -> None:
    build_seed_table()
    out = kpctl("doctor", "--services", FIXTURE, "--check", "k8s-server-stale", "--check", "k8s-endpoint-missing",
                "-o", "json")
    assert out.exit_code == 1, out.stderr
    findings = {(f["check"], f["subject"]) for f in json.loads(out.stdout)["findings"]}
    assert ("k8s-server-stale", "10.254.199.160:8080/tcp -> 172.30.22.66:8080") in findings
    assert ("k8s-endpoint-missing", "10.254.199.160:8080/tcp -> 172.30.22.9:8080") in findings
