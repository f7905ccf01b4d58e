"""`kpctl services` against real traffic: on an IPVS-, an iptables- and an nftables-mode node
with pods (the nodes of test_trace_vm), every service address lists exactly the endpoints that
real connections reach, live and from a snapshot of the node; services without endpoints
refuse connections as the listing says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli_helpers import kpctl
from tests.vm.test_trace_vm import Cluster

TRIES = 16  # random 1/2 choices: the chance of missing one of two endpoints in 16 tries is 3e-5


def _services(*args: str) -> dict[str, Any]:
    out = kpctl(*args, "services", "-o", "json")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _sticky(service: dict[str, Any]) -> bool:
    """One client keeps one endpoint: session affinity, persistence, or IPVS source hashing."""
    return bool(service["affinity_timeout"]) or service["scheduler"] == "sh"


def _answer(cluster: Cluster, service: dict[str, Any]) -> str:
    """The server that answers one connection from the client pod. The connection is made at
    once; the answer is the server's fork+exec of `echo`, which in the emulated VM on a loaded
    host took more than Cluster.connect's 10 s (connections seen ASSURED, no answer): wait longer."""
    host = f"[{service['address']}]" if ":" in service["address"] else service["address"]
    target = (f"TCP:{host}:{service['port']},connect-timeout=10" if service["protocol"] == "tcp"
              else f"UDP:{host}:{service['port']}")
    last = ""
    for _ in range(4):
        proc = cluster.pods["client"].exec("socat", "-T60", "-t60", "-", target, input="ping\n", check=False,
                                           timeout=150)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.split()[0].replace("_", ":")
        last = proc.stderr.strip()
    raise AssertionError(f"{service['service']}: no answer ({last})\n{cluster.diagnose(service['address'])}")


def _reached(cluster: Cluster, service: dict[str, Any], expected: set[str]) -> set[str]:
    """The servers connections from the client pod reach (stops once all expected were seen)."""
    seen: set[str] = set()
    for _ in range(TRIES):
        seen.add(_answer(cluster, service))
        if _sticky(service) or seen >= expected:
            break
    return seen


def _check(cluster: Cluster, mode: str) -> None:
    snapshot = cluster.use("base")
    live = _services()
    saved = _services("--snapshot", snapshot)
    assert live["active_mode"] == mode and live["read"] == [mode], live["reason"]
    assert live["services"] == saved["services"]
    assert live["services"], "no service read"
    for service in live["services"]:
        endpoints = {f"{e['address']}:{e['port']}" for e in service["endpoints"] if e["chance"] > 0}
        if service["verdict"] != "dnat":
            assert not endpoints, service
            kind, text = cluster.connect("client", service["address"], service["port"], service["protocol"])
            assert kind == ("refused" if service["verdict"] == "reject" else "timeout"), (service["service"], text)
            continue
        reached = _reached(cluster, service, endpoints)
        if _sticky(service):
            assert reached <= endpoints and len(reached) == 1, (service["service"], reached, endpoints)
        else:
            assert reached == endpoints, (service["service"], reached, endpoints)


@pytest.fixture
def mode_node(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster(request.param)
    yield cluster
    cluster.close()


@pytest.mark.parametrize("mode_node", ["ipvs", "iptables", "nftables"], indirect=True)
def test_services_lists_the_endpoints_real_traffic_reaches(mode_node: Cluster) -> None:
    _check(mode_node, mode_node.mode)
