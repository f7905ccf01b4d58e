"""Parse /proc/net/ip_vs_conn (what `ipvsadm -Lnc` reads) into Connection values.

The kernel prints one connection per line:
    Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
    TCP 0A000001 D431 0AFE0001 01BB 0A000002 1F90 ESTABLISHED    899
IPv4 addresses are 8 hex digits (host order of the number), IPv6 ones the uncompressed
`%pI6` form (fd00:0000:…); ports are 4 hex digits; a real server may be of the other family.
"""

from __future__ import annotations

import ipaddress

from kpctl.model.ipvs import Connection


def parse_conn_address(token: str) -> str:
    """'0A000001' -> '10.0.0.1'; 'fd00:0000:…:0001' -> 'fd00::1'."""
    if ":" in token:
        return str(ipaddress.IPv6Address(token))
    return str(ipaddress.IPv4Address(int(token, 16)))


def parse_conn_line(line: str) -> Connection | None:
    """One data line, or None for the header and blank lines."""
    fields = line.split()
    if len(fields) < 9 or fields[0] == "Pro":
        return None
    proto, caddr, cport, vaddr, vport, daddr, dport, state, expires = fields[:9]
    return Connection(
        protocol=proto,  # as the kernel prints it (TCP, UDP, SCTP), like ipvsadm -Lnc
        client_address=parse_conn_address(caddr),
        client_port=int(cport, 16),
        virtual_address=parse_conn_address(vaddr),
        virtual_port=int(vport, 16),
        server_address=parse_conn_address(daddr),
        server_port=int(dport, 16),
        state=state,
        expires=int(expires),
        pe_name=fields[9] if len(fields) > 9 else "",
        pe_data=" ".join(fields[10:]),
    )


def parse_ip_vs_conn(text: str) -> list[Connection]:
    """Every connection in the text of /proc/net/ip_vs_conn (IPv4 and IPv6 lines alike)."""
    connections = []
    for line in text.splitlines():
        connection = parse_conn_line(line)
        if connection is not None:
            connections.append(connection)
    return connections
