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


# Listens on 127.0.0.1:8081 and :8082, connects to 127.0.0.2:9999: prints the port that accepted.
_WHICH = """
import select, socket
listening = []
for port in (8081, 8082):
    server = socket.socket(); server.bind(("127.0.0.1", port)); server.listen(); listening.append(server)
client = socket.socket(); client.settimeout(1.0); client.connect(("127.0.0.2", 9999))
ready, _, _ = select.select(listening, [], [], 1.0)
print(*[s.getsockname()[1] for s in ready])
"""


@pytest.mark.parametrize(("first", "iptables_proto", "port"), [
    ("nft", "udp", 8082),  # iptables-nft's chain, registered last, runs first and translates nothing: nft's turn
    ("iptables", "tcp", 8082),  # both translate: the chain registered last (nft's) runs first and binds
    ("nft", "tcp", 8081),
])
def test_nat_chains_of_one_hook_run_as_the_kernel_runs_them(netns: str, first: str, iptables_proto: str,
                                                             port: int) -> None:
    """An iptables-nft nat OUTPUT chain and an nft nat chain of the same priority (-100): the kernel
    consults them in turn until one translates (nf_nat_inet_fn), the one whose hook was registered
    last first (nf_hook_entries_grow); the trace walks them so."""
    def iptables() -> None:
        run_in(netns, "iptables-nft", "-t", "nat", "-A", "OUTPUT", "-d", "127.0.0.2", "-p", iptables_proto,
               "--dport", "9999", "-j", "DNAT", "--to-destination", "127.0.0.1:8081")

    def nft() -> None:
        run_in(netns, "nft", "-f", "-", input=(
            "table ip svc {\n chain out {\n  type nat hook output priority -100; policy accept;\n"
            "  ip daddr 127.0.0.2 tcp dport 9999 dnat to 127.0.0.1:8082\n }\n}\n"))

    for make in ((nft, iptables) if first == "nft" else (iptables, nft)):
        make()
    assert run_in(netns, "python3", "-c", _WHICH).stdout.split() == [str(port)]
    outcome = kpctl("--netns", netns, "trace", "127.0.0.2:9999", "-o", "json")
    assert outcome.stderr == ""
    outcomes = json.loads(outcome.stdout)["outcomes"]
    assert [(o["disposition"], o["final"]["dst"], o["final"]["dport"]) for o in outcomes] == [
        ("DELIVERED", "127.0.0.1", port)]
