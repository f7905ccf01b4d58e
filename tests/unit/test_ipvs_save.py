"""`ipvsadm -Sn` writing and `ipvsadm -R` reading, including a save → restore round trip property."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kpctl.core.ipvs_plan import (
    AddServer, AddService, DeleteServer, DeleteService, EditServer, EditService, Flush, ZeroCounters,
    apply_to_state, plan_restore, state_of,
)
from kpctl.core.ipvs_save import parse_restore
from kpctl.core.ipvsadm_list import format_save
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import (
    SCHEDULERS, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3, IPVSInfo, IPVSTable,
    RealServer, ServiceKey, VirtualService,
)
from tests.unit.ipvs_fakes import fixture_text, load_table, table_of

EMPTY = IPVSTable(IPVSInfo("1.2.1", 4096))


def restore_into(table: IPVSTable, text: str, flush: bool = False) -> IPVSTable:
    state = state_of(table)
    for op in plan_restore(table, parse_restore(text), flush):
        apply_to_state(state, op)
    return table_of(state, table)


def test_node_table_save_matches_fixture() -> None:
    assert format_save(load_table("node_table.json")) == fixture_text("node_table.save.txt")


def test_empty_table_saves_nothing() -> None:
    assert format_save(EMPTY) == ""


def test_save_omits_thresholds_like_ipvsadm() -> None:
    service = VirtualService(address="10.0.0.1", port=80, scheduler="rr",
                             servers=(RealServer("10.0.0.2", 80, forward="masq", upper_threshold=5, lower_threshold=1),))
    assert format_save(IPVSTable(EMPTY.info, (service,))) == (
        "-A -t 10.0.0.1:80 -s rr\n"
        "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\n"
    )


def test_restoring_the_fixture_save_gives_its_save_back() -> None:
    text = fixture_text("node_table.save.txt")
    assert format_save(restore_into(EMPTY, text)) == text


def test_reads_long_options_attached_values_prefix_and_comments() -> None:
    text = """# written by hand
