"""Counters, connections, timeouts and sync daemons, with real traffic through the VM's IPVS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import kpctl
from tests.vm.ipvs_tables import ok, refused
from tests.vm.nodes import Node, Pod, sh

Ipvsadm = Callable[..., str]
VIP = "10.254.0.1"


@pytest.fixture
def served(node: Node, ipvsadm: Ipvsadm) -> Iterator[tuple[Node, Pod]]:
    """A service VIP:80 added by kpctl, two pod servers, one client pod; traffic has flowed."""
    web1 = node.add_pod("172.30.22.4", name="kpctl-web-1")
    web2 = node.add_pod("172.30.78.4", name="kpctl-web-2")
    client = node.add_pod("172.30.78.9", name="kpctl-client")
    web1.serve(8080)
    web2.serve(8080)
    node.add_vip(VIP)
    ok("ipvs", "add", f"{VIP}:80", "-s", "rr")
    ok("ipvs", "add-server", f"{VIP}:80", "172.30.22.4:8080", "-m")
    ok("ipvs", "add-server", f"{VIP}:80", "172.30.78.4:8080", "-m", "-w", "2")
    answers = {client.request(VIP, 80).split()[0] for _ in range(4)}
    assert answers == {"kpctl-web-1", "kpctl-web-2"}
    yield node, client


def stable_compare(kpctl_args: list[str], ipvsadm_args: list[str], ipvsadm: Ipvsadm, tries: int = 6) -> None:
    """Outputs with live values (rates, expiry seconds) can tick between two reads: compare when the
    reference gives the same text just before and just after kpctl."""
    last = ""
    for _ in range(tries):
        before = ipvsadm(*ipvsadm_args)
        got = ok(*kpctl_args).stdout
        after = ipvsadm(*ipvsadm_args)
        if before == after:
            assert got == before, f"--- ipvsadm {' '.join(ipvsadm_args)}\n{before}--- kpctl\n{got}"
            return
        last = f"{before}\n{after}"
        time.sleep(0.3)
    pytest.fail(f"ipvsadm {' '.join(ipvsadm_args)} never stable:\n{last}")


def expiry_seconds(line: str) -> int:
    minutes, seconds = line.split()[1].split(":")
    return int(minutes) * 60 + int(seconds)


def test_counters_and_rates_after_traffic_equal_ipvsadm(served: tuple[Node, Pod], ipvsadm: Ipvsadm) -> None:
    for flags in (["--stats"], ["--stats", "--exact"], ["--rate"], ["--rate", "--exact"], []):
        stable_compare(["ipvs", "list", "-o", "ipvsadm", *flags], ["-Ln", *flags], ipvsadm)
    # the kernel folds its per-CPU counters into what it reports every 2 s: poll a little
    for _ in range(10):
        (service,) = json.loads(ok("ipvs", "list", "-o", "json").stdout)["services"]
        if service["stats"]["conns"] >= 4:
            break
        time.sleep(1)
    assert service["stats"]["conns"] >= 4  # a probe may retry
    assert sum(server["stats"]["conns"] for server in service["servers"]) == service["stats"]["conns"]
    assert service["stats"]["inbytes"] > 0 and service["stats"]["outpkts"] > 0


def settle(ipvsadm: Ipvsadm, seconds: int = 15) -> None:
    """Wait until the counters stop moving (closing handshakes of the probes arrive late here)."""
    previous = ipvsadm("-Ln", "--stats", "--exact")
    for _ in range(seconds):
        time.sleep(1)
        current = ipvsadm("-Ln", "--stats", "--exact")
        if current == previous:
            return
        previous = current


def test_zero_one_service_and_all(served: tuple[Node, Pod], ipvsadm: Ipvsadm) -> None:
    ipvsadm("-A", "-t", "10.254.0.2:80")
    settle(ipvsadm)
    ok("ipvs", "zero", f"{VIP}:80")
    assert json.loads(ok("ipvs", "list", "-o", "json").stdout)["services"][0]["stats"]["conns"] == 0
    served[1].request(VIP, 80)
    # packets always count (a connection may not: IPVS can reuse a TIME_WAIT entry); the kernel folds
    # its per-CPU counters into what it reports every 2 s, so poll a little
    for _ in range(10):
        stats = json.loads(ok("ipvs", "list", f"{VIP}:80", "-o", "json").stdout)["services"][0]["stats"]
        if stats["inpkts"] >= 1:
            break
        time.sleep(1)
    assert stats["inpkts"] >= 1
    settle(ipvsadm)
    ok("ipvs", "zero")
    lines = ipvsadm("-Ln", "--stats", "--exact").splitlines()
    assert all(line.split()[-5:] == ["0"] * 5 for line in lines[3:])


def test_connections_from_proc_equal_ipvsadm_lnc(served: tuple[Node, Pod], ipvsadm: Ipvsadm) -> None:
    # entries of earlier tests outlive them (TIME_WAIT lasts 2 min and no tool flushes the table):
    # check this test's own connections, and compare the whole table with ipvsadm below
    every = json.loads(ok("ipvs", "connections", "-o", "json").stdout)
    conns = [c for c in every if (c["virtual_address"], c["virtual_port"]) == (VIP, 80)]
    assert len(conns) >= 4
    for conn in conns:
        assert (conn["protocol"], conn["client_address"], conn["virtual_address"], conn["virtual_port"]) == (
            "TCP", "172.30.78.9", VIP, 80)
        assert conn["server_address"] in ("172.30.22.4", "172.30.78.4") and conn["server_port"] == 8080
        assert conn["state"] in ("TIME_WAIT", "FIN_WAIT", "CLOSE", "CLOSE_WAIT", "ESTABLISHED", "LAST_ACK")
    # the expiry column ticks every second (and one ipvsadm run takes about that long here):
    # compare everything else byte for byte, and the expiry within a few seconds
    reference = ipvsadm("-Lnc").splitlines()
    mine = ok("ipvs", "connections", "-o", "ipvsadm").stdout.splitlines()
    assert mine[:2] == reference[:2] and len(mine) == len(reference)
    for got, want in zip(mine[2:], reference[2:]):
        assert got[:4] + got[10:] == want[:4] + want[10:], (got, want)
        assert abs(expiry_seconds(got) - expiry_seconds(want)) <= 10, (got, want)
    to_web1 = json.loads(ok("ipvs", "connections", "--server", "172.30.22.4:8080", "-o", "json").stdout)
    assert to_web1 and all(c["server_address"] == "172.30.22.4" for c in to_web1)
    assert json.loads(ok("ipvs", "connections", f"{VIP}:81", "-o", "json").stdout) == []
    from_client = [c for c in every if c["client_address"] == "172.30.78.9"]
    assert len(json.loads(ok("ipvs", "connections", "--client", "172.30.78.9", "-o", "json").stdout)) == len(from_client)


def test_snapshot_records_the_connections(served: tuple[Node, Pod], ipvsadm: Ipvsadm, tmp_path: Path) -> None:
    # a snapshot holds /proc/net/ip_vs_conn's text; read back it lists the connections ipvsadm -Lnc
    # listed around the save (an entry of an earlier test may expire or change state in between)
    def entries(lines: list[str]) -> set[tuple[str, ...]]:
        return {(fields[0], *fields[3:6]) for fields in map(str.split, lines[2:])}  # protocol and endpoints

    path = str(tmp_path / "node.json")
    before = ipvsadm("-Lnc").splitlines()
    ok("snapshot", "save", path)
    after = ipvsadm("-Lnc").splitlines()
    saved = ok("--snapshot", path, "ipvs", "connections", "-o", "ipvsadm").stdout.splitlines()
    assert saved[:2] == before[:2]
    assert entries(after) <= entries(saved) <= entries(before)
    mine = [line for line in saved if f" {VIP}:80 " in line]
    assert len(mine) >= 4 and all(" 172.30.78.9:" in line for line in mine)
    assert json.loads(ok("--snapshot", path, "ipvs", "connections", "--client", "172.30.78.9", "-o", "json").stdout)


def test_timeout_set_and_show(ipvsadm: Ipvsadm) -> None:
    assert ok("ipvs", "timeout", "-o", "ipvsadm").stdout == ipvsadm("-L", "--timeout")
    ok("ipvs", "timeout", "1000", "0", "200")
    assert ipvsadm("-L", "--timeout") == "Timeout (tcp tcpfin udp): 1000 120 200\n"
    assert json.loads(ok("ipvs", "timeout", "-o", "json").stdout) == {"tcp": 1000, "tcp_fin": 120, "udp": 200}
    ipvsadm("--set", "0", "60", "0")
    assert ok("ipvs", "timeout", "-o", "ipvsadm").stdout == "Timeout (tcp tcpfin udp): 1000 60 200\n"


@pytest.fixture
def sync_link() -> Iterator[str]:
    name = "kpsync0"
    sh("ip", "link", "add", name, "type", "dummy")
    try:
        sh("ip", "link", "set", name, "multicast", "on", "up")
        sh("ip", "address", "add", "10.99.0.1/24", "dev", name)
        yield name
    finally:
        sh("sh", "-c", "ipvsadm --stop-daemon master; ipvsadm --stop-daemon backup; true")
        sh("ip", "link", "delete", name, check=False)


def test_daemon_start_list_stop(sync_link: str, ipvsadm: Ipvsadm) -> None:
    assert ok("ipvs", "daemon", "list", "-o", "json").stdout.strip() == "[]"
    ok("ipvs", "daemon", "start", "master", "--mcast-interface", sync_link, "--syncid", "7")
    ok("ipvs", "daemon", "start", "backup", "--mcast-interface", sync_link, "--syncid", "9")
    shown = ipvsadm("-L", "--daemon")
    assert f"master sync daemon (mcast={sync_link}, syncid=7" in shown
    assert f"backup sync daemon (mcast={sync_link}, syncid=9" in shown
    assert ok("ipvs", "daemon", "list", "-o", "ipvsadm").stdout == shown
    daemons = json.loads(ok("ipvs", "daemon", "list", "-o", "json").stdout)
    assert {(d["state"], d["mcast_ifn"], d["syncid"]) for d in daemons} == {("master", sync_link, 7),
                                                                          ("backup", sync_link, 9)}
    out = kpctl("ipvs", "daemon", "start", "master", "--mcast-interface", sync_link)
    assert out.exit_code == 4, out.stderr
    ok("ipvs", "daemon", "stop", "master")
    assert "master" not in ipvsadm("-L", "--daemon")
    refused(3, "ipvs", "daemon", "stop", "master", naming="master")
    ok("ipvs", "daemon", "stop", "backup")
    assert ipvsadm("-L", "--daemon") == ""


def test_daemon_started_by_ipvsadm_is_listed(sync_link: str, ipvsadm: Ipvsadm) -> None:
    ipvsadm("--start-daemon", "backup", "--mcast-interface", sync_link, "--syncid", "3")
    assert ok("ipvs", "daemon", "list", "-o", "ipvsadm").stdout == ipvsadm("-L", "--daemon")


def test_daemon_on_a_missing_interface_exits_3_or_2() -> None:
    outcome = kpctl("ipvs", "daemon", "start", "master", "--mcast-interface", "nosuchif0")
    assert outcome.exit_code in (2, 3), outcome.stderr
    assert "nosuchif0" in outcome.stderr
