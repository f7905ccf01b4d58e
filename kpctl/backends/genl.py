"""A minimal netlink transport: one socket, request/ack, dumps, fast attribute walking; generic
netlink's families (IPVS, ipset) resolved by name.

Requests are packed by the callers (``ipvs_codec``, ``ipvs_dump``, ``ipset_netlink``); replies are
walked with ``struct`` and only the attributes a caller asks for are decoded.  Kernel refusals
surface as :class:`NetlinkRefusal` carrying the errno; callers translate them into kpctl's
named errors.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

NETLINK_GENERIC = 16
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLA_TYPE_MASK = 0x3FFF
NLA_F_NESTED = 0x8000

NLMSGHDR = struct.Struct("=IHHII")
GENLMSGHDR = struct.Struct("=BBH")
REQUEST_HEAD = struct.Struct("=IHHIIBBH")  # NLMSGHDR and GENLMSGHDR of a request, packed in one call
NLAHDR = struct.Struct("=HH")
U8 = struct.Struct("=B")
U16 = struct.Struct("=H")
BE16 = struct.Struct(">H")
U32 = struct.Struct("=I")
U64 = struct.Struct("=Q")
I32 = struct.Struct("=i")
RECV_BUFFER = 1 << 20
UINT_BY_SIZE = {1: U8, 2: U16, 4: U32, 8: U64}


class NetlinkRefusal(Exception):
    """The kernel answered a request with a negative errno."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))
        self.errno = code


Attrs = dict[int, tuple[int, int]]


def parse_attrs(buf: bytes, start: int, end: int) -> Attrs:
    """Index the netlink attributes in buf[start:end]: type -> (payload start, payload end)."""
    found: Attrs = {}
    while start + 4 <= end:
        length, kind = NLAHDR.unpack_from(buf, start)
        if length < 4:
            break
        found[kind & NLA_TYPE_MASK] = (start + 4, start + length)
        start += (length + 3) & ~3
    return found


def attr_bytes(buf: bytes, attrs: Attrs, kind: int, default: bytes = b"") -> bytes:
    span = attrs.get(kind)
    return buf[span[0]:span[1]] if span else default


def attr_str(buf: bytes, attrs: Attrs, kind: int) -> str:
    return attr_bytes(buf, attrs, kind).split(b"\0", 1)[0].decode("ascii", "replace")


def attr_uint(buf: bytes, attrs: Attrs, kind: int, default: int = 0) -> int:
    """An unsigned attribute in host order, its width taken from its length (1/2/4/8)."""
    span = attrs.get(kind)
    if span is None:
        return default
    width = UINT_BY_SIZE.get(span[1] - span[0])
    return default if width is None else int(width.unpack_from(buf, span[0])[0])


def raw_attr(buf: bytes, attrs: Attrs, kind: int) -> bytes:
    """The whole attribute (header and padded payload) as found in buf, for re-sending."""
    span = attrs.get(kind)
    if span is None:
        return b""
    start = span[0] - 4
    end = start + ((span[1] - start + 3) & ~3)
    return buf[start:end].ljust(end - start, b"\0")


