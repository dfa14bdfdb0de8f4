"""Bytes <-> peer: addresses and sockets, framing, and the same-host shared memory.

A transport moves whole frames (a header and a body) between two peers and knows nothing of
what they mean. Three implement :class:`Transport`: the socket connection
(:class:`rlmesh.transport.stream.Connection`), the same-host link that wraps one
(:class:`rlmesh.transport.shmlink.ShmLink`), and an in-process pair for tests
(:mod:`rlmesh.transport.memory`).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Transport"]


class Transport(Protocol):
    """What a client channel and a server session need of the connection they talk over.

    Attributes:
        max_message_bytes: Largest frame accepted from the peer.
        peer_flag: Whether the last frame received used the shared-memory region (a server
            session echoes it: the reply may use the region too).
        single_slot: Whether the transport holds one unread frame at most (then a reply is
            read before the next request is sent).
        tls: Whether the bytes travel over TLS.
    """

    max_message_bytes: int
    peer_flag: bool
    single_slot: bool
    tls: bool

    @property
    def timeout(self) -> float | None:
        """The bound set by :meth:`set_timeout`."""

    def send(self, header: bytes, buffers: list[Any], body_len: int,
             flag: bool = False) -> None:
        """Send one frame (``flag``: the reply-body permission bit of protocol section 10)."""

    def send_nowait(self, header: bytes, buffers: list[Any], body_len: int) -> bool:
        """Send one frame only if it goes out at once; never blocks, from any thread.

        For a server's last word on a connection it is about to abort (the step deadline's
        error): ``False`` means the frame did not go out whole, and the stream is unusable.
        """

    def recv(self) -> tuple[bytes | memoryview, bytearray | None]:
        """Receive one frame: ``(header, body)``; ``body`` is ``None`` when empty."""

    def set_timeout(self, timeout: float | None) -> None:
        """Bound every later send and receive by ``timeout`` seconds (``None``: no bound)."""

    def set_spin(self, rounds: int) -> None:
        """Poll for up to ``rounds`` rounds of about 2 µs before a receive blocks."""

    def abort(self) -> None:
        """Make a receive in progress fail soon (from any thread), without closing."""

    def close(self) -> None:
        """Close the connection (idempotent)."""
