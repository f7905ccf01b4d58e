"""Real servers read from /proc/net/ip_vs (kpctl.core.ipvs_proc), and the live list path that uses
them for `ipvsadm -Ln`'s default view, against text written the way Linux writes it
(net/netfilter/ipvs/ip_vs_ctl.c, ip_vs_info_seq_show)."""

from __future__ import annotations

import ipaddress
import random
from operator import attrgetter

from hypothesis import given, settings

from kpctl.backends import ipvs_netlink
from kpctl.core.ipvs_proc import proc_key, servers_by_service
from kpctl.core.ipvsadm_list import server_address
from kpctl.model.ipvs import SVC_F_ONEPACKET, SVC_F_PERSISTENT, IPVSInfo, IPVSTable, RealServer, VirtualService
from tests.unit.test_ipvs_list_fast_netlink import backend_over, kernel_of, kernel_tables

_FWD = {"masq": "Masq", "local": "Local", "tunnel": "Tunnel", "route": "Route"}
DEFAULT_FIELDS = attrgetter("address", "port", "family", "forward", "weight", "active_conns", "inactive_conns")


def _hex_address(address: str) -> str:
    packed = ipaddress.ip_address(address).packed
    if len(packed) == 4:
        return f"{int.from_bytes(packed, 'big'):08X}"
    return "[" + ":".join(packed[i:i + 2].hex() for i in range(0, 16, 2)) + "]"  # %pI6: every group, 4 digits


def proc_text(table: IPVSTable) -> str:
    """/proc/net/ip_vs of ``table`` (services in the order given; the kernel's is its hash order)."""
    lines = ["IP Virtual Server version 1.2.1 (size=4096)", "Prot LocalAddress:Port Scheduler Flags",
             "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn"]
    for svc in table.services:
        ops = "ops " if svc.flags & SVC_F_ONEPACKET else ""
        if svc.fwmark:
            line = f"FWM  {svc.fwmark:08X} {svc.scheduler} {ops}"
        elif svc.family == "inet6":
            line = f"{(svc.protocol or 'tcp').upper()}  {_hex_address(svc.address or '::')}:{svc.port:04X} {svc.scheduler} "
        else:
            line = f"{(svc.protocol or 'tcp').upper()}  {_hex_address(svc.address or '0.0.0.0')}:{svc.port:04X} {svc.scheduler} {ops}"
        lines.append(line + (f"persistent {svc.timeout} {svc.netmask:08X}" if svc.flags & SVC_F_PERSISTENT else ""))
        lines += [f"  -> {_hex_address(s.address)}:{s.port:04X}      {_FWD[s.forward]:<7} {s.weight:<6} "
                  f"{s.active_conns:<10} {s.inactive_conns:<10}" for s in svc.servers]
    return "\n".join(lines) + "\n"


def _default_fields(servers: tuple[RealServer, ...] | list[RealServer]) -> list[tuple[object, ...]]:
    return [DEFAULT_FIELDS(s) for s in servers]


def _proc_table(table: IPVSTable) -> IPVSTable:
    """``table`` with what /proc/net/ip_vs shows as the netlink replies do: weights and connection
    counts below 2**31 (the text prints them signed), and the four forwarding methods the text
    names (any other is "Masq" there, as the kernel's ip_vs_fwd_name writes it)."""
    def shown(s: RealServer) -> RealServer:
        return RealServer(s.address, s.port, s.family, s.forward if s.forward in _FWD else "masq", s.weight % 2**31,
                          s.upper_threshold, s.lower_threshold, s.active_conns % 2**31, s.inactive_conns % 2**31,
                          s.persistent_conns, s.tun_type, s.tun_port, s.tun_flags, s.stats)
    services = tuple(VirtualService(v.family, v.protocol, v.address, v.port, v.fwmark, v.scheduler, v.flags, v.timeout,
                                    v.netmask, v.pe_name, tuple(shown(s) for s in v.servers), v.stats)
                     for v in table.services)
    return IPVSTable(table.info, services)


@settings(max_examples=60, deadline=None)
@given(kernel_tables)
def test_each_service_has_its_servers_default_fields_and_nothing_else(table: IPVSTable) -> None:
    table = _proc_table(table)
    found = servers_by_service(proc_text(table))
    keys = [proc_key(service) for service in table.services]
    for service, key in zip(table.services, keys):
        if keys.count(key) > 1:  # a fwmark with an IPv4 and an IPv6 service: both from netlink
            assert found[key] is None
            continue
        servers = found[key]
        assert servers is not None
        assert _default_fields(servers) == _default_fields(service.servers)
        assert all(s.upper_threshold is None and s.persistent_conns is None and tuple(s.stats) == (None,) * 10
                   for s in servers)  # not on the line: never a made-up 0
    assert len(found) == len(set(keys))


