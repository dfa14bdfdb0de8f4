"""Addresses and sockets: parsing, binding, connecting, TLS wrapping and tuning."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import socket
import ssl
import stat
import time
from typing import Final

from rlmesh.errors import ConnectFailedError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "KEEPALIVE_IDLE", "TRANSPORTS", "Address", "connect",
           "listen", "parse_address", "resolve_address", "tune", "unpace_local", "wrap_server"]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 5555
_PACING: Final = b"bbr"
"""Congestion controls whose names start so pace their sends (BBR and its versions)."""
_UNPACED: Final = (b"cubic", b"reno")
"""What a connection within this machine switches a pacing one to, the first permitted."""


@dataclasses.dataclass(frozen=True)
class Address:
    """A parsed endpoint address.

    Attributes:
        kind: ``"tcp"``, ``"unix"``, or ``"memory"`` (an endpoint in this process, for tests:
            :mod:`rlmesh.transport.memory`).
        host: Host name or IP for TCP.
        port: Port for TCP (0 asks the OS for a free port when binding).
        path: Filesystem path for unix sockets; the name of a memory endpoint.
        tls: Whether the address was written ``tls://`` (TCP wrapped in TLS).
    """

    kind: str
    host: str = ""
    port: int = 0
    path: str = ""
    tls: bool = False

    def __str__(self) -> str:
        if self.kind in ("unix", "memory"):
            return f"{self.kind}://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tls://{host}:{self.port}" if self.tls else f"{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """Whether this address is reachable only from this machine."""
        if self.kind in ("unix", "memory"):
            return True
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


def parse_address(address: str | Address) -> Address:
    """Parse ``host:port``, ``[v6]:port``, ``tcp://``, ``tls://``, ``unix://`` or ``memory://``.

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
    for kind in ("unix", "memory"):
        if text.startswith(f"{kind}://"):
            path = text[len(kind) + 3 :]
            if not path:
                raise ValueError(f"{kind} address {address!r} has no path")
            return Address(kind, path=path)
    tls = text.startswith("tls://")
    if text.startswith(("tcp://", "tls://")):
        text = text[len("tcp://") :]
    elif "://" in text:
        raise ValueError(f"unsupported scheme in address {address!r} (use tcp://, tls://, "
                         "unix:// or memory://)")
    host, port = _host_port(text, address)
    return Address("tcp", host=host, port=port, tls=tls)


def _host_port(text: str, address: object) -> tuple[str, int]:
    """``host`` and ``port`` of ``host:port`` or ``[v6]:port`` (``address``: for messages)."""
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
    return host, port


TRANSPORTS: Final = ("tcp", "unix")
"""The values of a ``transport=`` selector (the reference API's spelling)."""


def resolve_address(address: str | None, host: str | None = None, port: int | None = None,
                    path: str | None = None, transport: str | None = None, *,
                    required: bool = False) -> Address:
    """An address given as one string, or as ``host``/``port`` (TCP) or ``path`` (unix).

    Args:
        address: The whole address; excludes every other argument.
        host: TCP host (default ``127.0.0.1``).
        port: TCP port (default 5555 unless ``required``).
        path: Unix socket path.
        transport: ``"tcp"`` or ``"unix"``: which of the two the helpers describe.
        required: A client's call: some endpoint must be named, and a TCP one needs its port.

    Raises:
        TypeError: If ``required`` and nothing names an endpoint, or ``port`` is not an int.
        ValueError: If both forms are given, they contradict each other, or the string is
            not a valid address.
    """
    if transport is not None and transport not in TRANSPORTS:
        raise ValueError(f"transport must be 'tcp' or 'unix' (or None), not {transport!r}")
    if address is not None:
        if host is not None or port is not None or path is not None or transport is not None:
            raise ValueError("pass either address or host/port/path/transport, not both")
        if not str(address).strip():
            raise ValueError("address must not be empty")
        return parse_address(address)
    if path is not None or transport == "unix":
        return _unix_address(host, port, path, transport)
    if required and port is None:
        if host is None:
            raise TypeError("name the endpoint: an address (\"host:port\"), host= and port=, "
                            "or path= (a unix socket)")
        raise ValueError(f"host={host!r} needs port= to connect to")
    return Address("tcp", host=host or DEFAULT_HOST,
                   port=DEFAULT_PORT if port is None else _checked_port(port))


def _unix_address(host: str | None, port: int | None, path: str | None,
                  transport: str | None) -> Address:
    if host is not None or port is not None:
        raise ValueError("pass either path (unix socket) or host/port (TCP), not both")
    if path is None:
        raise ValueError("transport='unix' needs path=")
    if transport == "tcp":
        raise ValueError("path= names a unix socket; it cannot be combined with "
                         "transport='tcp'")
    if not str(path):
        raise ValueError("path must not be empty")
    return Address("unix", path=str(path))


