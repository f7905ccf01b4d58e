"""The live list path's reader (kpctl.backends.ipvs_dump) against kernel-shaped replies on a fake socket.

Replies are built the way Linux 6.1 writes them (ip_vs_genl_fill_service / _fill_dest), and in
other shapes (attributes missing, reordered, older kernels without STATS64 or tunnel
attributes): a learnt layout must read every message as walking its attributes does, and the
backend's table must be the table the replies were made from.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
import struct
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from kpctl.backends import genl, ipvs_dump
from kpctl.backends.ipvs_messages import (
    FAMILY_CODES, PROTOCOL_CODES, CmdAttr, DestAttr, SvcAttr, encode_netmask,
)
from kpctl.backends.ipvs_netlink import IPVSNetlink
from kpctl.errors import KernelError
from kpctl.model.ipvs import FORWARD_CODES, TUN_TYPE_CODES, IPVSInfo, IPVSTable, RealServer, Stats, VirtualService
from tests.unit.ipvs_pyroute2 import addr16

FAMILY_ID = 0x22
HDR = struct.Struct("=IHHII")
U16, U32, U64, BE16 = (struct.Struct(f) for f in ("=H", "=I", "=Q", ">H"))


def attr(kind: int, payload: bytes) -> bytes:
    return genl.pack_attr(kind, payload)


def stats_nest(stats: Stats, wide: bool) -> bytes:
    values = (stats.conns, stats.inpkts, stats.outpkts, stats.inbytes, stats.outbytes, stats.cps, stats.inpps,
              stats.outpps, stats.inbps, stats.outbps)
    if not wide:  # the legacy nest: 32-bit counters except the byte counts
        return b"".join(attr(i, U64.pack(v) if i in (4, 5) else U32.pack(v & 0xFFFFFFFF))
                        for i, v in enumerate(values, 1))
    return b"".join(attr(i, U64.pack(v)) for i, v in enumerate(values, 1))


def service_attrs(svc: VirtualService, stats64: bool = True) -> list[bytes]:
    """ip_vs_genl_fill_service's attributes, in its order."""
    parts = [attr(SvcAttr.AF, U16.pack(FAMILY_CODES[svc.family]))]
    if svc.fwmark:
        parts.append(attr(SvcAttr.FWMARK, U32.pack(svc.fwmark)))
    else:
        parts += [attr(SvcAttr.PROTOCOL, U16.pack(PROTOCOL_CODES[svc.protocol or "tcp"])),
                  attr(SvcAttr.ADDR, addr16(svc.family, svc.address or "")), attr(SvcAttr.PORT, BE16.pack(svc.port))]
    parts.append(attr(SvcAttr.SCHED_NAME, svc.scheduler.encode() + b"\0"))
    if svc.pe_name:
        parts.append(attr(SvcAttr.PE_NAME, svc.pe_name.encode() + b"\0"))
    parts += [attr(SvcAttr.FLAGS, struct.pack("=II", svc.flags, 0xFFFFFFFF)), attr(SvcAttr.TIMEOUT, U32.pack(svc.timeout)),
              attr(SvcAttr.NETMASK, U32.pack(encode_netmask(svc.family, svc.netmask))),
              attr(SvcAttr.STATS, stats_nest(svc.stats, False))]
    if stats64:
        parts.append(attr(SvcAttr.STATS64, stats_nest(svc.stats, True)))
    return parts


