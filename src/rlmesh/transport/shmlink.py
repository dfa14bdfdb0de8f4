"""Same-host signalling: whole frames and their wake-ups through shared memory.

:class:`ShmLink` is a transport that wraps a socket :class:`~rlmesh.transport.stream.Connection`
once the handshake agreed on *link* mode (protocol section 10.2). Every frame travels through
one of two slots in the region: the client writes requests into
the request slot, the server writes replies into the reply slot, and each side announces a
frame by bumping its sequence word. The reader spins on the peer's sequence word for a short,
adaptive budget (yielding the CPU between checks), then sleeps in ``poll`` on the socket. A
writer that finds the reader asleep sends it one wake-up byte over the socket; a frame too
large for its slot goes over the socket, announced in the slot and marked by a frame byte.

The socket stays open for the wake-ups, for large frames and for liveness: a peer that dies
closes it, which wakes a sleeping reader at once.

Ordering. Both sides write their data before the sequence word, and read the sequence word
before the data; x86-64 keeps stores in order and loads in order, so a reader that sees a new
sequence number sees its frame (link mode is only offered on x86-64). The sleep flag and the
sequence word form a store-then-load pair on each side, separated by a full fence (an
uncontended lock round trip, a locked instruction), so a writer cannot miss a reader that
went to sleep. Sleeps are sliced anyway, as a second line of defence.

Requests and replies strictly alternate (the client has at most one request outstanding,
see :class:`rlmesh.client.channel.Channel`), so a slot is always free when its writer needs it.
"""

from __future__ import annotations

import platform
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from rlmesh.errors import ConnectionLostError, MessageTooLargeError, ProtocolError
from rlmesh.transport.shm import ShmRegion, write_pieces
from rlmesh.transport.spin import EARLY_NS, STOLEN_NS, SpinPolicy, now_ns, yield_cpu
from rlmesh.transport.stream import Connection

__all__ = [
    "CONTROL_BYTES", "FRAME", "KIND_SLOT", "KIND_SOCKET", "KIND_STEP", "MIN_SLOT_BYTES",
    "SLOT_HEADER", "STEP_FRAME", "WAKE", "ShmLink", "fits", "request_slot_bytes", "slot_room",
    "supported",
]

WAKE: Final = b"W"
"""Socket byte: the reader was asleep and a frame is ready in its slot."""
FRAME: Final = b"F"
"""Socket byte: a frame follows on the socket (it was too large for the slot)."""
CONTROL_BYTES: Final = 4096
SLOT_HEADER: Final = struct.Struct("<IIQ")
"""Slot prefix: kind, header length, body length."""
KIND_SLOT: Final = 1
KIND_SOCKET: Final = 2
KIND_STEP: Final = 3
"""A slot step (:mod:`rlmesh.wire.slots`): no frame, values in place; only once agreed."""
STEP_FRAME: Final = memoryview(b"")
"""What :meth:`ShmLink.recv` returns as the header of a slot step (compare with ``is``).

Empty, so a reader unaware of slot steps that decodes it fails with a protocol error."""
MIN_SLOT_BYTES: Final = 4096
_MASK: Final = 0xFFFFFFFF
# Control words (uint32 indices), each on its own 64-byte cache line.
_REQ_SEQ, _REP_SEQ, _SERVER_ASLEEP, _CLIENT_ASLEEP = 0, 16, 32, 48
_CHECKS: Final = 64
"""Checks of the sequence word between two yields (about 2 µs: a frame that lands during a
yield waits for it, so yields stay rare while the peer is busy)."""
_FIRST_SLICE_MS: Final = 1
_LAST_SLICE_MS: Final = 100
_fence_lock = threading.Lock()