def test_lines_of_another_layout_leave_their_service_to_netlink() -> None:
    head = ("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
    text = head + ("TCP  0A000001:0050 rr \n  -> 0A000102:1F90      Masq    1      0          0         \n"
                   "TCP  0A000002:0050 rr \n  -> 0A000103:1F90      Bypass  1      0          0         \n"
                   "TCP  zzzz:0050 rr \n  -> 0A000104:1F90      Masq    1      0          0         \n"
                   "FWM  00000001 rr \nFWM  00000001 rr \n  -> 0A000105:0000      Route   1      0          0         \n")
    found = servers_by_service(text)
    assert [server_address(s) for s in found[("TCP", bytes([10, 0, 0, 1]), 80)]] == ["10.0.1.2:8080"]  # type: ignore[union-attr]
    assert found[("TCP", bytes([10, 0, 0, 2]), 80)] is None  # an unknown forwarding method
    assert found[("FWM", 1)] is None  # named twice (an IPv4 and an IPv6 service of one mark)
    assert len(found) == 3  # the service it cannot name is not there, nor its server
    assert servers_by_service("something else\nentirely\n\n") == {}
    assert servers_by_service(head) == {}


@settings(max_examples=30, deadline=None)
@given(kernel_tables)
def test_the_default_view_takes_servers_from_the_text_and_the_rest_from_netlink(table: IPVSTable) -> None:
    table = _proc_table(table)
    rng = random.Random(len(table.services))
    shown = IPVSTable(table.info, tuple(s for s in table.services if rng.random() < 0.7))  # the others: added since
    text = proc_text(shown)
    sock = kernel_of(table, rng, chunk=4096)
    backend = backend_over(sock)
    sent: list[bytes] = []
    send = sock.send
    sock.send = lambda data: sent.append(data) or send(data)  # type: ignore[method-assign]
    original = ipvs_netlink._proc_servers
    ipvs_netlink._proc_servers = lambda: servers_by_service(text)  # type: ignore[assignment]
    try:
        got = backend.default_view_table()
    finally:
        ipvs_netlink._proc_servers = original  # type: ignore[assignment]
    assert got.info == table.info and len(got.services) == len(table.services)
    for service, want in zip(got.services, table.services):
        assert service._replace(servers=()) == want._replace(servers=())
        assert _default_fields(service.servers) == _default_fields(want.servers)
    # from the text: a service it names whose name no other service of the table has (a fwmark's
    # IPv4 and IPv6 services share one, even when the text shows one of them); the others from dumps
    everyone = [proc_key(service) for service in table.services]
    from_text = sum(1 for service in shown.services if everyone.count(proc_key(service)) == 1)
    assert sum(1 for data in sent if data[16] == 8) == len(table.services) - from_text


def test_the_default_reading_is_netlink_alone_when_the_file_cannot_be_read() -> None:
    server = RealServer("10.0.1.2", 8080, "inet", "masq", 1)
    table = IPVSTable(IPVSInfo("1.2.1", 4096), (VirtualService("inet", "tcp", "10.0.0.1", 80, servers=(server,)),))
    original = ipvs_netlink.PROC_IP_VS
    ipvs_netlink.PROC_IP_VS = "/nonexistent/ip_vs"
    try:
        got = backend_over(kernel_of(table, random.Random(0))).default_view_table()
    finally:
        ipvs_netlink.PROC_IP_VS = original
    assert got == table  # every field, from GET_DEST


def test_a_fwmark_of_two_families_is_read_from_netlink_even_when_the_text_names_it_once() -> None:
    # the IPv6 service went between the dump and the read: the text's servers are the IPv4 one's
    v4 = VirtualService("inet", None, None, 0, 7, "rr", servers=(RealServer("10.0.1.2", 0, "inet", "route", 3),))
    v6 = VirtualService("inet6", None, None, 0, 7, "rr", netmask=128,
                        servers=(RealServer("fd00::2", 0, "inet6", "route", 4),))
    table = IPVSTable(IPVSInfo("1.2.1", 4096), (v4, v6))
    text = proc_text(IPVSTable(table.info, (v4,)))
    original = ipvs_netlink._proc_servers
    ipvs_netlink._proc_servers = lambda: servers_by_service(text)  # type: ignore[assignment]
    try:
        got = backend_over(kernel_of(table, random.Random(0))).default_view_table()
    finally:
        ipvs_netlink._proc_servers = original  # type: ignore[assignment]
    assert got == table  # every field: both from GET_DEST
