"""`kpctl ipvs list -o plain|ipvsadm`, written straight from the table, equals the generic path, byte for byte.

These properties pin the direct writers to the generic printers (plain: ``table_listing`` + the
registry's plain printer), to a plain ipvsadm formatter (kept here, verbatim, as the oracle), and
ipvsadm's order (a keyed sort where it can) to glibc's merge sort with libipvs's compare.
"""

from __future__ import annotations

import io
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from kpctl.cli.ipvs_views import plain_text, table_listing, text_listing
from kpctl.cli.k8s import annotate_ipvs
from kpctl.core.k8s_names import K8sNames
from kpctl.core.address import format_addrport
from kpctl.core.ipvsadm_list import (
    VIEWS, compare_servers, compare_services, format_ipvsadm, glibc_sort, largenum, netmask_text, sched_flag_words,
    sorted_servers, sorted_services,
)
from kpctl.errors import NotFound
from kpctl.model.ipvs import IPVSInfo, IPVSTable, RealServer, ServiceKey, Stats, VirtualService
from kpctl.model.k8s import Endpoint, ServicePort
from kpctl.output.env import Environment
from kpctl.output.listing import OutputSpec
from kpctl.output.registry import print_plain, render
from tests.unit.ipvs_fakes import given_fields, load_table

_V4 = st.one_of(st.integers(0, 2**32 - 1), st.integers(0x0A000000, 0x0A0000FF), st.integers(0xC0A80000, 0xC0A800FF)
                ).map(lambda n: str(ipaddress.IPv4Address(n)))
_V6 = st.one_of(st.binary(min_size=16, max_size=16), st.sampled_from([bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4]),
                                                                       bytes(15) + b"\1", b"\xfd" + bytes(15)])
                ).map(lambda b: str(ipaddress.IPv6Address(b)))
_COUNTER = st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1), st.sampled_from([99999999, 100000000, 10**12]))
_STATS = st.builds(Stats, *[_COUNTER] * 10)
_TEXT = st.sampled_from(["", "rr", "sh", "mh", "wlc", "sip", "a\tb", "x\x1by", "new\nline", "é"])


@st.composite
def servers(draw: Any, family: str) -> RealServer:
    fam = draw(st.sampled_from([family, family, family, "inet6" if family == "inet" else "inet"]))
    return RealServer(
        address=draw(_V4 if fam == "inet" else _V6), port=draw(st.integers(0, 65535)), family=fam,
        forward=draw(st.sampled_from(["masq", "route", "tunnel", "local", "bypass", "odd\tone"])),
        weight=draw(st.integers(0, 2**31 - 1)), upper_threshold=draw(st.integers(0, 2**32 - 1)),
        lower_threshold=draw(st.integers(0, 2**32 - 1)), active_conns=draw(st.integers(0, 2**32 - 1)),
        inactive_conns=draw(st.integers(0, 2**32 - 1)), persistent_conns=draw(st.integers(0, 2**32 - 1)),
        tun_type=draw(st.sampled_from(["ipip", "gue", "gre", "other"])), tun_port=draw(st.integers(0, 65535)),
        tun_flags=draw(st.integers(0, 4)), stats=draw(_STATS))


@st.composite
def services(draw: Any) -> VirtualService:
    family = draw(st.sampled_from(["inet", "inet", "inet6"]))
    fwmark = draw(st.sampled_from([0, 0, 0, draw(st.integers(1, 2**32 - 1))]))
    netmask = (draw(st.sampled_from([128, draw(st.integers(1, 128))])) if family == "inet6"
               else draw(st.sampled_from([0xFFFFFFFF, 0xFFFFFF00, draw(st.integers(0, 2**32 - 1))])))
    return VirtualService(
        family=family, protocol=None if fwmark else draw(st.sampled_from(["tcp", "udp", "sctp"])),
        address=None if fwmark else draw(_V4 if family == "inet" else _V6),
        port=0 if fwmark else draw(st.integers(0, 65535)), fwmark=fwmark, scheduler=draw(_TEXT),
        flags=draw(st.integers(0, 0x3F)), timeout=draw(st.integers(0, 2**32 - 1)), netmask=netmask,
        pe_name=draw(_TEXT), servers=tuple(draw(st.lists(servers(family), max_size=6))), stats=draw(_STATS))


tables = st.builds(lambda svcs: IPVSTable(IPVSInfo("1.2.1", 4096), tuple(svcs)), st.lists(services(), max_size=8))
many_v4 = st.lists(st.builds(lambda a, p: VirtualService(address=a, port=p, scheduler="rr",
                                                         servers=tuple(RealServer(a, p + i) for i in range(3))),
                             _V4, st.integers(0, 3)), max_size=30).map(
    lambda svcs: IPVSTable(IPVSInfo("1.2.1", 4096), tuple(svcs)))