def dest_attrs(server: RealServer, stats64: bool = True, tunnel: bool = True, family: bool = True) -> list[bytes]:
    """ip_vs_genl_fill_dest's attributes, in its order (older kernels: no tunnel / family / STATS64)."""
    parts = [attr(DestAttr.ADDR, addr16(server.family, server.address)), attr(DestAttr.PORT, BE16.pack(server.port)),
             attr(DestAttr.FWD_METHOD, U32.pack(FORWARD_CODES[server.forward])), attr(DestAttr.WEIGHT, U32.pack(server.weight))]
    if tunnel:
        parts += [attr(DestAttr.TUN_TYPE, bytes([TUN_TYPE_CODES[server.tun_type]])),
                  attr(DestAttr.TUN_PORT, BE16.pack(server.tun_port)), attr(DestAttr.TUN_FLAGS, U16.pack(server.tun_flags))]
    parts += [attr(kind, U32.pack(value)) for kind, value in (
        (DestAttr.U_THRESH, server.upper_threshold), (DestAttr.L_THRESH, server.lower_threshold),
        (DestAttr.ACTIVE_CONNS, server.active_conns), (DestAttr.INACT_CONNS, server.inactive_conns),
        (DestAttr.PERSIST_CONNS, server.persistent_conns))]
    if family:
        parts.append(attr(DestAttr.ADDR_FAMILY, U16.pack(FAMILY_CODES[server.family])))
    parts.append(attr(DestAttr.STATS, stats_nest(server.stats, False)))
    if stats64:
        parts.append(attr(DestAttr.STATS64, stats_nest(server.stats, True)))
    return parts


def payload(cmd: int, nest: int, parts: list[bytes]) -> bytes:
    return genl.GENLMSGHDR.pack(cmd, 1, 0) + attr(nest, b"".join(parts))


class KernelSocket:
    """Answers GET_INFO, the GET_SERVICE dump and GET_DEST dumps from prepared payloads, in chunks."""

    def __init__(self, info: bytes, services: list[bytes], dests: dict[bytes, list[bytes]], chunk: int = 4096,
                 refuse: dict[bytes, int] | None = None, noise: bool = False) -> None:
        self.info, self.services, self.dests, self.chunk = info, services, dests, chunk
        self.refuse, self.noise = refuse or {}, noise
        self.datagrams: list[bytes] = []

    def send(self, data: bytes) -> int:
        _length, _kind, flags, seq, _pid = HDR.unpack_from(data, 0)
        cmd = data[16]
        if cmd == 15:
            replies, end = [self.info], HDR.pack(36, 2, 0x100, seq, 9) + bytes(4) + data[:16]
        elif cmd == 4:
            replies, end = self.services, HDR.pack(20, 3, 2, seq, 9) + bytes(4)
        else:
            key_span = genl.parse_attrs(data, 20, len(data))[CmdAttr.SERVICE]
            key = data[key_span[0]:key_span[1]]
            if key in self.refuse:
                self.datagrams.append(HDR.pack(36, 2, 0, seq, 9) + struct.pack("=i", -self.refuse[key]) + data[:16])
                return len(data)
            replies, end = self.dests[key], HDR.pack(20, 3, 2, seq, 9) + bytes(4)
        messages = [HDR.pack(16 + len(p), FAMILY_ID, 2, seq, 9) + p for p in replies]
        if self.noise:  # a stray message of another request first: skipped
            messages.insert(0, HDR.pack(16 + len(replies[0]) if replies else 20, FAMILY_ID, 2, seq + 1000, 9)
                            + (replies[0] if replies else bytes(4)))
        current = b""
        for message in messages + [end]:
            if current and len(current) + len(message) > self.chunk:
                self.datagrams.append(current)
                current = b""
            current += message
        self.datagrams.append(current)
        return len(data)

    def recv_into(self, buf: bytearray) -> int:
        data = self.datagrams.pop(0)
        buf[:len(data)] = data
        return len(data)

    def close(self) -> None:
        pass


def backend_over(sock: KernelSocket) -> IPVSNetlink:
    backend = IPVSNetlink()
    backend._genl._sock = sock  # type: ignore[assignment]
    backend._genl._family_id = FAMILY_ID
    return backend


def kernel_of(table: IPVSTable, rng: random.Random, **options: Any) -> KernelSocket:
    info = genl.GENLMSGHDR.pack(14, 1, 0) + attr(1, U32.pack(0x010201)) + attr(2, U32.pack(4096))
    services, dests = [], {}
    for svc in table.services:
        parts = service_attrs(svc, stats64=options.get("stats64", True))
        services.append(payload(4, CmdAttr.SERVICE, parts))
        key = b"".join(parts[:2 if svc.fwmark else 4])
        shapes = options.get("shapes", [{}])
        dests[key] = [payload(8, CmdAttr.DEST, dest_attrs(server, **rng.choice(shapes))) for server in svc.servers]
    return KernelSocket(info, services, dests, chunk=options.get("chunk", 4096), noise=options.get("noise", False))


