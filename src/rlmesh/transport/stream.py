"""Framing over a connected socket (``docs/protocol.md`` section 2): the socket transport.

:class:`Connection` sends and receives whole frames over a socket, with the reply-body mode of
the same-host region (section 10.1) when one is attached. The same-host link (section 10.2)
is a transport of its own that wraps a connection: :class:`rlmesh.transport.shmlink.ShmLink`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
from typing import Any, Final

from rlmesh.errors import (
    ConnectionLostError,
    MessageTooLargeError,
    ProtocolError,
)
from rlmesh.transport.shm import ShmRegion
from rlmesh.transport.spin import EARLY_NS, STOLEN_NS, SpinPolicy, now_ns, yield_cpu

__all__ = ["PREFIX", "SHM_FLAG", "Connection"]

PREFIX: Final = struct.Struct("<II")
SHM_FLAG: Final = 1 << 31
"""Bit of ``header_len``: may use / does use the shared-memory region."""
_PREFIX_SIZE: Final = PREFIX.size
_pack_prefix = PREFIX.pack
_unpack_prefix = PREFIX.unpack_from
_TIMEVAL: Final = struct.Struct("@ll")
_LONGEST_TIMEOUT: Final = float(2**31 - 1)
"""Seconds (68 years): a longer bound is this one (the kernel's and ``ssl``'s limit)."""
_DONTWAIT: Final = getattr(socket, "MSG_DONTWAIT", 0)
_STAGING: Final = 64 * 1024
_BIG: Final = 1024 * 1024
"""Frame parts up to this size get their buffer at once; larger ones grow as bytes arrive."""
_READ: Final = 8 * 1024
_IOV_BATCH: Final = 512


class Connection:
    """One framed, bidirectional message stream over a connected socket.

    ``recv`` returns the header as a view into an internal buffer that stays valid until
    the next ``recv``; the body is a freshly allocated buffer
    the caller owns. Reads into the internal buffer are capped at a few KiB, so a large body
    is received straight into its own buffer instead of being copied there.

    The socket stays in blocking mode; :meth:`set_timeout` bounds each send and receive with
    ``SO_SNDTIMEO``/``SO_RCVTIMEO``, which costs no extra system call per operation. An
    expired timeout surfaces as ``BlockingIOError`` or ``TimeoutError``.
    """

    def __init__(self, sock: socket.socket, max_message_bytes: int) -> None:
        self.sock = sock
        self.max_message_bytes = max_message_bytes
        self.max_header_bytes = max_message_bytes
        """Largest header accepted (see :meth:`set_limits`)."""
        self._buf = bytearray(_STAGING)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self.spin = 0
        """The polling budget in rounds (see :mod:`rlmesh.transport.spin`); 0: block."""
        self._policy = SpinPolicy()
        self.shm: ShmRegion | None = None
        self.shm_role = ""
        """``"client"`` or ``"server"`` once a shared-memory region is attached."""
        self.peer_flag = False
        """Whether the last received frame used the region (its body, or all of it)."""
        self.single_slot = False
        """Whether the transport holds one unread frame at most (the link does)."""
        self.timeout: float | None = None
        """The bound set by :meth:`set_timeout`."""
        self.tls = isinstance(sock, ssl.SSLSocket)
        """Whether the socket is wrapped in TLS (no polling, no shared memory then)."""

    def upgrade(self, sock: socket.socket) -> None:
        """Carry on over ``sock``, this connection's socket wrapped in TLS."""
        self.sock = sock
        self.tls = True
        self.set_spin(0)

    def set_spin(self, rounds: int) -> None:
        """Poll for up to ``rounds`` rounds of about 2 µs before a receive blocks.

        The budget adapts (see :mod:`rlmesh.transport.spin`); 0 makes every receive block
        at once. Polling is off on a single CPU and over TLS.
        """
        if rounds and ((os.cpu_count() or 1) <= 1 or self.tls):
            rounds = 0  # polling would only take the CPU from the peer we wait for
        self.spin = max(int(rounds), 0)
        self._policy.set(self.spin)

    def set_timeout(self, timeout: float | None) -> None:
        """Bound every later send and receive by ``timeout`` seconds (``None``: no bound)."""
        if timeout is not None:
            timeout = min(timeout, _LONGEST_TIMEOUT)
        self.timeout = timeout
        if self.tls:  # the TLS layer needs the socket module's own timeouts
            self.sock.settimeout(timeout)
            return
        self.sock.settimeout(None)
        seconds, micros = 0, 0  # zero means "no bound" to the kernel
        if timeout is not None:
            seconds, micros = divmod(max(round(timeout * 1_000_000), 1), 1_000_000)
        tv = _TIMEVAL.pack(seconds, micros)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)

    def send(self, header: bytes, buffers: list[Any], body_len: int,
             flag: bool = False) -> None:
        """Send one frame: prefix, header, then the body pieces in order.

        With a shared-memory region attached (see :mod:`rlmesh.transport.shm`), ``flag`` on the
        client's side permits the reply to use the region; on the server's side it says the
        request permitted it, and a body that fits is written there instead of the socket.
        """
        hlen = len(header)
        if flag and self.shm is not None:
            if self.shm_role == "client":
                hlen |= SHM_FLAG
            elif body_len and body_len <= self.shm.size:
                self.shm.write(buffers)
                self.sock.sendall(_pack_prefix(hlen | SHM_FLAG, body_len) + header)
                return
        first = _pack_prefix(hlen, body_len) + header
        if buffers or self.tls:
            self._write(first, buffers)
        else:
            self.sock.sendall(first)

    def send_nowait(self, header: bytes, buffers: list[Any], body_len: int) -> bool:
        """Send one frame only if the socket takes all of it at once; never blocks.

        Safe from another thread while the owner is not using the socket (the step
        deadline's watchdog answers for a session stuck in its env). The region is not used.

        Returns:
            Whether the whole frame went out; if not, part of it may have, and the stream
            is unusable (abort it).
        """
        return self.send_bytes_nowait(b"".join([_pack_prefix(len(header), body_len), header,
                                                *buffers]))

    def send_bytes_nowait(self, data: bytes) -> bool:
        """Send ``data`` only if the socket takes all of it at once (see :meth:`send_nowait`)."""
        try:
            if self.tls:  # (an SSL socket takes no flags; a closing connection may leave it so)
                self.sock.settimeout(0.0)
                sent = self.sock.send(data)
            else:
                sent = self.sock.send(data, _DONTWAIT)
        except (OSError, ValueError):  # would block (BlockingIOError, SSLWantWriteError), ...
            return False
        return bool(sent == len(data))

    def _write(self, first: bytes, buffers: list[Any]) -> None:
        if self.tls:  # an SSL socket has no sendmsg: one record stream of the joined frame
            self.sock.sendall(b"".join([first, *buffers]) if buffers else first)
            return
        if not buffers:
            self.sock.sendall(first)
            return
        parts: list[Any] = [first, *buffers]
        while parts:
            sent = self.sock.sendmsg(parts[:_IOV_BATCH])
            # Drop what went out; keep the unsent tail of a partly sent piece.
            while parts and sent:
                size = memoryview(parts[0]).nbytes
                if sent >= size:
                    sent -= size
                    parts.pop(0)
                else:
                    parts[0] = memoryview(parts[0]).cast("B")[sent:]
                    sent = 0

    def _fill(self, n: int) -> None:
        """Make at least ``n`` unread bytes available in the staging buffer."""
        start, end = self._start, self._end
        if start + n > len(self._buf):
            pending = end - start
            if n > len(self._buf):
                new = bytearray(n)
                new[:pending] = self._view[start:end]
                self._buf = new
                self._view = memoryview(new)
            else:
                self._buf[:pending] = self._view[start:end]
            self._start, start, end = 0, 0, pending
        view, recv_into, limit = self._view, self.sock.recv_into, len(self._buf)
        blocked_at = 0
        if self.spin and end - start < n:
            started = now_ns()
            budget = self._policy.start()
            if budget:
                end = self._poll(end, start + n, budget)
            if end - start < n:
                blocked_at = started  # (the policy learns how long the peer took, poll too)
        while end - start < n:
            got = recv_into(view[end : min(limit, max(start + n, end + _READ))])
            if not got:
                self._end = end
                raise ConnectionLostError("the peer closed the connection")
            end += got
        self._end = end
        if blocked_at:
            self._policy.blocked(now_ns() - blocked_at)

    def _poll(self, end: int, need: int, budget: int) -> int:
        """Read without blocking for up to ``budget`` ns, yielding the CPU between polls.

        Returns the new end of the buffered data (the policy learns how it went).
        """
        view, recv_into, limit = self._view, self.sock.recv_into, len(self._buf)
        policy = self._policy
        mark = started = now_ns()
        while True:
            try:
                got = recv_into(view[end : min(limit, max(need, end + _READ))], 0, _DONTWAIT)
            except BlockingIOError:
                yield_cpu()
                now = now_ns()
                if now - mark > STOLEN_NS and (mark - started <= EARLY_NS or self._readable()) \
                        and policy.stolen_yield():  # a shared CPU: block
                    return end
                if now - started > budget:
                    policy.missed()
                    return end
                mark = now
                continue
            if not got:
                return end  # EOF: let the blocking path report it
            end += got
            if end >= need:
                policy.hit()
                return end

    def _readable(self) -> bool:
        """Whether the socket has bytes to read (asked after a long yield late in a poll)."""
        if not _DONTWAIT:
            return False  # (no non-blocking peek here)
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK | _DONTWAIT))
        except BlockingIOError:
            return False

    def set_limits(self, max_message_bytes: int, max_header_bytes: int) -> None:
        """Accept frames of up to ``max_message_bytes``, headers of up to ``max_header_bytes``.

        A server lowers both until its client has authenticated, then raises them.
        """
        self.max_message_bytes = max_message_bytes
        self.max_header_bytes = max_header_bytes

    def recv(self) -> tuple[bytes | memoryview, bytearray | None]:
        """Receive one frame.

        Returns:
            ``(header, body)``; ``body`` is ``None`` for an empty body.

        Raises:
            ConnectionLostError: If the peer closes the connection.
            MessageTooLargeError: If the frame exceeds ``max_message_bytes`` or its header
                ``max_header_bytes`` (nothing of it is allocated).

        A header or body larger than 1 MiB is received into a buffer that grows as its bytes
        arrive, never into one sized from the prefix alone.
        """
        start = self._start
        if start == self._end:
            self._start = self._end = start = 0
        if self._end - start < _PREFIX_SIZE:
            self._fill(_PREFIX_SIZE)
            start = self._start
        hlen, blen = _unpack_prefix(self._buf, start)
        flagged = hlen & SHM_FLAG
        hlen &= ~SHM_FLAG
        if hlen + blen > self.max_message_bytes or hlen > self.max_header_bytes:
            raise MessageTooLargeError(self.too_large(hlen, blen))
        if flagged and self.shm is None:
            raise ProtocolError("shared-memory flag on a connection without a region")
        self.peer_flag = bool(flagged)
        start += _PREFIX_SIZE
        self._start = start
        if self._end - start < hlen:
            if hlen > _STAGING:  # never in the staging buffer: it stays small
                large = memoryview(self._receive(start, hlen))
                return large, self._body(self._start, blen, flagged) if blen else None
            self._fill(hlen)
            start = self._start
        stop = start + hlen
        header = self._view[start:stop]
        if not blen:
            self._start = stop
            return header, None
        return header, self._body(stop, blen, flagged)

    def too_large(self, hlen: int, blen: int) -> str:
        """Why a frame of this header and body length is refused."""
        if hlen > self.max_header_bytes:
            return f"frame header of {hlen} bytes exceeds the limit of {self.max_header_bytes}"
        return f"frame of {hlen + blen} bytes exceeds the limit of {self.max_message_bytes}"

    def _body(self, stop: int, blen: int, flagged: int) -> bytearray:
        """The frame body of ``blen`` bytes after the header ending at ``stop`` in the buffer."""
        if flagged and self.shm_role == "client":  # the body waits in shared memory
            assert self.shm is not None
            if blen > self.shm.size:
                raise ProtocolError("shared-memory body larger than the region")
            self._start = stop
            return self.shm.read(blen)
        if self._end - stop >= blen:  # all of it is here already (a small body)
            self._start = stop + blen
            return bytearray(self._view[stop : stop + blen])
        return self._receive(stop, blen)

    def _receive(self, start: int, n: int) -> bytearray:
        """The next ``n`` bytes of the stream, from ``start`` in the staging buffer on.

        Up to 1 MiB, the buffer is allocated at once; beyond that it starts at 1 MiB and
        doubles as the bytes arrive, so a peer must send what it makes this side commit.
        """
        take = min(self._end - start, n)
        buf = bytearray(n if n <= _BIG else max(take, _BIG))
        if take:
            buf[:take] = self._view[start : start + take]
        self._start = start + take
        recv_into = self.sock.recv_into
        while take < n:
            if take == len(buf):
                buf += bytes(min(take, n - take))  # (calloc: pages come as they are written)
            with memoryview(buf) as view:
                while take < len(buf):
                    got = recv_into(view[take:])
                    if not got:
                        raise ConnectionLostError("the peer closed the connection mid-message")
                    take += got
        return buf

    def attach_shm(self, region: ShmRegion, role: str) -> None:
        """Let reply bodies use ``region`` from the next frame on (``role``: client or server).

        Only reply bodies travel there (protocol section 10.1); for whole frames, wrap this
        connection in a :class:`rlmesh.transport.shmlink.ShmLink` instead.
        """
        self.shm, self.shm_role = region, role

    def take_wakes(self, token: bytes) -> bool:
        """Read what the socket holds without blocking; drop leading ``token`` bytes.

        Returns:
            ``False`` if the peer has closed the connection (nothing more will come).
        """
        start, end = self._start, self._end
        if start == end:
            self._start = self._end = end = 0
        elif end == len(self._buf):  # full: move the unread bytes to the front
            self._buf[: end - start] = self._view[start:end]
            self._start, self._end, end = 0, end - start, end - start
        try:
            got = self.sock.recv_into(self._view[end:], 0, _DONTWAIT)
        except BlockingIOError:
            got = -1
        if got > 0:
            self._end = end + got
        start, end, byte = self._start, self._end, token[0]
        buf = self._buf
        while start < end and buf[start] == byte:
            start += 1
        self._start = start
        return got != 0

    def expect_marker(self, skip: bytes, marker: bytes) -> None:
        """Consume ``skip`` bytes up to and including ``marker`` (blocking, bounded)."""
        skip_byte, marker_byte = skip[0], marker[0]
        while True:
            if self._start == self._end:
                self._fill(1)
            byte = self._buf[self._start]
            self._start += 1
            if byte == marker_byte:
                return
            if byte != skip_byte:
                raise ProtocolError("unexpected byte on a shared-memory link's socket")

    def abort(self) -> None:
        """Shut the socket down without closing it, from any thread.

        A receive blocked (or spinning) in the thread that owns the connection fails soon
        after with ``ConnectionLostError``; that thread then calls :meth:`close`.
        """
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Shut down and close the socket (and unmap any region); safe to call again."""
        self.abort()
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.shm is not None:
            self.shm.close()
