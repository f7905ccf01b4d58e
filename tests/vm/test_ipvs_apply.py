"""`kpctl ipvs apply|diff` against the real IPVS kernel: drain with a real TCP connection, no write when
nothing changes, files of ipvsadm -Sn and kpctl list -o yaml applied exactly, rollback part way."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from collections.abc import Callable

from kpctl.backends.ipvs_netlink import IPVSNetlink
from tests.cli_helpers import kpctl
from tests.vm.ipvs_tables import blocked_module, ok
from tests.vm.nodes import Node, Server, _wait_listening

Ipvsadm = Callable[..., str]

VIP = "10.254.0.1"
WEB1, WEB2 = "172.30.22.4", "172.30.22.5"


def _echo_server(node: Node, ip: str) -> None:
    """A pod at ``ip`` whose port 8080 echoes every line back on the same connection (it stays open)."""
    pod = node.add_pod(ip)
    process = subprocess.Popen(["ip", "netns", "exec", pod.name, "socat", "TCP-LISTEN:8080,fork,reuseaddr", "EXEC:cat"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pod.servers.append(Server(process))
    _wait_listening(pod.name, 8080, "tcp")


def _echo(sock: socket.socket, text: str) -> str:
    sock.sendall(text.encode() + b"\n")
    received = b""
    while not received.endswith(b"\n"):
        chunk = sock.recv(100)
        assert chunk, "the connection was closed"
        received += chunk
    return received.decode().strip()


def test_apply_drains_a_removed_server_while_its_connection_lives_then_deletes_it(node: Node, ipvsadm: Ipvsadm) -> None:
    _echo_server(node, WEB1)
    _echo_server(node, WEB2)
    node.add_vip(VIP)
    ipvsadm("-R", input=f"-A -t {VIP}:443 -s rr\n-a -t {VIP}:443 -r {WEB1}:8080 -m -w 1\n")
    sock = socket.create_connection((VIP, 443), timeout=30)
    assert _echo(sock, "hello") == "hello"
    desired = f"-A -t {VIP}:443 -s rr\n-a -t {VIP}:443 -r {WEB2}:8080 -m -w 1\n"

    outcome = kpctl("ipvs", "apply", "-", "--drain-timeout", "600", input=desired)
    assert outcome.exit_code == 0, outcome.stderr
    assert "draining" in outcome.stderr and WEB1 in outcome.stderr
    assert ipvsadm("-Sn") == (f"-A -t {VIP}:443 -s rr\n-a -t {VIP}:443 -r {WEB1}:8080 -m -w 0\n"
                              f"-a -t {VIP}:443 -r {WEB2}:8080 -m -w 1\n")
    assert _echo(sock, "still there") == "still there"  # weight 0 stops new connections only

    writes = IPVSNetlink.write_requests
    again = kpctl("ipvs", "apply", "-", "--drain-timeout", "600", input=desired)
    assert again.exit_code == 0 and "draining" in again.stderr
    assert IPVSNetlink.write_requests == writes  # still busy: the drained server gets no new write
    assert _echo(sock, "and again") == "and again"

    # Close with a reset: IPVS keeps the entry for the CLOSE state's 10 s, not TIME_WAIT's 2 min.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    started = time.monotonic()
    ok("ipvs", "apply", "-", "--drain-timeout", "600", "--wait", input=desired)
    assert time.monotonic() - started < 300  # deleted when idle, long before the timeout
    assert ipvsadm("-Sn") == desired


def test_apply_without_drain_timeout_removes_a_busy_server_at_once(node: Node, ipvsadm: Ipvsadm) -> None:
    _echo_server(node, WEB1)
    node.add_vip(VIP)
    ipvsadm("-R", input=f"-A -t {VIP}:443 -s rr\n-a -t {VIP}:443 -r {WEB1}:8080 -m -w 1\n")
    sock = socket.create_connection((VIP, 443), timeout=30)
    try:
        assert _echo(sock, "hello") == "hello"
        ok("ipvs", "apply", "-", input=f"-A -t {VIP}:443 -s rr\n")
        assert ipvsadm("-Sn") == f"-A -t {VIP}:443 -s rr\n"
    finally:
        sock.close()


TABLE = (
    "-A -t 10.254.0.1:443 -s rr\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 1\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n"
    "-A -u 10.254.0.10:53 -s wrr -p 300\n"
    "-a -u 10.254.0.10:53 -r 172.30.1.8:53 -m -w 1\n"
    "-A -f 100 -s sh -b sh-port\n"
    "-a -f 100 -r 10.0.0.7:0 -i -w 3 --tun-type ipip\n"
    "-A -t [2001:db8::10]:80 -s lc\n"
    "-a -t [2001:db8::10]:80 -r [2001:db8::20]:8080 -m -w 1\n"
)
OTHER = (
    "-A -t 10.254.0.1:443 -s lc\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 7\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.9:6443 -m -w 1\n"
    "-A -t 10.254.0.99:80 -s wlc\n"
    "-a -t 10.254.0.99:80 -r 172.30.9.9:80 -m -w 1\n"
)


def test_apply_of_ipvsadm_and_yaml_files_leaves_exactly_the_file(ipvsadm: Ipvsadm, tmp_path: object) -> None:
    ipvsadm("-R", input=TABLE)
    saved = ipvsadm("-Sn")
    as_yaml = ok("ipvs", "list", "-o", "yaml").stdout
    for desired in (saved, as_yaml):
        ipvsadm("-C")
        ipvsadm("-R", input=OTHER)
        assert kpctl("ipvs", "diff", "-", input=desired).exit_code == 1
        ok("ipvs", "apply", "-", input=desired)
        assert ipvsadm("-Sn") == saved
        assert kpctl("ipvs", "diff", "-", input=desired).exit_code == 0


def test_apply_with_no_change_writes_nothing_and_counters_survive(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-R", input=TABLE)
    saved = ipvsadm("-Sn")
    stats = ipvsadm("-Ln", "--stats")
    writes = IPVSNetlink.write_requests
    ok("ipvs", "apply", "-", input=saved)
    ok("ipvs", "apply", "-", "--drain-timeout", "30", input=ok("ipvs", "list", "-o", "json").stdout)
    assert IPVSNetlink.write_requests == writes
    assert ipvsadm("-Ln", "--stats") == stats


def test_apply_of_a_weight_change_edits_that_server_only(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-R", input=TABLE)
    wanted = ipvsadm("-Sn").replace("6443 -m -w 2", "6443 -m -w 9")
    writes = IPVSNetlink.write_requests
    ok("ipvs", "apply", "-", input=wanted)
    assert IPVSNetlink.write_requests == writes + 1
    assert ipvsadm("-Sn") == wanted


def test_a_kernel_failure_part_way_leaves_the_table_as_before(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-R", input=TABLE)
    before = ipvsadm("-Sn")
    desired = OTHER + "-A -t 10.254.0.3:80 -s ovf\n-a -t 10.254.0.3:80 -r 172.30.3.1:80 -m -w 1\n"
    with blocked_module("ip_vs_ovf"):
        outcome = kpctl("ipvs", "apply", "-", input=desired)
    assert outcome.exit_code == 6 and "ovf" in outcome.stderr, outcome.stderr
    assert ipvsadm("-Sn") == before