_V4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_V6 = st.binary(min_size=16, max_size=16).map(lambda b: str(ipaddress.IPv6Address(b)))
_U32 = st.integers(0, 2**32 - 1)
_STATS = st.builds(Stats, *[st.integers(0, 2**32 - 1)] * 3, *[st.integers(0, 2**64 - 1)] * 2,
                   *[st.integers(0, 2**32 - 1)] * 5)


@st.composite
def kernel_servers(draw: Any, family: str) -> RealServer:
    fam = draw(st.sampled_from([family, family, "inet6" if family == "inet" else "inet"]))
    return RealServer(draw(_V4 if fam == "inet" else _V6), draw(st.integers(0, 65535)), fam,
                      draw(st.sampled_from(sorted(FORWARD_CODES))), draw(_U32), draw(_U32), draw(_U32), draw(_U32),
                      draw(_U32), draw(_U32), draw(st.sampled_from(sorted(TUN_TYPE_CODES))), draw(st.integers(0, 65535)),
                      draw(st.integers(0, 65535)), draw(_STATS))


@st.composite
def kernel_services(draw: Any) -> VirtualService:
    family = draw(st.sampled_from(["inet", "inet", "inet6"]))
    fwmark = draw(st.sampled_from([0, 0, draw(st.integers(1, 2**32 - 1))]))
    return VirtualService(
        family, None if fwmark else draw(st.sampled_from(["tcp", "udp", "sctp"])),
        None if fwmark else draw(_V4 if family == "inet" else _V6), 0 if fwmark else draw(st.integers(0, 65535)), fwmark,
        draw(st.sampled_from(["rr", "wlc", "lblcr", "sh"])), draw(_U32), draw(_U32),
        draw(st.integers(1, 128)) if family == "inet6" else draw(_U32), draw(st.sampled_from(["", "sip"])),
        tuple(draw(st.lists(kernel_servers(family), max_size=5))), draw(_STATS))


kernel_tables = st.builds(lambda s: IPVSTable(IPVSInfo("1.2.1", 4096), tuple(s)),
                          st.lists(kernel_services(), max_size=6, unique_by=lambda s: s.key))  # as the kernel's
SHAPES = [{}, {"stats64": False}, {"tunnel": False}, {"family": False}, {"tunnel": False, "stats64": False}]


@settings(max_examples=40)
@given(kernel_tables, st.integers(0, 2**32), st.sampled_from([400, 4096, 65536]), st.booleans())
def test_table_is_the_table_the_kernel_replies_describe(table: IPVSTable, seed: int, chunk: int, noise: bool) -> None:
    sock = kernel_of(table, random.Random(seed), chunk=chunk, noise=noise)
    assert backend_over(sock).table() == table


@settings(max_examples=40)
@given(kernel_tables, st.integers(0, 2**32))
def test_older_and_mixed_reply_shapes_read_as_walking_each_reply(table: IPVSTable, seed: int) -> None:
    rng = random.Random(seed)
    sock = kernel_of(table, rng, shapes=SHAPES, stats64=rng.random() < 0.5, chunk=rng.choice([300, 4096]))
    walked = []
    for service_payload in sock.services:
        service, key = ipvs_dump.read_service(service_payload)
        af = FAMILY_CODES.get(service.family, socket.AF_INET)
        walked.append(service.with_servers(tuple(ipvs_dump.read_server(p, 0, len(p), af) for p in sock.dests[key])))
    assert backend_over(sock).table() == IPVSTable(IPVSInfo("1.2.1", 4096), tuple(walked))


