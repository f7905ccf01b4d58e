"""`kpctl trace` live inside a throwaway namespace, against what the kernel does to the same packet:
a TCP connect over loopback in the namespace."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in

# Connects to 127.0.0.1:PORT in the namespace (a socket listens there): prints "connected" or "timeout".
_CONNECT = """
import socket, sys
port = int(sys.argv[1])
server = socket.socket(); server.bind(("127.0.0.1", port)); server.listen()
client = socket.socket(); client.settimeout(1.0)
try:
    client.connect(("127.0.0.1", port)); print("connected")
except socket.timeout:
    print("timeout")
"""


@pytest.mark.parametrize(("options", "kernel", "disposition"), [
    (["--queue-num", "4"], "timeout", "DROPPED"),  # no program listens on queue 4: the kernel drops
    (["--queue-num", "3", "--queue-bypass"], "connected", "TO_LOCAL_STACK"),  # bypass: let through
    (["--queue-balance", "0:3", "--queue-bypass"], "connected", "TO_LOCAL_STACK"),
])
def test_nfqueue_trace_says_what_the_kernel_does(netns: str, options: list[str], kernel: str,
                                                 disposition: str) -> None:
    run_in(netns, "iptables-nft", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", "8081",
           "-j", "NFQUEUE", *options)
    assert run_in(netns, "python3", "-c", _CONNECT, "8081").stdout.strip() == kernel
    outcome = kpctl("--netns", netns, "trace", "127.0.0.1:8081", "-o", "json")
    assert outcome.stderr == ""
    traced = json.loads(outcome.stdout)
    assert [o["disposition"] for o in traced["outcomes"]] == [disposition]


def test_second_nat_chain_of_a_hook_translates_when_the_first_does_not(netns: str) -> None:
    """An iptables-nft nat OUTPUT that translates nothing, and an nft nat chain at the same hook
    that DNATs: the kernel consults both (nf_nat_inet_fn), and the trace walks both."""
    run_in(netns, "iptables-nft", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-j", "DNAT",
           "--to-destination", "127.0.0.9:53")
    run_in(netns, "nft", "-f", "-", input=(
        "table ip svc {\n chain out { type nat hook output priority -100; policy accept;\n"
        "  ip daddr 127.0.0.2 tcp dport 9999 dnat to 127.0.0.1:8081\n }\n}\n"))
    assert run_in(netns, "python3", "-c", _CONNECT.replace('("127.0.0.1", port)); print', '("127.0.0.2", 9999)); print'),
                  "8081").stdout.strip() == "connected"
    outcome = kpctl("--netns", netns, "trace", "127.0.0.2:9999", "-o", "json")
    assert outcome.stderr == ""
    outcomes = json.loads(outcome.stdout)["outcomes"]
    assert [(o["disposition"], o["final"]["dst"], o["final"]["dport"]) for o in outcomes] == [
        ("DELIVERED", "127.0.0.1", 8081)]
