"""In-process transports: a connected pair, and endpoints at ``memory://NAME`` addresses.

Two :class:`MemoryTransport` objects joined by :func:`pair` pass frames through queues with
the socket transport's semantics: a receive waits up to the timeout (then ``TimeoutError``),
a closed or aborted connection ends it (``ConnectionLostError``), a frame over the limit is
refused before it is kept, and every frame is copied (a sender may reuse its buffers, as with
a socket). An :class:`~rlmesh.EnvServer` bound to ``memory://NAME`` accepts such pairs from
clients in the same process, so the client, the server session, vector envs and evaluation
run without sockets: unit tests use it, as httpx's ``MockTransport`` or anyio's memory
streams are used. Nothing crosses a process boundary, so no shared memory and no TLS here.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from typing import Any

from rlmesh.errors import ConnectFailedError, ConnectionLostError, MessageTooLargeError

__all__ = ["MemoryListener", "MemoryTransport", "connect", "listen", "pair"]

_listeners: dict[str, MemoryListener] = {}
_registry_lock = threading.Lock()


class _Pipe:
    """One direction of a pair: frames in order, and whether it was closed."""

    def __init__(self) -> None:
        self.frames: collections.deque[tuple[bytes, bytearray | None]] = collections.deque()
        self.cond = threading.Condition()
        self.closed = False

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class MemoryTransport:
    """One end of an in-process connection (see :func:`pair`)."""

    single_slot = False
    tls = False
    spin = 0

    def __init__(self, inbox: _Pipe, outbox: _Pipe, max_message_bytes: int) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self.max_message_bytes = max_message_bytes
        self.peer_flag = False
        self._timeout: float | None = None

    @property
    def timeout(self) -> float | None:
        """The bound set by :meth:`set_timeout`."""
        return self._timeout

    def set_timeout(self, timeout: float | None) -> None:
        """Bound every later receive by ``timeout`` seconds (``None``: no bound)."""
        self._timeout = timeout

    def set_spin(self, rounds: int) -> None:
        """No polling in process: a receive waits on a condition."""

    def send(self, header: bytes, buffers: list[Any], body_len: int,
             flag: bool = False) -> None:
        """Queue one frame for the peer (copied)."""
        body = bytearray(body_len) if body_len else None
        if body is not None:
            offset = 0
            for piece in buffers:
                view = memoryview(piece).cast("B")
                body[offset : offset + view.nbytes] = view
                offset += view.nbytes
        with self._outbox.cond:
            if self._outbox.closed:
                raise ConnectionLostError("the peer closed the connection")
            self._outbox.frames.append((bytes(header), body))
            self._outbox.cond.notify()

    def send_nowait(self, header: bytes, buffers: list[Any], body_len: int) -> bool:
        """Queue one frame for the peer (a queue never fills); ``False`` if it is closed."""
        try:
            self.send(header, buffers, body_len)
        except ConnectionLostError:
            return False
        return True

    def recv(self) -> tuple[bytes | memoryview, bytearray | None]:
        """The peer's next frame: ``(header, body)``.

        Raises:
            TimeoutError: If nothing comes within the timeout.
            ConnectionLostError: If the connection is closed and nothing is left to read.
            MessageTooLargeError: If the frame exceeds ``max_message_bytes``.
        """
        inbox = self._inbox
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        with inbox.cond:
            while not inbox.frames:
                if inbox.closed:
                    raise ConnectionLostError("the peer closed the connection")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no frame from the peer in time")
                inbox.cond.wait(None if left is None else min(left, 86400.0))
            header, body = inbox.frames.popleft()
        size = len(header) + (len(body) if body is not None else 0)
        if size > self.max_message_bytes:
            raise MessageTooLargeError(
                f"frame of {size} bytes exceeds the limit of {self.max_message_bytes}")
        return header, body

    def abort(self) -> None:
        """End the connection in both directions, from any thread (a receive fails soon)."""
        self._inbox.close()
        self._outbox.close()

    def close(self) -> None:
        """Close the connection. Idempotent."""
        self.abort()


def pair(max_message_bytes: int) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-process transports."""
    forth, back = _Pipe(), _Pipe()
    return (MemoryTransport(back, forth, max_message_bytes),
            MemoryTransport(forth, back, max_message_bytes))


class MemoryListener:
    """Where a ``memory://NAME`` server accepts connections (``select``-able, like a socket)."""

    def __init__(self, name: str, max_message_bytes: int) -> None:
        self.name = name
        self.max_message_bytes = max_message_bytes
        self._pending: collections.deque[MemoryTransport] = collections.deque()
        self._lock = threading.Lock()
        self._ready_r, self._ready_w = os.pipe()  # one byte per waiting connection

    def fileno(self) -> int:
        """Readable while a connection waits to be accepted."""
        return self._ready_r

    def accept(self) -> tuple[MemoryTransport, None]:
        """The oldest waiting connection (its server end)."""
        os.read(self._ready_r, 1)
        with self._lock:
            return self._pending.popleft(), None

    def _connect(self, max_message_bytes: int) -> MemoryTransport:
        client, server = pair(max_message_bytes)
        server.max_message_bytes = self.max_message_bytes
        with self._lock:
            self._pending.append(server)
        os.write(self._ready_w, b"c")
        return client

    def close(self) -> None:
        """Stop accepting; close the connections nobody accepted. Idempotent."""
        with _registry_lock:
            if _listeners.get(self.name) is self:
                del _listeners[self.name]
        with self._lock:
            pending, self._pending = list(self._pending), collections.deque()
        for transport in pending:
            transport.close()
        for fd in (self._ready_r, self._ready_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def listen(name: str, max_message_bytes: int) -> MemoryListener:
    """Serve at ``memory://name`` in this process.

    Raises:
        OSError: If something serves there already.
    """
    with _registry_lock:
        if name in _listeners:
            raise OSError(f"memory://{name} is already served in this process")
        listener = MemoryListener(name, max_message_bytes)
        _listeners[name] = listener
        return listener


def connect(name: str, max_message_bytes: int, timeout: float | None = None, *,
            wait: bool = False) -> MemoryTransport:
    """Connect to the in-process endpoint ``memory://name``.

    Args:
        name: The endpoint's name.
        max_message_bytes: Largest frame accepted from the server.
        timeout: With ``wait``, how long to wait for the endpoint to appear.
        wait: Wait for an endpoint that is not there yet (a server still starting).

    Raises:
        ConnectFailedError: If nothing serves there (in time).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with _registry_lock:
            listener = _listeners.get(name)
        if listener is not None:
            return listener._connect(max_message_bytes)
        if not wait or (deadline is not None and time.monotonic() >= deadline):
            raise ConnectFailedError(f"could not connect to memory://{name}: nothing serves "
                                     "there in this process")
        time.sleep(0.01)