def _messages(parts_list: list[list[bytes]], seq: int = 5) -> tuple[bytearray, list[int]]:
    buf, offsets = bytearray(), []
    for parts in parts_list:
        body = payload(8, CmdAttr.DEST, parts)
        offsets.append(len(buf))
        buf += HDR.pack(16 + len(body), FAMILY_ID, 2, seq, 9) + body
    return buf, offsets


@settings(max_examples=60)
@given(st.lists(kernel_servers("inet"), min_size=2, max_size=4), st.integers(0, 2**32), st.sampled_from([2, 10]))
def test_a_learnt_layout_reads_each_message_of_its_shape_as_walking_does(servers: list[RealServer], seed: int,
                                                                         service_af: int) -> None:
    rng = random.Random(seed)
    shape = rng.choice(SHAPES)
    parts = [dest_attrs(s, **shape) for s in servers]
    if rng.random() < 0.5:  # any order of attributes, the same for every message
        order = list(range(len(parts[0])))
        rng.shuffle(order)
        parts = [[p[i] for i in order] for p in parts]
    buf, offsets = _messages(parts)
    layout = ipvs_dump.Layout.learn(buf, offsets[0], CmdAttr.DEST, ipvs_dump._DEST_WANTED, ipvs_dump._DEST_STATS)
    assert layout is not None
    for offset, next_offset in zip(offsets, offsets[1:] + [len(buf)]):
        walked = ipvs_dump.read_server(buf, offset + 16, next_offset, service_af)
        same_shape = layout.headers.unpack_from(buf, offset) == layout.expected(5)
        same_sizes = [len(p) for p in parts[offsets.index(offset)]] == [len(p) for p in parts[0]]
        assert same_shape == same_sizes
        if same_shape:
            assert ipvs_dump._server(layout.values(buf, offset), service_af) == walked
        assert layout.headers.unpack_from(buf, offset) != layout.expected(6)  # another request's reply never matches


def test_messages_of_another_shape_are_walked_and_learnt() -> None:
    v4 = RealServer("10.0.0.1", 80, weight=3)
    v6 = RealServer("fd00::1", 443, family="inet6", forward="route")
    table = IPVSTable(IPVSInfo("1.2.1", 4096), (
        VirtualService(address="10.1.1.1", port=80, scheduler="rr", servers=(v4, v6, v4.__class__("10.0.0.2", 81))),
        VirtualService(protocol=None, fwmark=7, scheduler="lblcr", pe_name="sip", servers=(v6,)),
        VirtualService(family="inet6", address="fd00::10", port=80, scheduler="wlc", servers=(v6,)),
    ))
    assert backend_over(kernel_of(table, random.Random(1), chunk=300)).table() == table


def test_a_refused_dest_dump_names_the_service() -> None:
    svc = VirtualService(address="10.1.1.1", port=80, scheduler="rr")
    sock = kernel_of(IPVSTable(IPVSInfo("1.2.1", 4096), (svc,)), random.Random(1))
    sock.refuse = {next(iter(sock.dests)): errno.ESRCH}
    with pytest.raises(KernelError, match="cannot list the real servers of 10.1.1.1:80/tcp"):
        backend_over(sock).table()


def test_malformed_attributes_are_not_learnt() -> None:
    parts = dest_attrs(RealServer("10.0.0.1", 80))
    parts[0] = attr(DestAttr.ADDR, socket.inet_aton("10.0.0.1"))  # 4 bytes, not the 16-byte union
    buf, offsets = _messages([parts])
    assert ipvs_dump.Layout.learn(buf, offsets[0], CmdAttr.DEST, ipvs_dump._DEST_WANTED, ipvs_dump._DEST_STATS) is None


def test_the_live_list_path_imports_no_pyroute2_rich_yaml_or_tabulate() -> None:
    import subprocess
    import sys

    code = ("import sys, kpctl.cli.ipvs, kpctl.backends.ipvs_netlink, kpctl.backends.ipvs_dump, kpctl.cli.ipvs_views; "
            "print(sorted(m for m in ('pyroute2', 'rich', 'yaml', 'tabulate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