def pack_attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return NLAHDR.pack(length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


class NetlinkSocket:
    """One netlink socket of ``protocol`` (NETLINK_GENERIC, NETLINK_ROUTE…), opened on first use:
    requests sent with their acknowledgement or dump awaited, replies walked in one buffer."""

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        self._sock: socket.socket | None = None
        self._seq = 0
        # One receive buffer, reused: a fresh 1 MiB bytes object per recv() costs an
        # mmap/munmap pair each time, which dominated listing time under emulation.
        self._buffer = bytearray(RECV_BUFFER)

    # -- plumbing -------------------------------------------------------------------------
    @property
    def buffer(self) -> bytearray:
        """The receive buffer, for callers that walk replies in place (valid until the next receive)."""
        return self._buffer

    def connected(self) -> socket.socket:
        """The socket (opened and bound on first use), for callers that send and receive themselves."""
        return self._socket()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, self.protocol)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
                sock.bind((0, 0))
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def exchange(self, msg_type: int, body: bytes, flags: int) -> list[bytes]:
        """Send one message (nlmsghdr added here) and collect the reply payloads until ACK/DONE."""
        seq = self.next_seq()
        header = NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags, seq, 0)
        return self.send_encoded(header + body, seq)

    def send_encoded(self, data: bytes, seq: int) -> list[bytes]:
        """Send a message already encoded (with nlmsghdr, sequence ``seq``) and collect replies.

        Non-dump requests must carry NLM_F_ACK: the ACK is what ends the wait.
        """
        sock = self._socket()
        sock.send(data)
        return list(self._replies(sock, seq))

    def send_batch(self, data: bytes, seqs: list[int]) -> dict[int, int]:
        """Send several requests (each with NLM_F_ACK) in one send; each one's errno (0: done) by sequence.

        The kernel runs every message of the buffer in order, going on past a refused one.
        """
        sock = self._socket()
        sock.send(data)
        waiting = set(seqs)
        codes: dict[int, int] = {}
        buf = self._buffer
        while waiting:
            size = sock.recv_into(buf)
            offset = 0
            while offset + NLMSGHDR.size <= size:
                length, kind, _flags, msg_seq, _pid = NLMSGHDR.unpack_from(buf, offset)
                if length < NLMSGHDR.size:
                    break
                if kind == NLMSG_ERROR and msg_seq in waiting:
                    codes[msg_seq] = -int(I32.unpack_from(buf, offset + NLMSGHDR.size)[0])
                    waiting.discard(msg_seq)
                offset += (length + 3) & ~3
        return codes

    def _replies(self, sock: socket.socket, seq: int) -> Iterator[bytes]:
        """Payloads (what follows the nlmsghdr) of every reply to ``seq``, up to its ACK or DONE."""
        view = memoryview(self._buffer)
        while True:
            size = sock.recv_into(self._buffer)
            chunk = bytes(view[:size])
            offset = 0
            finished = False
            while offset + NLMSGHDR.size <= len(chunk):
                length, kind, _flags, msg_seq, _pid = NLMSGHDR.unpack_from(chunk, offset)
                if length < NLMSGHDR.size:
                    break
                body_start = offset + NLMSGHDR.size
                body_end = offset + length
                offset += (length + 3) & ~3
                if msg_seq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = -int(I32.unpack_from(chunk, body_start)[0])
                    if code:
                        raise NetlinkRefusal(code)
                    finished = True
                elif kind == NLMSG_DONE:
                    if body_end - body_start >= 4:
                        code = -int(I32.unpack_from(chunk, body_start)[0])
                        if code:
                            raise NetlinkRefusal(code)
                    finished = True
                else:
                    yield chunk[body_start:body_end]
            if finished:
                return


class GenlSocket(NetlinkSocket):
    """A NETLINK_GENERIC socket for one family, its id resolved on first use."""

    def __init__(self, family_name: str) -> None:
        super().__init__(NETLINK_GENERIC)
        self.family_name = family_name
        self._family_id: int | None = None

    @property
    def family_id(self) -> int:
        """The family's id; raises NetlinkRefusal(ENOENT) when the kernel has no such family."""
        if self._family_id is None:
            name = self.family_name.encode() + b"\0"
            body = GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, 1, 0) + pack_attr(CTRL_ATTR_FAMILY_NAME, name)
            replies = self.exchange(GENL_ID_CTRL, body, NLM_F_REQUEST | NLM_F_ACK)
            for reply in replies:
                attrs = parse_attrs(reply, GENLMSGHDR.size, len(reply))
                if CTRL_ATTR_FAMILY_ID in attrs:
                    self._family_id = attr_uint(reply, attrs, CTRL_ATTR_FAMILY_ID)
                    break
            else:
                raise NetlinkRefusal(errno.ENOENT)
        return self._family_id
