"""Parse /proc/net/ip_vs_conn (what `ipvsadm -Lnc` reads) into Connection values.

The kernel prints one connection per line:
    Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
    TCP 0A000001 D431 0AFE0001 01BB 0A000002 1F90 ESTABLISHED    899
IPv4 addresses are 8 hex digits (host order of the number), IPv6 ones the uncompressed
`%pI6` form (fd00:0000:…); ports are 4 hex digits; a real server may be of the other family.
A busy node has hundreds of thousands of lines, and a snapshot holds the same text (its
``ipvs.connections``): addresses are written as inet_ntop writes them (ipvsadm's text, and
every other listing's) without an ipaddress object, each distinct virtual and real server
address and port (they repeat on every line) is read once and its value shared, as are the
protocols' and states' texts, and a line's Connection is made from its fields in one C call.
"""

from __future__ import annotations

from socket import AF_INET, inet_ntop
from sys import intern

from kpctl.core.address import format_address
from kpctl.model.ipvs import Connection


def parse_conn_address(token: str) -> str:
    """'0A000001' -> '10.0.0.1'; 'fd00:0000:…:0001' -> 'fd00::1'.  ValueError for anything else."""
    if ":" in token:
        return format_address("inet6", token)
    if len(token) != 8:
        raise ValueError(f"not an IPv4 address in hex: {token!r}")
    return inet_ntop(AF_INET, bytes.fromhex(token))


def parse_ip_vs_conn(text: str) -> list[Connection]:
    """Every connection in the text of /proc/net/ip_vs_conn (IPv4 and IPv6 lines alike); the
    header and lines of fewer than nine words are skipped.  ValueError for a bad word."""
    known: dict[str, str] = {}  # virtual and real server tokens read so far (not clients': most are met once)
    ports: dict[str, int] = {}  # and their ports'
    connections: list[Connection] = []
    new, append = tuple.__new__, connections.append
    line = ""
    try:
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 9 or fields[0] == "Pro":
                continue
            proto, caddr, cport, vaddr, vport, daddr, dport, state, expires = fields[:9]
            append(new(Connection, (
                intern(proto),  # as the kernel prints it (TCP, UDP, SCTP), like ipvsadm -Lnc
                parse_conn_address(caddr), int(cport, 16),
                known.get(vaddr) or known.setdefault(vaddr, parse_conn_address(vaddr)),
                ports.get(vport) or ports.setdefault(vport, int(vport, 16)),
                known.get(daddr) or known.setdefault(daddr, parse_conn_address(daddr)),
                ports.get(dport) or ports.setdefault(dport, int(dport, 16)),
                intern(state), int(expires), fields[9] if len(fields) > 9 else "", " ".join(fields[10:]))))
    except ValueError as exc:
        raise ValueError(f"bad connection line {line.strip()!r}: {exc}") from None
    return connections
