"""`ipvsadm -Ln` views, byte for byte (fixture pairs, plus an oracle built from ipvsadm.c's printf formats).

The expected texts in fixtures/ipvs/ were derived from ipvsadm 1.31's print_title,
print_service_entry and print_largenum; the VM tests compare the same views against
the real ipvsadm.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, strategies as st

from kpctl.core.ipvsadm_list import (
    VIEWS, compare_servers, compare_services, format_ipvsadm, glibc_sort, largenum, sorted_servers,
    sorted_services,
)
from kpctl.errors import NotFound
from kpctl.model.ipvs import (
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED3, IPVSInfo, IPVSTable, RealServer, ServiceKey, Stats,
    VirtualService,
)
from tests.unit.ipvs_fakes import fixture_text, given_fields, load_table

CASES = [(view, False) for view in VIEWS] + [("stats", True), ("rate", True)]


@pytest.mark.parametrize("view, exact", CASES)
def test_node_table_matches_fixture(view: str, exact: bool) -> None:
    expected = fixture_text(f"node_table.{view}{'-exact' if exact else ''}.txt")
    assert format_ipvsadm(load_table("node_table.json"), view, exact) == expected


def test_empty_table_is_header_and_title() -> None:
    assert format_ipvsadm(load_table("empty_table.json")) == (
        "IP Virtual Server version 1.2.1 (size=1048576)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    )


def test_one_service_has_no_version_line() -> None:
    table = load_table("node_table.json")
    text = format_ipvsadm(table, "default", False, ServiceKey("inet", "udp", "10.254.0.2", 53))
    assert text == (
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "UDP  10.254.0.2:53 rr ops\n"
        "  -> 172.30.2.3:53                Masq    1      0          40        \n"
        "  -> 172.30.2.4:53                Masq    0      0          0         \n"
    )


def test_one_missing_service_is_not_found() -> None:
    with pytest.raises(NotFound, match="10.9.9.9:1/tcp"):
        format_ipvsadm(load_table("node_table.json"), only=ServiceKey("inet", "tcp", "10.9.9.9", 1))


# --- an oracle from ipvsadm.c's own format strings (C printf == Python % for these) -----------

def _c_largenum(value: int, exact: bool) -> str:
    if exact:
        length = len("%u" % value)
        return "%*u" % (9 if length <= 8 else length + 1, value)
    for limit, divisor, suffix in ((100000000, 1, ""), (1000000000, 1000, "K"), (100000000000, 1000000, "M"),
                                   (100000000000000, 1000000000, "G")):
        if value < limit:
            return ("%9u" % value) if not suffix else ("%8u" % (value // divisor)) + suffix
    return "%8uT" % (value // 1000000000000)


@given(st.integers(min_value=0, max_value=2**64 - 1), st.booleans())
def test_largenum_matches_c_print_largenum(value: int, exact: bool) -> None:
    assert largenum(value, exact) == _c_largenum(value, exact)


@pytest.mark.parametrize("value, text", [
    (99999999, " 99999999"), (100000000, "  100000K"), (999999999, "  999999K"), (1000000000, "    1000M"),
    (99999999999, "   99999M"), (100000000000, "     100G"), (99999999999999, "   99999G"),
    (100000000000000, "     100T"), (2**64 - 1, "18446744T"),
])
def test_largenum_boundaries(value: int, text: str) -> None:
    assert largenum(value, False) == text


def test_exact_widths() -> None:
    assert largenum(12345678, True) == " 12345678"
    assert largenum(123456789, True) == " 123456789"
    assert largenum(2**64 - 1, True) == " 18446744073709551615"


_servers = st.builds(
    given_fields(RealServer),
    address=st.sampled_from(["10.0.0.1", "172.30.255.254", "192.168.1.1", "1.2.3.4"]),
    port=st.integers(0, 65535),
    forward=st.sampled_from(["masq", "route", "tunnel", "local"]),
    weight=st.integers(0, 65535),
    upper_threshold=st.integers(0, 2**31 - 1),
    lower_threshold=st.integers(0, 2**31 - 1),
    active_conns=st.integers(0, 2**32 - 1),
    inactive_conns=st.integers(0, 2**32 - 1),
    persistent_conns=st.integers(0, 2**32 - 1),
    stats=st.builds(Stats, **{f: st.integers(0, 2**64 - 1) for f in
                              ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps",
                               "inbps", "outbps")}),
)


@given(_servers)
def test_server_lines_match_c_formats(server: RealServer) -> None:
    service = VirtualService(address="10.254.0.1", port=80, scheduler="rr", servers=(server,))
    table = IPVSTable(IPVSInfo("1.2.1", 4096), (service,))
    dname = f"{server.address}:{server.port}"
    fwd = {"masq": "Masq", "route": "Route", "tunnel": "Tunnel", "local": "Local"}[server.forward]
    s = server.stats
    expected = {
        "default": "  -> %-28s %-7s %-6d %-10u %-10u" % (dname, fwd, server.weight, server.active_conns,
                                                         server.inactive_conns),
        "stats": "  -> %-28s" % dname + "".join(_c_largenum(v, False) for v in
                                                (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes)),
        "rate": "  -> %-28s %8u %8u %8u" % (dname, s.cps, s.inpps, s.outpps)
                + _c_largenum(s.inbps, False) + _c_largenum(s.outbps, False),
        "thresholds": "  -> %-28s %-10u %-10u %-10u %-10u" % (dname, server.upper_threshold,
                                                              server.lower_threshold, server.active_conns,
                                                              server.inactive_conns),
        "persistent-conn": "  -> %-28s %-9u %-11u %-10u %-10u" % (dname, server.weight, server.persistent_conns,
                                                                 server.active_conns, server.inactive_conns),
    }
    for view, line in expected.items():
        assert format_ipvsadm(table, view).splitlines()[-1] == line


def test_service_line_words_in_ipvsadm_order() -> None:
    service = VirtualService(protocol="udp", address="10.0.0.1", port=53, scheduler="wrr",
                             flags=SVC_F_PERSISTENT | SVC_F_ONEPACKET | SVC_F_SCHED3 | 0x2, timeout=60,
                             netmask=0xFFFF0000, pe_name="sip")
    text = format_ipvsadm(IPVSTable(IPVSInfo("1.2.1", 4096), (service,)))
    assert text.splitlines()[-1] == "UDP  10.0.0.1:53 wrr (flag-3) persistent 60 mask 255.255.0.0 pe sip ops"


def test_pe_shown_only_with_persistence_and_empty_flag_parens_kept() -> None:
    # sh with only SCHED3 set: ipvsadm prints " ()" (no sh- name for that bit)
    service = VirtualService(address="10.0.0.1", port=80, scheduler="sh", flags=SVC_F_SCHED3, pe_name="sip")
    text = format_ipvsadm(IPVSTable(IPVSInfo("1.2.1", 4096), (service,)))
    assert text.splitlines()[-1] == "TCP  10.0.0.1:80 sh ()"


def test_fwmark_above_int_max_prints_negative_like_ipvsadm_1_31() -> None:
    service = VirtualService(protocol=None, fwmark=0x80000000, scheduler="rr")
    text = format_ipvsadm(IPVSTable(IPVSInfo("1.2.1", 4096), (service,)))
    assert text.splitlines()[-1] == "FWM  -2147483648 rr"


def test_unknown_forward_prints_null_like_glibc() -> None:
    service = VirtualService(address="10.0.0.1", port=80, scheduler="rr",
                             servers=(RealServer("10.0.0.2", 80, forward="bypass"),))
    text = format_ipvsadm(IPVSTable(IPVSInfo("1.2.1", 4096), (service,)))
    assert "  -> 10.0.0.2:80                  (null)  1" in text


# --- order ---------------------------------------------------------------------------------------

def test_sort_wraps_like_libipvs_compare() -> None:
    """ntohl(a)-ntohl(b) as int: 192.168.x sorts before 10.x (the difference overflows)."""
    low = VirtualService(address="10.0.0.1", port=80)
    high = VirtualService(address="192.168.0.1", port=80)
    assert compare_services(high, low) < 0
    table = IPVSTable(IPVSInfo("1.2.1", 4096), (low, high))
    lines = format_ipvsadm(table).splitlines()
    assert lines[3].startswith("TCP  192.168.0.1:80") and lines[4].startswith("TCP  10.0.0.1:80")


def test_sort_keys_fwmark_family_protocol_address_port() -> None:
    services = (
        VirtualService(protocol=None, fwmark=5), VirtualService(family="inet6", address="::1", port=1),
        VirtualService(protocol="udp", address="10.0.0.1", port=1), VirtualService(address="10.0.0.1", port=2),
        VirtualService(address="10.0.0.1", port=1),
    )
    ordered = glibc_sort(services, compare_services)
    assert [str(s.key) for s in ordered] == ["10.0.0.1:1/tcp", "10.0.0.1:2/tcp", "10.0.0.1:1/udp", "[::1]:1/tcp",
                                             "fwmark:5"]


@given(st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 65535)), max_size=30))
def test_glibc_sort_is_a_stable_sort_for_a_consistent_order(items: list[tuple[int, int]]) -> None:
    servers = [RealServer(str(__import__("ipaddress").IPv4Address(a)), p) for a, p in items]
    expected = sorted(servers, key=functools.cmp_to_key(compare_servers))
    assert glibc_sort(servers, compare_servers) == expected


_any_v4 = st.integers(0, 2**32 - 1).map(lambda n: str(__import__("ipaddress").IPv4Address(n)))
_any_v6 = st.binary(min_size=16, max_size=16).map(lambda b: str(__import__("ipaddress").IPv6Address(b)))


@st.composite
def _any_services(draw: Any) -> tuple[VirtualService, ...]:
    services = {}
    for _ in range(draw(st.integers(0, 12))):
        family = draw(st.sampled_from(["inet", "inet6"]))
        fwmark = draw(st.sampled_from([0, 0, draw(st.integers(1, 2**32 - 1))]))
        address = None if fwmark else draw(_any_v4 if family == "inet" else _any_v6)
        service = VirtualService(family=family, protocol=None if fwmark else draw(st.sampled_from(["tcp", "udp"])),
                                 address=address, port=0 if fwmark else draw(st.integers(0, 3)), fwmark=fwmark)
        services[service.key] = service
    return tuple(services.values())


@given(_any_services())
def test_fast_service_order_equals_ipvsadm_merge_sort(services: tuple[VirtualService, ...]) -> None:
    table = IPVSTable(IPVSInfo("1.2.1", 4096), services)
    assert sorted_services(table) == glibc_sort(services, compare_services)


@given(st.lists(st.tuples(st.sampled_from(["inet", "inet6"]), st.integers(0, 3)), max_size=12), st.data())
def test_fast_server_order_equals_ipvsadm_merge_sort(shapes: list[tuple[str, int]], data: Any) -> None:
    servers = tuple(RealServer(data.draw(_any_v4 if family == "inet" else _any_v6), port, family)
                    for family, port in shapes)
    service = VirtualService(address="10.0.0.1", port=80, servers=servers)
    assert sorted_servers(service) == glibc_sort(servers, compare_servers)
