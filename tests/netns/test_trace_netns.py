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