ipvsadm --add-service --tcp-service 10.0.0.1:80 --scheduler=wrr --persistent 60 --netmask 255.255.255.0

ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:8080 --masquerading --weight=3 -x 10 -y 2
-a -t 10.0.0.1:80 -r 10.0.0.3 -w7 -g
-A -u 10.0.0.1:53 -p -s rr
-A -f 7 -6 -s sh -b sh-port
-E --udp-service 10.0.0.1:53 -s lc
-e -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 0
-d -t 10.0.0.1:80 -r 10.0.0.3:80
-D -f 7 -6
-Z
-Z -u 10.0.0.1:53
-C
"""
    ops = parse_restore(text)
    assert [type(op).__name__ for op in ops] == [
        "AddService", "AddServer", "AddServer", "AddService", "AddService", "EditService", "EditServer",
        "DeleteServer", "DeleteService", "ZeroCounters", "ZeroCounters", "Flush"]
    assert [op.line for op in ops] == [2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    first = ops[0]
    assert isinstance(first, AddService)
    assert (first.service.scheduler, first.service.timeout, first.service.netmask) == ("wrr", 60, 0xFFFFFF00)
    assert isinstance(ops[1], AddServer)
    assert ops[1].server == RealServer("10.0.0.2", 8080, forward="masq", weight=3, upper_threshold=10,
                                       lower_threshold=2)
    assert isinstance(ops[2], AddServer) and ops[2].server == RealServer("10.0.0.3", 80, forward="route", weight=7)
    assert isinstance(ops[3], AddService) and ops[3].service.timeout == 300  # -p without a value
    assert isinstance(ops[4], AddService) and ops[4].key == ServiceKey("inet6", None, None, 0, 7)
    assert ops[4].service.flags == SVC_F_SCHED2 and ops[4].service.netmask == 128
    assert isinstance(ops[9], ZeroCounters) and ops[9].key is None


def test_ipvsadm_defaults_weight_1_and_direct_routing_with_service_port() -> None:
    (op,) = parse_restore("-a -t 10.0.0.1:80 -r 10.0.0.2:8080")
    assert isinstance(op, AddServer)
    # -g is the default and keeps the service's port, as ipvsadm does
    assert op.server == RealServer("10.0.0.2", 80, forward="route", weight=1)


def test_fwmark_servers_keep_their_port_with_route() -> None:
    (op,) = parse_restore("-a -f 1 -r 10.0.0.2:8080 -g")
    assert isinstance(op, AddServer) and op.server.port == 8080


def test_service_without_port_is_port_zero_and_needs_persistence() -> None:
    (op,) = parse_restore("-A -t 10.0.0.1 -s rr -p 30")
    assert isinstance(op, AddService) and op.key.port == 0
    with pytest.raises(InvalidInput, match="line 1: .*port 0"):
        parse_restore("-A -t 10.0.0.1 -s rr")


@pytest.mark.parametrize("line, named", [
    ("-A -t 10.0.0.1:80 -s nosuch", "'nosuch'"),
    ("-A -t 10.0.0.1:99999", "'99999'"),
    ("-A -t 10.0.0.300:80", "'10.0.0.300'"),
    ("-A -t 10.0.0.1:80 -p 0", "'0'"),
    ("-A -t 10.0.0.1:80 -p 2678401", "'2678401'"),
    ("-A -t 10.0.0.1:80 -p 10 -M 255.255.255.256", "'255.255.255.256'"),
    ("-A -t [fd00::1]:80 -p 10 -M 129", "'129'"),
    ("-A -t 10.0.0.1:80 -s rr -b sh-port", "'sh-port'"),
    ("-A -t 10.0.0.1:80 -s rr -b flag-9", "'flag-9'"),
    ("-A -t 10.0.0.1:80 -o", "--ops"),
    ("-A -t 10.0.0.1:80 --pe bogus", "'bogus'"),
    ("-A -t 10.0.0.1:80 -r 10.0.0.2", "'-r' is not allowed with add-service"),
    ("-D -t 10.0.0.1:80 --weight=3", "'--weight' is not allowed with delete-service"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536", "'65536'"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", "'-1'"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648", "'2147483648'"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g", "'-g'"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gue", "tunnel"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue", "--tun-port"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan", "'vxlan'"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-port 6080", "--tun-port"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum", "--tun-remcsum"),
    ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum", "'--tun-nocsum'"),
    ("-a -t 10.0.0.1:80 -r fd00::2 -m", "'fd00::2'"),
    ("-a -t 10.0.0.1:80", "-r"),
    ("-a -r 10.0.0.2", "service"),
    ("-A -t 10.0.0.1:80 -t 10.0.0.2:80", "twice"),
    ("-A -t 10.0.0.1:80 -u 10.0.0.2:80", "'-u'"),
    ("-A -E -t 10.0.0.1:80", "'-E'"),
    ("-t 10.0.0.1:80", "no command"),
    ("-A -t 10.0.0.1:80 --frobnicate", "'--frobnicate'"),
    ("-A -t 10.0.0.1:80 -s", "'-s'"),
    ("-A -6 -f 1", "-6 used before -f"),
    ("-L -n", "'-L'"),
    ("--set 1 2 3", "'--set'"),
    ("-A -f 0", "'0'"),
])
def test_bad_lines_name_line_and_token(line: str, named: str) -> None:
    text = "-A -t 10.9.9.9:1 -s rr\n\n" + line + "\n"
    with pytest.raises(InvalidInput) as info:
        parse_restore(text)
    message = str(info.value)
    assert message.startswith("line 3: "), message
    assert named in message, message


# --- round trip property ----------------------------------------------------------------------

def _v4(n: int) -> str:
    return str(ipaddress.IPv4Address(n))


@st.composite
def _service(draw: Any, index: int) -> VirtualService:
    family = draw(st.sampled_from(["inet", "inet6"]))
    fwmark = draw(st.sampled_from([0, 0, index + 1]))
    protocol = None if fwmark else draw(st.sampled_from(["tcp", "udp", "sctp"]))
    address = None
    if not fwmark:
        address = _v4(0x0A000000 + index) if family == "inet" else f"fd00::{index + 1:x}"
    scheduler = draw(st.sampled_from(SCHEDULERS))
    persistent = draw(st.booleans())
    port = 0 if fwmark else draw(st.integers(0 if persistent else 1, 65535))
    flags = SVC_F_PERSISTENT if persistent else 0
    choices = [0, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED1 | SVC_F_SCHED2]
    if scheduler not in ("sh", "mh"):
        choices += [SVC_F_SCHED3, SVC_F_SCHED1 | SVC_F_SCHED3]
    flags |= draw(st.sampled_from(choices))
    if fwmark or protocol == "udp":
        flags |= draw(st.sampled_from([0, SVC_F_ONEPACKET]))
    default_mask = 128 if family == "inet6" else 0xFFFFFFFF
    netmask = default_mask
    if persistent:
        netmask = draw(st.integers(1, 128) if family == "inet6" else st.integers(0, 0xFFFFFFFF))
    servers = []
    for number in range(draw(st.integers(0, 4))):
        forward = draw(st.sampled_from(["masq", "route", "tunnel"]))
        server_family = draw(st.sampled_from(["inet", "inet6"])) if forward == "tunnel" else family
        server_address = _v4(0xAC100000 + number * 7919) if server_family == "inet" else f"fd01::{number + 1:x}"
        server_port = port if (not fwmark and forward != "masq") else draw(st.integers(0, 65535))
        tun_type, tun_port, tun_flags = "ipip", 0, 0
        if forward == "tunnel":
            tun_type = draw(st.sampled_from(["ipip", "gue", "gre"]))
            if tun_type == "gue":
                tun_port, tun_flags = draw(st.integers(1, 65535)), draw(st.integers(0, 2))
            elif tun_type == "gre":
                tun_flags = draw(st.integers(0, 1))
        servers.append(RealServer(server_address, server_port, server_family, forward,
                                  draw(st.integers(0, 65535)), tun_type=tun_type, tun_port=tun_port,
                                  tun_flags=tun_flags))
    return VirtualService(family=family, protocol=protocol, address=address, port=port, fwmark=fwmark,
                          scheduler=scheduler, flags=flags, timeout=draw(st.integers(1, 86400 * 31)) if persistent else 0,
                          netmask=netmask, pe_name=draw(st.sampled_from(["", "sip"])), servers=tuple(servers))


@st.composite
def _tables(draw: Any) -> IPVSTable:
    count = draw(st.integers(0, 6))
    return IPVSTable(EMPTY.info, tuple(draw(_service(i)) for i in range(count)))


def _normal(table: IPVSTable) -> dict[ServiceKey, tuple[VirtualService, frozenset[RealServer]]]:
    return {s.key: (s.with_servers(()), frozenset(s.servers)) for s in table.services}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_save_restore_round_trip(table: IPVSTable) -> None:
    saved = format_save(table)
    restored = restore_into(EMPTY, saved)
    assert _normal(restored) == _normal(table)
    assert format_save(restored) == saved


def test_restore_with_flush_replaces_and_without_conflicts() -> None:
    current = load_table("node_table.json")
    text = "-A -t 10.254.0.1:443 -s rr\n"
    with pytest.raises(Exception, match="line 1: service 10.254.0.1:443/tcp already exists"):
        restore_into(current, text)
    replaced = restore_into(current, text, flush=True)
    assert [str(s.key) for s in replaced.services] == ["10.254.0.1:443/tcp"]


def test_describe_is_parseable_back() -> None:
    key = ServiceKey("inet6", "udp", "fd00::1", 53)
    server = RealServer("fd00::2", 53, "inet6", "masq", 3, upper_threshold=9)
    ops = [AddService(VirtualService(family="inet6", protocol="udp", address="fd00::1", port=53, scheduler="rr",
                                     netmask=128)),
           AddServer(key, server), EditServer(key, server), DeleteServer(key, RealServer("fd00::2", 53, "inet6")),
           EditService(VirtualService(protocol=None, fwmark=3, scheduler="wlc")), DeleteService(key),
           ZeroCounters(None), ZeroCounters(key), Flush()]
    text = "".join(op.describe() + "\n" for op in ops)
    assert parse_restore(text) == ops
