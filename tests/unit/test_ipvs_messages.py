"""IPVS generic-netlink messages: uapi numbering, encoding of requests, decoding of replies.

Requests are packed by kpctl (ipvs_codec.encode) and read back by an independent decoder
(pyroute2's generic netlink classes with the uapi tables: tests/unit/ipvs_pyroute2.py); replies
are built the way the kernel builds them with that same reference and decoded by kpctl.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, List, Tuple

import pytest

from kpctl.backends import genl
from kpctl.backends import ipvs_codec as codec
from kpctl.backends import ipvs_dump
from kpctl.backends.ipvs_messages import (
    Cmd,
    CmdAttr,
    DaemonAttr,
    DestAttr,
    InfoAttr,
    StatsAttr,
    SvcAttr,
    decode_netmask,
    encode_netmask,
)
from kpctl.model.ipvs import (
    SVC_F_HASHED,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    SVC_F_SCHED1,
    TUN_F_CSUM,
    RealServer,
    ServiceKey,
    Stats,
    SyncDaemon,
    Timeouts,
    VirtualService,
)
from tests.unit.ipvs_pyroute2 import addr16, ipvs_info_msg, ipvs_msg, reference_encode
from tests.unit.ipvs_pyroute2 import service_key_attrs as reference_key_attrs

FAMILY_ID = 0x1F
Request = Tuple[int, List[Tuple[str, Any]]]


def request(cmd: int, attrs: list[tuple[str, Any]] | None = None) -> Request:
    return cmd, attrs or []


def encoded(req: Request, flags: int = 0x5, seq: int = 7) -> bytes:
    """What kpctl sends."""
    return codec.encode(*req, FAMILY_ID, flags, seq)


def reference(req: Request, flags: int = 0x5, seq: int = 7) -> bytes:
    """The same message packed by the independent pyroute2 classes (also how replies are built here)."""
    return reference_encode(*req, FAMILY_ID, flags, seq)


def roundtrip(req: Request) -> ipvs_msg:
    """kpctl's bytes as the independent decoder reads them."""
    data = encoded(req)
    decoded = ipvs_msg(data)
    decoded.decode()
    return decoded


def payload(data: bytes) -> bytes:
    """What the transport hands the decoders: the message without its nlmsghdr."""
    return data[genl.NLMSGHDR.size:]


def find_attr(data: bytes, start: int, end: int, kind: int) -> bytes:
    attrs = genl.parse_attrs(data, start, end)
    span = attrs[kind]
    return data[span[0]:span[1]]


# -- the uapi enums, one to one ---------------------------------------------------------------
def test_commands_are_numbered_as_in_ip_vs_h() -> None:
    names = ["NEW_SERVICE", "SET_SERVICE", "DEL_SERVICE", "GET_SERVICE", "NEW_DEST", "SET_DEST",
             "DEL_DEST", "GET_DEST", "NEW_DAEMON", "DEL_DAEMON", "GET_DAEMON", "SET_CONFIG",
             "GET_CONFIG", "SET_INFO", "GET_INFO", "ZERO", "FLUSH"]
    assert [Cmd[name].value for name in names] == list(range(1, 18))


@pytest.mark.parametrize(("enum", "last", "count"), [
    (CmdAttr, "TIMEOUT_UDP", 6), (SvcAttr, "STATS64", 12), (DestAttr, "TUN_FLAGS", 15),
    (DaemonAttr, "MCAST_TTL", 8), (StatsAttr, "PAD", 11), (InfoAttr, "CONN_TAB_SIZE", 2),
])
def test_attribute_enums_are_dense_and_end_where_the_header_does(enum: Any, last: str, count: int) -> None:
    assert [member.value for member in enum] == list(range(count + 1))
    assert enum[last].value == count


