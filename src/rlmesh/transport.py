"""Addresses, sockets and framing (``docs/protocol.md`` sections 1 and 2)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import stat
import struct
from typing import Any, Final

from rlmesh.errors import ConnectFailedError, ConnectionLostError, MessageTooLargeError

PREFIX: Final = struct.Struct("<II")
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 5555
_RECV_CHUNK: Final = 256 * 1024
_IOV_BATCH: Final = 512


@dataclasses.dataclass(frozen=True)
class Address:
    """A parsed endpoint address.

    Attributes:
        kind: ``"tcp"`` or ``"unix"``.
        host: Host name or IP for TCP.
        port: Port for TCP (0 asks the OS for a free port when binding).
        path: Filesystem path for unix sockets.
    """

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """Whether this address is reachable only from this machine."""
        if self.kind == "unix":
            return True
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


def parse_address(address: str | Address) -> Address:
    """Parse ``host:port``, ``tcp://host:port``, ``[v6]:port`` or ``unix:///path``.

    Args:
        address: The address string (or an already parsed :class:`Address`).

    Returns:
        The parsed address.

    Raises:
        ValueError: If the string is not a valid address.
    """
    if isinstance(address, Address):
        return address
    text = str(address).strip()
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path:
            raise ValueError(f"unix address {address!r} has no path")
        return Address("unix", path=path)
    if text.startswith("tcp://"):
        text = text[len("tcp://") :]
    elif "://" in text:
        raise ValueError(f"unsupported scheme in address {address!r} (use tcp:// or unix://)")
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"address {address!r} is not of the form host:port")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"address {address!r} has an invalid port {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"address {address!r} has a port outside 0..65535")
    return Address("tcp", host=host, port=port)


def _tune(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def listen(address: Address, backlog: int = 128) -> tuple[socket.socket, Address]:
    """Bind and listen on ``address``.

    Args:
        address: Where to listen; TCP port 0 picks a free port.
        backlog: Listen queue length.

    Returns:
        The listening socket and the resolved address.
    """
    if address.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(address.path).st_mode):
                os.unlink(address.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address.path)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return sock, address
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    return sock, Address("tcp", host=address.host, port=port)


def connect(address: Address, timeout: float | None) -> socket.socket:
    """Open a connection to ``address`` within ``timeout`` seconds.

    Raises:
        ConnectFailedError: If the endpoint cannot be reached in time.
    """
    try:
        if address.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(address.path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((address.host, address.port), timeout=timeout)
    except TimeoutError as exc:
        raise ConnectFailedError(f"could not connect to {address}: timed out after {timeout}s"
                                 ) from exc
    except OSError as exc:
        raise ConnectFailedError(f"could not connect to {address}: {exc.strerror or exc}") from exc
    _tune(sock)
    return sock


class Connection:
    """One framed, bidirectional message stream over a connected socket.

    ``recv`` returns the header as a view into an internal buffer that stays valid until the
    next ``recv``; the body is a freshly allocated buffer the caller owns.
    """

    def __init__(self, sock: socket.socket, max_message_bytes: int) -> None:
        self.sock = sock
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray(_RECV_CHUNK)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0

    def send(self, header: bytes, buffers: list[Any], body_len: int) -> None:
        """Send one frame: prefix, header, then the body pieces in order."""
        first = PREFIX.pack(len(header), body_len) + header
        if not buffers:
            self.sock.sendall(first)
            return
        parts: list[Any] = [first, *buffers]
        while parts:
            batch = parts[:_IOV_BATCH]
            sent = self.sock.sendmsg(batch)
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
        """Make at least ``n`` unread bytes available in the buffer."""
        if self._end - self._start >= n:
            return
        if self._start + n > len(self._buf):
            pending = self._end - self._start
            if n > len(self._buf):
                new = bytearray(max(n, len(self._buf)))
                new[:pending] = self._view[self._start : self._end]
                self._buf = new
                self._view = memoryview(new)
            else:
                self._buf[:pending] = self._view[self._start : self._end]
            self._start, self._end = 0, pending
        while self._end - self._start < n:
            got = self.sock.recv_into(self._view[self._end :])
            if not got:
                raise ConnectionLostError("the peer closed the connection")
            self._end += got

    def recv(self) -> tuple[memoryview, bytearray | None]:
        """Receive one frame.

        Returns:
            ``(header, body)``; ``body`` is ``None`` for an empty body.

        Raises:
            ConnectionLostError: If the peer closes the connection.
            MessageTooLargeError: If the frame exceeds ``max_message_bytes`` (nothing of it
                is allocated).
        """
        if self._start == self._end:
            self._start = self._end = 0
        self._fill(PREFIX.size)
        hlen, blen = PREFIX.unpack_from(self._buf, self._start)
        if hlen + blen > self.max_message_bytes:
            raise MessageTooLargeError(
                f"frame of {hlen + blen} bytes exceeds the limit of {self.max_message_bytes}"
            )
        self._start += PREFIX.size
        self._fill(hlen)
        header = self._view[self._start : self._start + hlen]
        self._start += hlen
        if not blen:
            return header, None
        body = bytearray(blen)
        take = min(self._end - self._start, blen)
        if take:
            body[:take] = self._view[self._start : self._start + take]
            self._start += take
        if take < blen:
            view = memoryview(body)
            while take < blen:
                got = self.sock.recv_into(view[take:])
                if not got:
                    raise ConnectionLostError("the peer closed the connection mid-message")
                take += got
        return header, body

    def close(self) -> None:
        """Shut down and close the socket; safe to call more than once."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