def _checked_port(port: object) -> int:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an int, not {type(port).__qualname__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, not {port}")
    return port


KEEPALIVE_IDLE: Final = 30
"""Seconds of silence before TCP keepalive probes a peer (then 3 probes, 5 s apart)."""


def tune(sock: socket.socket) -> None:
    """Set TCP_NODELAY and keepalive, so a vanished or half-open peer is noticed.

    With keepalive a connection whose peer disappeared without a FIN (power loss, a cut
    cable) fails after about 45 s of silence instead of never. A connection within this
    machine does not pace its sends (see :func:`unpace_local`).
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", 5),
                        ("TCP_KEEPCNT", 3)):
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    unpace_local(sock)


def unpace_local(sock: socket.socket) -> str:
    """Give a TCP connection within this machine a congestion control that does not pace.

    BBR (a common default) paces a sender at the bandwidth it has measured, and on a
    loopback connection that answers in microseconds the measure is arbitrary: a large
    frame then leaves in timed pieces (measured here: a 224x224x3 step took 75 µs on some
    connections instead of 31). Within one machine there is no network to be gentle with,
    so such a connection switches to CUBIC, or Reno where CUBIC is not permitted.

    Returns:
        The congestion control now in use, or ``""`` if the connection was left alone (not
        TCP, not local, not pacing, or the platform has no such option).
    """
    option = getattr(socket, "TCP_CONGESTION", None)
    if (option is None or sock.family not in (socket.AF_INET, socket.AF_INET6)
            or sock.type != socket.SOCK_STREAM):
        return ""
    try:
        if not _within_machine(sock):
            return ""
        current = sock.getsockopt(socket.IPPROTO_TCP, option, 16).split(b"\0", 1)[0]
        if not current.startswith(_PACING):
            return ""
        for name in _UNPACED:
            with contextlib.suppress(OSError):  # not permitted to this user, not built in
                sock.setsockopt(socket.IPPROTO_TCP, option, name)
                return name.decode()
    except OSError:  # not connected any more: nothing to tune
        pass
    return ""


def _within_machine(sock: socket.socket) -> bool:
    """Whether the connection's peer is this machine.

    That is a loopback address, or the very address the connection leaves from (the kernel
    routes both over loopback).
    """
    peer, own = sock.getpeername()[0], sock.getsockname()[0]
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or peer == own


def listen(address: Address, backlog: int = 128,
           reuse_port: bool = False) -> tuple[socket.socket, Address]:
    """Bind and listen on ``address``.

    Args:
        address: Where to listen; TCP port 0 picks a free port.
        backlog: Listen queue length.
        reuse_port: Set ``SO_REUSEPORT`` so several processes share one TCP port (the
            kernel spreads new connections over them).

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
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    port = sock.getsockname()[1]
    return sock, dataclasses.replace(address, port=port)


_NOT_YET = (ConnectionRefusedError, FileNotFoundError)
"""What a connect to an endpoint that is still starting fails with (TCP, unix socket)."""
_FIRST_RETRY: Final = 0.01
_LONGEST_RETRY: Final = 0.25


def connect(address: Address, timeout: float | None,
            tls: ssl.SSLContext | None = None, *, wait: bool = False) -> socket.socket:
    """Open a connection to ``address`` within ``timeout`` seconds.

    Args:
        address: Where to connect.
        timeout: Seconds for the TCP connect, and again for the TLS handshake.
        tls: Wrap the connection in TLS with this context (verifying the server against
            ``address.host`` when the context checks host names).
        wait: Retry a refused connection (nothing listens yet: a server still starting), with
            backoff from 10 ms to 250 ms, until ``timeout`` has passed (``None``: until it
            answers).

    Raises:
        ConnectFailedError: If the endpoint cannot be reached in time, or the TLS handshake
            fails (a certificate that does not verify, a server that does not speak TLS).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = _FIRST_RETRY
    while True:
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            sock = _connect_once(address, timeout if left is None else max(left, 0.001))
            break
        except _NOT_YET as exc:
            left = None if deadline is None else deadline - time.monotonic()
            if not wait or (left is not None and left <= 0):
                waited = f" (kept trying for {timeout}s)" if wait else ""
                raise ConnectFailedError(
                    f"could not connect to {address}: {exc.strerror or exc}{waited}") from exc
            time.sleep(delay if left is None else min(delay, left))
            delay = min(delay * 2, _LONGEST_RETRY)
        except TimeoutError as exc:
            raise ConnectFailedError(
                f"could not connect to {address}: timed out after {timeout}s") from exc
        except OSError as exc:
            raise ConnectFailedError(
                f"could not connect to {address}: {exc.strerror or exc}") from exc
    tune(sock)
    if tls is None:
        return sock
    try:
        wrapped = tls.wrap_socket(sock, server_hostname=address.host or None)
    except (OSError, ValueError) as exc:  # ssl.SSLError and timeouts are OSErrors
        sock.close()
        raise ConnectFailedError(f"TLS handshake with {address} failed: {exc}") from exc
    return wrapped


def _connect_once(address: Address, timeout: float | None) -> socket.socket:
    if address.kind != "unix":
        return socket.create_connection((address.host, address.port), timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address.path)
    except BaseException:
        sock.close()
        raise
    return sock


def wrap_server(sock: socket.socket, tls: ssl.SSLContext, timeout: float) -> socket.socket:
    """Run the server side of a TLS handshake on an accepted connection (bounded).

    Raises:
        OSError: If the handshake fails or times out (``ssl.SSLError`` is an ``OSError``).
    """
    sock.settimeout(timeout)
    try:
        wrapped = tls.wrap_socket(sock, server_side=True)
    except BaseException:
        sock.close()
        raise
    wrapped.settimeout(None)
    return wrapped