@pytest.mark.parametrize(("cls", "enum"), [
    (ipvs_msg, CmdAttr), (ipvs_msg.ipvs_service_attrs, SvcAttr), (ipvs_msg.ipvs_dest_attrs, DestAttr),
    (ipvs_msg.ipvs_daemon_attrs, DaemonAttr), (ipvs_info_msg, InfoAttr),
])
def test_nla_maps_use_the_enum_numbers(cls: Any, enum: Any) -> None:
    numbers = {name: number for number, name, _ in cls.nla_map}
    for member in enum:
        assert numbers[cls.prefix + member.name] == member.value


# -- requests ---------------------------------------------------------------------------------
def test_new_service_request_carries_every_mandatory_attribute() -> None:
    svc = VirtualService("inet", "tcp", "10.254.0.1", 443, scheduler="rr",
                         flags=SVC_F_PERSISTENT | SVC_F_HASHED | SVC_F_SCHED1, timeout=300, netmask=0xFFFFFF00,
                         pe_name="sip")
    msg = request(Cmd.NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_nest(svc))])
    decoded = roundtrip(msg)
    assert decoded["cmd"] == Cmd.NEW_SERVICE and decoded["version"] == 1
    nest = decoded.get_attr("IPVS_CMD_ATTR_SERVICE")
    assert nest.get_attr("IPVS_SVC_ATTR_AF") == socket.AF_INET
    assert nest.get_attr("IPVS_SVC_ATTR_PROTOCOL") == socket.IPPROTO_TCP
    assert nest.get_attr("IPVS_SVC_ATTR_ADDR") == socket.inet_aton("10.254.0.1") + bytes(12)
    assert nest.get_attr("IPVS_SVC_ATTR_PORT") == 443
    assert nest.get_attr("IPVS_SVC_ATTR_SCHED_NAME") == "rr"
    assert nest.get_attr("IPVS_SVC_ATTR_PE_NAME") == "sip"
    # HASHED is the kernel's bookkeeping and must never be sent; the mask covers all bits
    assert nest.get_attr("IPVS_SVC_ATTR_FLAGS") == {"flags": SVC_F_PERSISTENT | SVC_F_SCHED1, "mask": 0xFFFFFFFF}
    assert nest.get_attr("IPVS_SVC_ATTR_TIMEOUT") == 300


def test_service_port_goes_out_big_endian() -> None:
    svc = VirtualService("inet", "udp", "10.0.0.1", 0x1234)
    data = encoded(request(Cmd.NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_nest(svc))]))
    top = genl.parse_attrs(data, 20, len(data))
    nest = top[CmdAttr.SERVICE]
    assert find_attr(data, nest[0], nest[1], SvcAttr.PORT) == b"\x12\x34"


def test_ipv4_netmask_is_sent_as_its_network_order_bytes() -> None:
    svc = VirtualService("inet", "tcp", "10.0.0.1", 80, netmask=0xFFFFFF00)
    data = encoded(request(Cmd.NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_nest(svc))]))
    nest = genl.parse_attrs(data, 20, len(data))[CmdAttr.SERVICE]
    assert find_attr(data, nest[0], nest[1], SvcAttr.NETMASK) == b"\xff\xff\xff\x00"


@pytest.mark.parametrize(("given", "sent"), [(64, 64), (128, 128), (1, 1), (0xFFFFFFFF, 128), (0, 128)])
def test_ipv6_netmask_is_a_prefix_length_in_host_order(given: int, sent: int) -> None:
    svc = VirtualService("inet6", "tcp", "fd00::1", 80, netmask=given)
    data = encoded(request(Cmd.NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_nest(svc))]))
    nest = genl.parse_attrs(data, 20, len(data))[CmdAttr.SERVICE]
    assert find_attr(data, nest[0], nest[1], SvcAttr.NETMASK) == struct.pack("=I", sent)
    assert find_attr(data, nest[0], nest[1], SvcAttr.ADDR) == socket.inet_pton(socket.AF_INET6, "fd00::1")


def test_netmask_conversion_roundtrips_per_family() -> None:
    for mask in (0xFFFFFFFF, 0xFFFFFF00, 0xFFFF0000, 0x80000000):
        assert decode_netmask(socket.AF_INET, encode_netmask("inet", mask)) == mask
    assert decode_netmask(socket.AF_INET6, encode_netmask("inet6", 64)) == 64