# -- ipvsadm's order -----------------------------------------------------------------------------
@settings(max_examples=40)
@given(st.one_of(tables, many_v4))
def test_orders_are_ipvsadms_merge_sort(table: IPVSTable) -> None:
    assert sorted_services(table) == glibc_sort(table.services, compare_services)
    for service in table.services:
        assert sorted_servers(service) == glibc_sort(service.servers, compare_servers)


# A service's servers from a few addresses (near each other, or across the 32-bit circle's halves)
# and ports, repeated and in any order: ties, equal addresses and the wrapping compare's two cases.
_NEAR = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.1.0", "10.0.0.1"])
_FAR = st.sampled_from(["10.0.0.1", "200.0.0.1", "0.0.0.1", "255.255.255.255"])
crowded = st.sampled_from([_NEAR, _FAR]).flatmap(lambda addresses: st.lists(
    st.builds(given_fields(RealServer), addresses, st.sampled_from([0, 1, 80, 80, 8080]), weight=st.integers(0, 3)),
    min_size=2, max_size=12))


@settings(max_examples=200)
@given(crowded)
def test_order_of_crowded_servers_is_ipvsadms(servers: list[RealServer]) -> None:
    service = VirtualService(address="10.254.0.1", port=80, servers=tuple(servers))
    assert sorted_servers(service) == glibc_sort(servers, compare_servers)


# -- ipvsadm text: a plain formatter as the oracle -----------------------------------------------
_FWD_TITLE = {"masq": "Masq", "local": "Local", "tunnel": "Tunnel", "route": "Route"}


def _old_service_line(service: VirtualService, view: str, exact: bool) -> str:
    if service.fwmark:
        mark = service.fwmark - (1 << 32) if service.fwmark >= 1 << 31 else service.fwmark
        name = f"FWM  {mark}" + (" IPv6" if service.family == "inet6" else "")
    else:
        name = f"{(service.protocol or '?').upper():<4} {format_addrport(service.family, service.address or '', service.port)}"
        name = name if service.family == "inet6" else name[:33]
    s = service.stats
    if view == "stats":
        return f"{name:<33}" + "".join(largenum(v, exact) for v in (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes))
    if view == "rate":
        return f"{name:<33}" + "".join(largenum(v, exact) for v in (s.cps, s.inpps, s.outpps, s.inbps, s.outbps))
    line = f"{name} {service.scheduler}"
    if service.flags & 0x38:
        line += f" ({sched_flag_words(service)})"
    if service.persistent:
        line += f" persistent {service.timeout}"
        mask = netmask_text(service)
        if mask is not None:
            line += f" mask {mask}"
        if service.pe_name:
            line += f" pe {service.pe_name}"
    if service.one_packet:
        line += " ops"
    return line


def _old_tunnel_info(server: RealServer) -> str:
    if server.forward != "tunnel":
        return "n/a"
    flags = ("-c", "+c", "r+c")[server.tun_flags] if 0 <= server.tun_flags < 3 else "(null)"
    return {"gue": f"gue:{server.tun_port}:{flags}"[:15], "gre": f"gre:{flags}", "ipip": "ipip"}.get(server.tun_type, "n/a")


def _old_server_line(server: RealServer, view: str, exact: bool) -> str:
    name = format_addrport(server.family, server.address, server.port)
    if server.family != "inet6":
        name = name[:28]
    head = f"  -> {name:<28}"
    fwd = _FWD_TITLE.get(server.forward, "(null)")
    s = server.stats
    if view == "stats":
        return head + "".join(largenum(v, exact) for v in (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes))
    if view == "rate":
        return f"{head} {s.cps:8d} {s.inpps:8d} {s.outpps:8d}" + largenum(s.inbps, exact) + largenum(s.outbps, exact)
    if view == "thresholds":
        return (f"{head} {server.upper_threshold:<10d} {server.lower_threshold:<10d} "
                f"{server.active_conns:<10d} {server.inactive_conns:<10d}")
    if view == "persistent-conn":
        return (f"{head} {server.weight:<9d} {server.persistent_conns:<11d} "
                f"{server.active_conns:<10d} {server.inactive_conns:<10d}")
    if view == "tun-info":
        return (f"{head} {fwd:<7} {_old_tunnel_info(server):<13} {server.weight:<6d} "
                f"{server.active_conns:<10d} {server.inactive_conns:<10d}")
    return f"{head} {fwd:<7} {server.weight:<6d} {server.active_conns:<10d} {server.inactive_conns:<10d}"


