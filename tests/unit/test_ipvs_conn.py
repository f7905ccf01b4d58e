"""/proc/net/ip_vs_conn parsing (the text below is what a 6.1 kernel prints)."""

from __future__ import annotations

import pytest

from kpctl.core.ipvs_conn import parse_conn_address, parse_ip_vs_conn
from kpctl.model.ipvs import Connection

PROC_TEXT = (
    "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
    "TCP 0A000001 D431 0AFE0001 01BB 0A000002 1F90 ESTABLISHED     899\n"
    "UDP 0A000001 8F12 0AFE000A 0035 0A000003 0035 UDP             298\n"
    "TCP fd00:0000:0000:0000:0000:0000:0000:0001 C350 2001:0db8:0000:0000:0000:0000:0000:0010 0050 "
    "fd00:0000:0000:0000:0000:0000:0000:0002 1F90 SYN_RECV         56\n"
    "UDP C0A80001 13C4 C0A80064 13C4 C0A80002 13C4 UDP             170 sip 3f1d2c@example\n"
)


def test_parses_ipv4_ipv6_and_pe_lines() -> None:
    assert parse_ip_vs_conn(PROC_TEXT) == [
        Connection("TCP", "10.0.0.1", 0xD431, "10.254.0.1", 443, "10.0.0.2", 8080, "ESTABLISHED", 899),
        Connection("UDP", "10.0.0.1", 0x8F12, "10.254.0.10", 53, "10.0.0.3", 53, "UDP", 298),
        Connection("TCP", "fd00::1", 50000, "2001:db8::10", 80, "fd00::2", 8080, "SYN_RECV", 56),
        Connection("UDP", "192.168.0.1", 5060, "192.168.0.100", 5060, "192.168.0.2", 5060, "UDP", 170,
                   pe_name="sip", pe_data="3f1d2c@example"),
    ]


def test_header_only_and_empty_text_give_no_connections() -> None:
    assert parse_ip_vs_conn(PROC_TEXT.splitlines(keepends=True)[0]) == []
    assert parse_ip_vs_conn("") == []


def test_mixed_family_real_server() -> None:
    line = ("TCP 0A000001 D431 0AFE0001 01BB fd00:0000:0000:0000:0000:0000:0000:0009 0050 ESTABLISHED     10\n")
    (conn,) = parse_ip_vs_conn(line)
    assert (conn.virtual_address, conn.server_address) == ("10.254.0.1", "fd00::9")


def test_address_tokens() -> None:
    assert parse_conn_address("7F000001") == "127.0.0.1"
    assert parse_conn_address("0000:0000:0000:0000:0000:0000:0000:0001") == "::1"
    # as ipvsadm -Lnc (inet_ntop) writes it, on every Python (ipaddress wrote ::ffff:102:304 before 3.13)
    assert parse_conn_address("0000:0000:0000:0000:0000:ffff:0102:0304") == "::ffff:1.2.3.4"
    for bad in ("0A00001", "0A0000010", "0A00000G", "fd00::x"):
        with pytest.raises(ValueError):
            parse_conn_address(bad)


def test_connections_share_the_text_of_each_server_address() -> None:
    first, second = parse_ip_vs_conn(PROC_TEXT.replace("0A000003", "0A000002").replace("0AFE000A", "0AFE0001"))[:2]
    assert first.server_address == second.server_address == "10.0.0.2"
    assert first.server_address is second.server_address and first.virtual_address is second.virtual_address