def test_fwmark_service_key_has_no_address_protocol_or_port() -> None:
    nest = roundtrip(request(Cmd.DEL_SERVICE, [
        ("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(ServiceKey("inet6", None, None, 0, 100)))])).get_attr(
        "IPVS_CMD_ATTR_SERVICE")
    assert [(name, value) for name, value in nest["attrs"]] == [("IPVS_SVC_ATTR_AF", socket.AF_INET6),
                                                              ("IPVS_SVC_ATTR_FWMARK", 100)]


def test_tunnel_port_goes_out_big_endian_with_type_and_flags() -> None:
    server = RealServer("10.1.0.1", 80, forward="tunnel", tun_type="gue", tun_port=6080, tun_flags=TUN_F_CSUM, weight=0)
    msg = request(Cmd.NEW_DEST, [
        ("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(ServiceKey("inet", "tcp", "10.0.0.1", 80))),
        ("IPVS_CMD_ATTR_DEST", codec.dest_nest(server, full=True)),
    ])
    data = encoded(msg)
    nest = genl.parse_attrs(data, 20, len(data))[CmdAttr.DEST]
    assert find_attr(data, nest[0], nest[1], DestAttr.TUN_PORT) == struct.pack(">H", 6080) == b"\x17\xc0"
    assert find_attr(data, nest[0], nest[1], DestAttr.TUN_TYPE) == b"\x01"
    assert find_attr(data, nest[0], nest[1], DestAttr.TUN_FLAGS) == struct.pack("=H", TUN_F_CSUM)
    dest = roundtrip(msg).get_attr("IPVS_CMD_ATTR_DEST")
    assert dest.get_attr("IPVS_DEST_ATTR_FWD_METHOD") == 2
    assert dest.get_attr("IPVS_DEST_ATTR_WEIGHT") == 0
    assert dest.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY") == socket.AF_INET


def test_non_tunnel_server_sends_no_tunnel_options_and_delete_sends_only_the_key() -> None:
    server = RealServer("fd00::2", 8080, family="inet6", forward="masq", weight=65535, upper_threshold=9, lower_threshold=3)
    full = _dest_sent(server, full=True)
    assert full["IPVS_DEST_ATTR_WEIGHT"] == 65535
    assert (full["IPVS_DEST_ATTR_U_THRESH"], full["IPVS_DEST_ATTR_L_THRESH"]) == (9, 3)
    assert not any(name.startswith("IPVS_DEST_ATTR_TUN_") for name in full)
    key_only = _dest_sent(server, full=False)
    assert set(key_only) == {"IPVS_DEST_ATTR_ADDR", "IPVS_DEST_ATTR_PORT", "IPVS_DEST_ATTR_ADDR_FAMILY"}
    assert key_only["IPVS_DEST_ATTR_ADDR"] == socket.inet_pton(socket.AF_INET6, "fd00::2")


def _dest_sent(server: RealServer, full: bool) -> dict[str, Any]:
    """The DEST nest kpctl packs, as the independent decoder reads it."""
    nest = roundtrip(request(Cmd.DEL_DEST, [("IPVS_CMD_ATTR_DEST", codec.dest_nest(server, full))]))
    return dict(nest.get_attr("IPVS_CMD_ATTR_DEST")["attrs"])


def test_timeouts_leave_out_zero_values() -> None:
    decoded = roundtrip(request(Cmd.SET_CONFIG, codec.timeout_attrs(Timeouts(900, 0, 60))))
    assert decoded.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP") == 900
    assert decoded.get_attr("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN") is None
    assert decoded.get_attr("IPVS_CMD_ATTR_TIMEOUT_UDP") == 60


def test_daemon_request() -> None:
    daemon = SyncDaemon("backup", "eth0", syncid=7, sync_maxlen=1400, mcast_group="239.1.2.3", mcast_port=8848, mcast_ttl=2)
    req = request(Cmd.NEW_DAEMON, [("IPVS_CMD_ATTR_DAEMON", codec.daemon_attrs(daemon))])
    attrs = roundtrip(req).get_attr("IPVS_CMD_ATTR_DAEMON")
    assert attrs.get_attr("IPVS_DAEMON_ATTR_STATE") == 2
    assert attrs.get_attr("IPVS_DAEMON_ATTR_MCAST_IFN") == "eth0"
    assert attrs.get_attr("IPVS_DAEMON_ATTR_SYNC_ID") == 7
    assert attrs.get_attr("IPVS_DAEMON_ATTR_SYNC_MAXLEN") == 1400
    assert attrs.get_attr("IPVS_DAEMON_ATTR_MCAST_GROUP") == "239.1.2.3"
    assert attrs.get_attr("IPVS_DAEMON_ATTR_MCAST_PORT") == 8848
    assert attrs.get_attr("IPVS_DAEMON_ATTR_MCAST_TTL") == 2
    assert codec.decode_daemon(payload(reference(req))) == daemon
    v6 = SyncDaemon("master", "eth1", syncid=0, mcast_group="ff02::1:2")
    assert codec.decode_daemon(payload(reference(request(Cmd.NEW_DAEMON, [
        ("IPVS_CMD_ATTR_DAEMON", codec.daemon_attrs(v6))])))) == v6


def test_netlink_header_of_an_encoded_request() -> None:
    data = encoded(request(Cmd.FLUSH), flags=0x5, seq=42)
    length, kind, flags, seq, pid = genl.NLMSGHDR.unpack_from(data, 0)
    assert (length, kind, flags, seq, pid) == (len(data), FAMILY_ID, 0x5, 42, 0)
    assert genl.GENLMSGHDR.unpack_from(data, 16) == (Cmd.FLUSH, 1, 0)


# -- replies (built as the kernel builds them) -------------------------------------------------
STATS32 = {"attrs": [("IPVS_STATS_ATTR_CONNS", 5), ("IPVS_STATS_ATTR_INPKTS", 6), ("IPVS_STATS_ATTR_OUTPKTS", 7),
                     ("IPVS_STATS_ATTR_INBYTES", 2**33), ("IPVS_STATS_ATTR_OUTBYTES", 9), ("IPVS_STATS_ATTR_CPS", 1),
                     ("IPVS_STATS_ATTR_INPPS", 2), ("IPVS_STATS_ATTR_OUTPPS", 3), ("IPVS_STATS_ATTR_INBPS", 4),
                     ("IPVS_STATS_ATTR_OUTBPS", 5)]}
STATS64 = {"attrs": [("IPVS_STATS_ATTR_CONNS", 2**40), ("IPVS_STATS_ATTR_INPKTS", 2**41),
                     ("IPVS_STATS_ATTR_OUTPKTS", 2**42), ("IPVS_STATS_ATTR_INBYTES", 2**43),
                     ("IPVS_STATS_ATTR_OUTBYTES", 2**44), ("IPVS_STATS_ATTR_CPS", 11), ("IPVS_STATS_ATTR_INPPS", 12),
                     ("IPVS_STATS_ATTR_OUTPPS", 13), ("IPVS_STATS_ATTR_INBPS", 14), ("IPVS_STATS_ATTR_OUTBPS", 15)]}


def _service(reply: bytes) -> tuple[VirtualService, bytes]:
    """The listing's read of a GET_SERVICE reply: a VirtualService (no servers), and its raw key."""
    return ipvs_dump.read_service(reply)


def _dest(reply: bytes, service_af: int) -> RealServer:
    return ipvs_dump.read_server(reply, 0, len(reply), service_af)


def kernel_service_reply(attrs: list[tuple[str, Any]]) -> bytes:
    msg = request(Cmd.NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", {"attrs": attrs})])
    return payload(reference(msg, flags=0x2))


def test_decode_service_prefers_stats64_and_reads_every_field() -> None:
    reply = kernel_service_reply([
        ("IPVS_SVC_ATTR_AF", socket.AF_INET6), ("IPVS_SVC_ATTR_PROTOCOL", 132),
        ("IPVS_SVC_ATTR_ADDR", addr16("inet6", "2001:db8::10")), ("IPVS_SVC_ATTR_PORT", 8443),
        ("IPVS_SVC_ATTR_SCHED_NAME", "mh"), ("IPVS_SVC_ATTR_PE_NAME", "sip"),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": SVC_F_PERSISTENT | SVC_F_HASHED | SVC_F_ONEPACKET, "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", 600), ("IPVS_SVC_ATTR_NETMASK", 64),
        ("IPVS_SVC_ATTR_STATS", STATS32), ("IPVS_SVC_ATTR_STATS64", STATS64),
    ])
    service, raw_key = _service(reply)
    assert service == VirtualService(
        family="inet6", protocol="sctp", address="2001:db8::10", port=8443, scheduler="mh", pe_name="sip",
        flags=SVC_F_PERSISTENT | SVC_F_HASHED | SVC_F_ONEPACKET, timeout=600, netmask=64,
        stats=Stats(2**40, 2**41, 2**42, 2**43, 2**44, 11, 12, 13, 14, 15))
    # the identifying attributes are re-sent verbatim in the GET_DEST dump request
    expected = request(Cmd.GET_DEST, [("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(service.key))])
    independent = request(Cmd.GET_DEST, [("IPVS_CMD_ATTR_SERVICE", reference_key_attrs(service.key))])
    assert codec.dest_dump_body(raw_key) == payload(encoded(expected)) == payload(reference(independent))


def test_decode_service_falls_back_to_32bit_stats_and_reads_ipv4_netmask() -> None:
    reply = kernel_service_reply([
        ("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_PROTOCOL", socket.IPPROTO_UDP),
        ("IPVS_SVC_ATTR_ADDR", addr16("inet", "10.254.0.10")), ("IPVS_SVC_ATTR_PORT", 53),
        ("IPVS_SVC_ATTR_SCHED_NAME", "rr"), ("IPVS_SVC_ATTR_FLAGS", {"flags": SVC_F_HASHED, "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", 0), ("IPVS_SVC_ATTR_NETMASK", encode_netmask("inet", 0xFFFF0000)),
        ("IPVS_SVC_ATTR_STATS", STATS32),
    ])
    service, _ = _service(reply)
    assert (service.family, service.protocol, service.address, service.port) == ("inet", "udp", "10.254.0.10", 53)
    assert service.netmask == 0xFFFF0000 and service.pe_name == ""
    assert service.stats == Stats(5, 6, 7, 2**33, 9, 1, 2, 3, 4, 5)


def test_decode_fwmark_service() -> None:
    reply = kernel_service_reply([
        ("IPVS_SVC_ATTR_AF", socket.AF_INET), ("IPVS_SVC_ATTR_FWMARK", 0x4000),
        ("IPVS_SVC_ATTR_SCHED_NAME", "wlc"), ("IPVS_SVC_ATTR_FLAGS", {"flags": 2, "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", 0), ("IPVS_SVC_ATTR_NETMASK", 0xFFFFFFFF),
    ])
    service, raw_key = _service(reply)
    assert (service.fwmark, service.protocol, service.address, service.port) == (0x4000, None, None, 0)
    assert service.key == ServiceKey("inet", None, None, 0, 0x4000)
    assert genl.parse_attrs(raw_key, 0, len(raw_key)).keys() == {SvcAttr.AF, SvcAttr.FWMARK}


def kernel_dest_reply(attrs: list[tuple[str, Any]]) -> bytes:
    msg = request(Cmd.NEW_DEST, [("IPVS_CMD_ATTR_DEST", {"attrs": attrs})])
    return payload(reference(msg, flags=0x2))


def test_decode_dest_of_another_family_with_tunnel_info() -> None:
    reply = kernel_dest_reply([
        ("IPVS_DEST_ATTR_ADDR", addr16("inet6", "fd00::5")), ("IPVS_DEST_ATTR_PORT", 80),
        ("IPVS_DEST_ATTR_FWD_METHOD", 2), ("IPVS_DEST_ATTR_WEIGHT", 65535), ("IPVS_DEST_ATTR_TUN_TYPE", 1),
        ("IPVS_DEST_ATTR_TUN_PORT", 6080), ("IPVS_DEST_ATTR_TUN_FLAGS", 2),
        ("IPVS_DEST_ATTR_U_THRESH", 100), ("IPVS_DEST_ATTR_L_THRESH", 10), ("IPVS_DEST_ATTR_ACTIVE_CONNS", 3),
        ("IPVS_DEST_ATTR_INACT_CONNS", 4), ("IPVS_DEST_ATTR_PERSIST_CONNS", 5),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", socket.AF_INET6), ("IPVS_DEST_ATTR_STATS", STATS32),
        ("IPVS_DEST_ATTR_STATS64", STATS64),
    ])
    server = _dest(reply, socket.AF_INET)
    assert server == RealServer(
        address="fd00::5", port=80, family="inet6", forward="tunnel", weight=65535, upper_threshold=100,
        lower_threshold=10, active_conns=3, inactive_conns=4, persistent_conns=5, tun_type="gue", tun_port=6080,
        tun_flags=2, stats=Stats(2**40, 2**41, 2**42, 2**43, 2**44, 11, 12, 13, 14, 15))


def test_decode_dest_without_address_family_uses_the_service_family() -> None:
    reply = kernel_dest_reply([
        ("IPVS_DEST_ATTR_ADDR", addr16("inet", "10.1.2.3")), ("IPVS_DEST_ATTR_PORT", 8080),
        ("IPVS_DEST_ATTR_FWD_METHOD", 3), ("IPVS_DEST_ATTR_WEIGHT", 0),
    ])
    server = _dest(reply, socket.AF_INET)
    assert (server.address, server.port, server.family, server.forward, server.weight) == ("10.1.2.3", 8080, "inet", "route", 0)
    assert server.stats == Stats()


def test_decode_info_and_timeouts() -> None:
    info = ipvs_info_msg()
    info["cmd"] = Cmd.SET_INFO
    info["version"] = 1
    info["attrs"] = [("IPVS_INFO_ATTR_VERSION", 0x010201), ("IPVS_INFO_ATTR_CONN_TAB_SIZE", 4096)]
    info["header"]["type"] = FAMILY_ID
    info.encode()
    decoded = codec.decode_info(payload(bytes(info.data)))
    assert (decoded.version, decoded.conn_table_size) == ("1.2.1", 4096)
    reply = request(Cmd.SET_CONFIG, codec.timeout_attrs(Timeouts(900, 120, 300)))
    assert codec.decode_timeouts(payload(reference(reply))) == Timeouts(900, 120, 300)


def test_addresses_are_the_16_byte_union_decoded_per_family() -> None:
    assert addr16("inet", "192.0.2.1") == bytes([192, 0, 2, 1]) + bytes(12)
    server = _dest(kernel_dest_reply([("IPVS_DEST_ATTR_ADDR", addr16("inet6", "::ffff:1.2.3.4")),
                                      ("IPVS_DEST_ATTR_PORT", 80), ("IPVS_DEST_ATTR_ADDR_FAMILY", socket.AF_INET6)]),
                   socket.AF_INET)
    assert (server.address, server.family) == ("::ffff:1.2.3.4", "inet6")


def test_parse_attrs_follows_4_byte_alignment_and_masks_flag_bits() -> None:
    data = genl.pack_attr(1, b"\x01") + genl.pack_attr(2 | genl.NLA_F_NESTED, b"abcdef") + genl.pack_attr(3, b"")
    attrs = genl.parse_attrs(data, 0, len(data))
    assert sorted(attrs) == [1, 2, 3]
    assert genl.attr_bytes(data, attrs, 2) == b"abcdef"
    assert genl.attr_uint(data, attrs, 1) == 1
    assert genl.raw_attr(data, attrs, 2) == genl.pack_attr(2 | genl.NLA_F_NESTED, b"abcdef")