def _old_entry(service: VirtualService, view: str, exact: bool) -> str:
    lines = [_old_service_line(service, view, exact)]
    lines += [_old_server_line(server, view, exact) for server in sorted_servers(service)]
    return "\n".join(lines) + "\n"


def _old_format_ipvsadm(table: IPVSTable, view: str, exact: bool, only: ServiceKey | None) -> str:
    from kpctl.core.ipvsadm_list import title

    if only is not None:
        for service in table.services:
            if service.key == only:
                return title(view) + _old_entry(service, view, exact)
        raise NotFound(f"service {only} does not exist")
    head = f"IP Virtual Server version {table.info.version} (size={table.info.conn_table_size})\n"
    return head + title(view) + "".join(_old_entry(s, view, exact) for s in sorted_services(table))


@settings(max_examples=40)
@given(tables, st.sampled_from(VIEWS), st.booleans(), st.data())
def test_ipvsadm_text_equals_the_plain_formatter(table: IPVSTable, view: str, exact: bool, data: Any) -> None:
    only = data.draw(st.sampled_from([None, *(s.key for s in table.services)]))
    assert format_ipvsadm(table, view, exact, only) == _old_format_ipvsadm(table, view, exact, only)


# -- plain: direct vs table_listing + the registry's plain printer -------------------------------
def _generic_plain(table: IPVSTable, view: str, exact: bool, only: ServiceKey | None, no_headers: bool) -> str:
    out = io.StringIO()
    print_plain(table_listing(table, view, exact, only), OutputSpec("plain", no_headers),
                Environment(stdout=out, stderr=io.StringIO(), color_mode="never"))
    return out.getvalue()


@settings(max_examples=40)
@given(tables, st.sampled_from(VIEWS), st.booleans(), st.booleans(), st.data())
def test_plain_text_equals_the_generic_plain_printer(table: IPVSTable, view: str, exact: bool, no_headers: bool,
                                                          data: Any) -> None:
    only = data.draw(st.sampled_from([None, *(s.key for s in table.services)]))
    assert plain_text(table, view, exact, only, no_headers) == _generic_plain(table, view, exact, only, no_headers)


@st.composite
def k8s_names(draw: Any, table: IPVSTable) -> K8sNames:
    """Service ports over some of ``table``'s services (by VIP, or by node port), their endpoints
    some of the services' servers (and others), names with characters a cell escapes."""
    ports = []
    for service in table.services:
        if service.protocol is None or service.address is None or not draw(st.booleans()):
            continue
        servers = [s for s in service.servers if draw(st.booleans())] + draw(st.lists(st.just(None), max_size=1))
        endpoints = tuple(Endpoint(s.address, s.port, service.protocol, draw(_TEXT)) if s is not None
                          else Endpoint("10.9.9.9", 1, service.protocol, "ns/other") for s in servers)
        by_node_port = draw(st.booleans())
        ports.append(ServicePort(draw(_TEXT), draw(_TEXT), draw(_TEXT), service.protocol, service.port,
                                 cluster_ips=() if by_node_port else (service.address,),
                                 node_port=service.port if by_node_port else 0, endpoints=endpoints))
    return K8sNames(tuple(ports))


@settings(max_examples=40)
@given(tables, st.sampled_from(VIEWS), st.booleans(), st.data())
def test_plain_text_with_names_equals_the_annotated_generic_printer(table: IPVSTable, view: str, no_headers: bool,
                                                                     data: Any) -> None:
    """`ipvs list --services -o plain`: the K8S SERVICE and POD cells as annotate_ipvs adds them."""
    names = data.draw(k8s_names(table))
    only = data.draw(st.sampled_from([None, *(s.key for s in table.services)]))
    out = io.StringIO()
    print_plain(annotate_ipvs(table_listing(table, view, False, only), names), OutputSpec("plain", no_headers),
                Environment(stdout=out, stderr=io.StringIO(), color_mode="never"))
    assert plain_text(table, view, False, only, no_headers, names) == out.getvalue()


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("fmt", ["plain", "ipvsadm"])
def test_text_listing_renders_as_table_listing_on_the_node_fixture(view: str, fmt: str) -> None:
    table = load_table("node_table.json")

    def rendered(listing: Any) -> str:
        out = io.StringIO()
        render(listing, OutputSpec(fmt), Environment(stdout=out, stderr=io.StringIO(), color_mode="never"))
        return out.getvalue()

    assert rendered(text_listing(table, view, False, None, False)) == rendered(
        table_listing(table, view, False))