def supported() -> bool:
    """Whether this machine may use link mode (x86-64: stores and loads stay in order)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def _fence() -> None:
    """A full memory fence: an uncontended lock round trip executes a locked instruction."""
    _fence_lock.acquire()
    _fence_lock.release()


def request_slot_bytes(size: int) -> int:
    """Bytes of a region of ``size`` reserved for request frames (a quarter, after control)."""
    return (size - CONTROL_BYTES) // 4


def slot_room(size: int) -> tuple[int, int]:
    """Bytes of the request slot and of the reply slot in a region of ``size``."""
    request = request_slot_bytes(size)
    return request, size - CONTROL_BYTES - request


def fits(size: int) -> bool:
    """Whether a region of ``size`` bytes is large enough for link mode."""
    return request_slot_bytes(size) >= MIN_SLOT_BYTES


class ShmLink:
    """A transport: frames over a shared-memory region, for one side of one connection.

    It wraps the socket connection, which carries wake-ups, oversized frames and liveness,
    and offers the same interface (``send``, ``recv``, ``set_timeout``, ``set_spin``,
    ``abort``, ``close``...).

    Args:
        conn: The connection whose socket carries wake-ups and oversized frames (its spin
            budget is the link's).
        region: The mapped region (at least ``CONTROL_BYTES`` plus room for both slots); the
            link owns it from now on.
        role: ``"client"`` or ``"server"``.
    """

    single_slot = True
    """A slot holds one frame: a reply must be read before the next request is sent."""
    tls = False

    def __init__(self, conn: Connection, region: ShmRegion, role: str) -> None:
        self.conn = conn
        self.region = region
        self.shm = region
        self.sock: socket.socket = conn.sock
        self.max_message_bytes = conn.max_message_bytes
        self.peer_flag = False
        """Whether the last frame came through the slot (rather than the socket)."""
        if not fits(region.size):
            raise ValueError("shared-memory region too small for link mode")
        req_size = request_slot_bytes(region.size)
        self._ctl = region.view[:CONTROL_BYTES].cast("I")
        req = region.view[CONTROL_BYTES : CONTROL_BYTES + req_size]
        rep = region.view[CONTROL_BYTES + req_size :]
        client = role == "client"
        self._out, self._in = (req, rep) if client else (rep, req)
        self._out_word, self._in_word = (_REQ_SEQ, _REP_SEQ) if client else (_REP_SEQ, _REQ_SEQ)
        self._my_sleep, self._peer_sleep = ((_CLIENT_ASLEEP, _SERVER_ASLEEP) if client
                                            else (_SERVER_ASLEEP, _CLIENT_ASLEEP))
        # Both counts start at zero in the fresh region: the client may announce its first
        # request before the server has attached its side.
        self._out_seq = 0
        self._in_seq = 0
        self._poller = select.poll()
        self._poller.register(conn.sock.fileno(), select.POLLIN)
        self.spin = 0
        self._policy = SpinPolicy(suspect=True)  # (blocking costs the peer a wake-up)
        self.set_spin(conn.spin)
        self._steps_release: tuple[Callable[[], None], ...] | None = None
        """Set once slot steps are on: what drops the views of the slots before closing."""

    @property
    def timeout(self) -> float | None:
        """The bound on each send and receive (the socket connection's)."""
        return self.conn.timeout

    def set_timeout(self, timeout: float | None) -> None:
        """Bound every later send and receive by ``timeout`` seconds (``None``: no bound)."""
        self.conn.set_timeout(timeout)

    def set_spin(self, rounds: int) -> None:
        """Spin for up to ``rounds`` rounds of about 2 µs before sleeping (0: never spin)."""
        self.conn.set_spin(rounds)
        self.spin = self.conn.spin
        self._policy.set(self.spin)

    # -- sending --------------------------------------------------------------------------

    def send(self, header: bytes, buffers: list[Any], body_len: int,
             flag: bool = False) -> None:
        """Write one frame into the outgoing slot (or the socket if too large); announce it.

        ``flag`` (the body-only mode's permission bit) means nothing on a link.
        """
        out = self._out  # (what _announce does, inline: this is the step path)
        hlen = len(header)
        start = SLOT_HEADER.size
        fits = start + hlen + body_len <= out.nbytes
        if fits:
            out[start : start + hlen] = header
            write_pieces(out, start + hlen, buffers)
            SLOT_HEADER.pack_into(out, 0, KIND_SLOT, hlen, body_len)
        else:
            SLOT_HEADER.pack_into(out, 0, KIND_SOCKET, hlen, body_len)
        seq = (self._out_seq + 1) & _MASK
        self._out_seq = seq
        ctl = self._ctl
        ctl[self._out_word] = seq  # data first, then the sequence word (stores stay in order)
        _fence()
        wake = ctl[self._peer_sleep] != 0
        if fits:
            if wake:
                self.conn.sock.sendall(WAKE)
            return
        self.conn.sock.sendall(WAKE + FRAME if wake else FRAME)
        self.conn.send(header, buffers, body_len)

    def slot_views(self) -> tuple[memoryview, memoryview]:
        """The outgoing and the incoming slot (for :class:`rlmesh.wire.slots.SlotSteps`)."""
        return self._out, self._in

    def enable_steps(self, *releases: Callable[[], None]) -> None:
        """Accept slot steps from now on (both sides agreed on them in the handshake).

        Args:
            releases: Each drops views of the slots taken from :meth:`slot_views` (the
                layout's, the compiled steps'); :meth:`close` calls them in this order
                before it releases the region.
        """
        self._steps_release = releases

    def send_written(self) -> None:
        """Announce a slot step already written into the outgoing slot (see ``send``)."""
        seq = (self._out_seq + 1) & _MASK
        self._out_seq = seq
        ctl = self._ctl
        ctl[self._out_word] = seq  # data first, then the sequence word (stores stay in order)
        _fence_lock.acquire()  # (_fence(), inline: the step's path)
        _fence_lock.release()
        if ctl[self._peer_sleep] != 0:
            self.conn.sock.sendall(WAKE)

    def step_words(self) -> tuple[memoryview, int, int, int]:
        """What compiled slot steps need of this link (:mod:`rlmesh.transport.fastslots`).

        Returns:
            The control words (``uint32``), and the indices of this side's and the peer's
            sequence words and of the peer's sleep flag. The sequence counts and the spin
            policy stay this link's own (``_out_seq``, ``_in_seq``, ``_policy``).
        """
        return self._ctl, self._out_word, self._in_word, self._peer_sleep

    def wake_peer(self) -> None:
        """Send the sleeping peer its wake-up byte (a slot step was announced elsewhere)."""
        self.conn.sock.sendall(WAKE)

    def recv_after_spin(self, started_ns: int) -> tuple[bytes | memoryview, bytearray | None]:
        """:meth:`recv`, once a poll of the peer's sequence word (from ``started_ns``) missed.

        The policy already counted that poll: this sleeps at once, then receives.
        """
        want = (self._in_seq + 1) & _MASK
        if self._ctl[self._in_word] != want:
            self._sleep(want)
        self._policy.blocked(now_ns() - started_ns)  # (as _wait: after a poll that missed)
        return self.recv()

    def send_nowait(self, header: bytes, buffers: list[Any], body_len: int) -> bool:
        """Write one frame into the slot and announce it, never blocking (see ``Transport``).

        Returns:
            ``False`` if the frame is too large for the slot, or the peer sleeps and the
            socket does not take its wake-up byte at once.
        """
        if SLOT_HEADER.size + len(header) + body_len > self._out.nbytes:
            return False  # (the socket path would need a marker and a frame to go out whole)
        if self._announce(header, buffers, body_len):
            return self.conn.send_bytes_nowait(WAKE)
        return True

    def _announce(self, header: bytes, buffers: list[Any], body_len: int) -> bool:
        """Write a frame that fits into the slot and bump the sequence word (as :meth:`send`).

        Returns:
            Whether the peer sleeps (it needs a wake-up byte on the socket).
        """
        out = self._out
        hlen = len(header)
        start = SLOT_HEADER.size
        out[start : start + hlen] = header
        write_pieces(out, start + hlen, buffers)
        SLOT_HEADER.pack_into(out, 0, KIND_SLOT, hlen, body_len)
        seq = (self._out_seq + 1) & _MASK
        self._out_seq = seq
        ctl = self._ctl
        ctl[self._out_word] = seq  # data first, then the sequence word (stores stay in order)
        _fence()
        return bool(ctl[self._peer_sleep] != 0)

    # -- receiving ------------------------------------------------------------------------

    def recv(self) -> tuple[bytes | memoryview, bytearray | None]:
        """Wait for the peer's next frame; returns ``(header, body)`` like ``Connection``.

        Raises:
            ConnectionLostError: If the peer closes the connection.
            MessageTooLargeError: If the frame exceeds ``max_message_bytes``.
            TimeoutError: If no frame comes within the timeout.
        """
        want = (self._in_seq + 1) & _MASK
        if self._ctl[self._in_word] != want:
            self._wait(want)
        self._in_seq = want
        inbox = self._in
        kind, hlen, blen = SLOT_HEADER.unpack_from(inbox, 0)
        if kind == KIND_STEP and self._steps_release is not None:
            self.peer_flag = True
            return STEP_FRAME, None
        if kind == KIND_SOCKET:
            self.peer_flag = False
            self.conn.expect_marker(WAKE, FRAME)
            return self.conn.recv()
        if kind != KIND_SLOT or SLOT_HEADER.size + hlen + blen > inbox.nbytes:
            raise ProtocolError("malformed frame in the shared-memory slot")
        conn = self.conn
        if hlen + blen > conn.max_message_bytes or hlen > conn.max_header_bytes:
            raise MessageTooLargeError(conn.too_large(hlen, blen))
        self.peer_flag = True
        start = SLOT_HEADER.size
        stop = start + hlen
        return bytes(inbox[start:stop]), (bytearray(inbox[stop : stop + blen]) if blen else None)

    def _wait(self, want: int) -> None:
        started = now_ns()
        budget = self._policy.start()
        if budget and self._spin(want, budget):
            return
        self._sleep(want)
        self._policy.blocked(now_ns() - started)

    def _spin(self, want: int, budget: int) -> bool:
        """Check the sequence word, yielding between checks, for ``budget`` ns."""
        ctl, word, policy = self._ctl, self._in_word, self._policy
        mark = start = now_ns()
        checks = range(_CHECKS)
        while True:
            for _ in checks:
                if ctl[word] == want:
                    policy.stolen = 0  # (policy.hit(), inline: the frame is here)
                    return True
            yield_cpu()
            now = now_ns()
            if now - mark > STOLEN_NS and (mark - start <= EARLY_NS or ctl[word] == want) \
                    and policy.stolen_yield():  # the CPU is shared: sleep
                return bool(ctl[word] == want)
            if now - start > budget:
                policy.missed()
                return False
            mark = now

    def _sleep(self, want: int) -> None:
        """Sleep in ``poll`` until the frame is announced, the peer hangs up, or time is up."""
        ctl, word = self._ctl, self._in_word
        ctl[self._my_sleep] = 1
        _fence()
        try:
            timeout = self.conn.timeout
            deadline = None if timeout is None else time.monotonic() + timeout
            slice_ms = _FIRST_SLICE_MS
            while ctl[word] != want:
                wait_ms = slice_ms
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("no frame from the peer in time")
                    wait_ms = min(slice_ms, max(int(left * 1000) + 1, 1))
                if self.conn.sock.fileno() < 0:
                    raise ConnectionLostError("the connection was closed")
                if self._poller.poll(wait_ms) and not self.conn.take_wakes(WAKE):
                    if ctl[word] == want:
                        break  # the peer's last frame, sent just before it hung up
                    raise ConnectionLostError("the peer closed the connection")
                slice_ms = min(slice_ms * 2, _LAST_SLICE_MS)
        finally:
            ctl[self._my_sleep] = 0

    def abort(self) -> None:
        """Shut the socket down, from any thread: a receive in progress fails soon after."""
        self.conn.abort()

    def close(self) -> None:
        """Close the socket and release the region. Idempotent."""
        self.conn.close()
        releases, self._steps_release = self._steps_release, None
        for release in releases or ():
            release()
        for view in (self._ctl, self._in, self._out):
            view.release()
        self.region.close()

