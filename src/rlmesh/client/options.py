"""How a client connects: ``ConnectOptions``, the counterpart of ``ServeOptions``.

Every client (``RemoteEnv``, ``RemoteVectorEnv``, ``RemoteModel``, ``rlmesh.evaluate``, the
command line) turns its connection arguments into one of these, and the channel that opens
the connection reads nothing else. Environment variables are read when the options are
made, not at import time.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import ssl
from typing import Any, Final

from rlmesh.protocol import DEFAULT_MAX_MESSAGE_BYTES
from rlmesh.transport.sockets import resolve_address

__all__ = ["DEFAULT", "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_TIMEOUT", "ConnectOptions", "Default",
           "connect_options", "endpoint_address", "limit_seconds", "spelled_timeouts"]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to connect (waiting for a server that is still starting) and to handshake."""
DEFAULT_TIMEOUT = 60.0
"""Seconds allowed for each request."""


class Default(enum.Enum):
    """Type of :data:`DEFAULT`."""

    TOKEN = 0


DEFAULT: Final = Default.TOKEN
"""Sentinel of a call's ``timeout``: use the channel's own timeout."""


def limit_seconds(name: str, value: object) -> float | None:
    """A time limit as the client keeps it: seconds > 0, or ``None`` for no limit.

    ``math.inf`` means no limit, as ``None`` does.

    Raises:
        TypeError: If ``value`` is not a number (or ``None``).
        ValueError: If ``value`` is NaN, zero or negative.
    """
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number of seconds or None, not "
                        f"{type(value).__qualname__}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, or None or math.inf "
                         f"for no limit; got {value!r}")
    return None if math.isinf(value) else value


def _spin_from_environment() -> int:
    return int(os.environ.get("RLMESH_SPIN", "64"))


@dataclasses.dataclass(frozen=True)
class ConnectOptions:
    """How a client connects to an endpoint.

    Attributes:
        connect_timeout: Seconds to connect (a refused connection, a server still starting,
            is retried until then) and again for the handshake. ``None``: no limit.
        timeout: Seconds allowed for each request (``None``: no limit).
        max_message_bytes: Largest reply accepted.
        token: The endpoint's shared secret, if it requires one (default ``RLMESH_TOKEN``).
        tls: An ``ssl.SSLContext`` (see :func:`rlmesh.tls.client_context`), ``True`` for one
            trusting the system's CAs; a ``tls://`` address implies ``True``.
        spin: Rounds of about 2 µs to poll for a reply before blocking (``RLMESH_SPIN``,
            default 64; 0 blocks at once). The budget adapts: a peer that took up to four
            budgets to answer is polled for about as long next time.
        same_host: Offer a server on this machine shared memory: a link carrying whole
            frames where the CPU allows it, else a region for reply bodies (protocol section
            10). ``RLMESH_SAME_HOST=0`` also turns it off.

    An infinite timeout (``math.inf``) means no limit, as ``None`` does.
    """

    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    timeout: float | None = DEFAULT_TIMEOUT
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    token: str | bytes | None = dataclasses.field(default=None, repr=False)
    tls: ssl.SSLContext | bool | None = None
    spin: int = dataclasses.field(default_factory=_spin_from_environment)
    same_host: bool = True

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "timeout"):
            object.__setattr__(self, name, limit_seconds(name, getattr(self, name)))
        if not 1024 <= self.max_message_bytes <= 0xFFFFFFFF:
            raise ValueError("max_message_bytes must be between 1 KiB and 4 GiB - 1")
        if self.spin < 0:
            raise ValueError("spin must be >= 0")

    def replace(self, **changes: Any) -> ConnectOptions:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


_DEFAULTS = ConnectOptions.__dataclass_fields__


def connect_options(options: ConnectOptions | None, **keywords: Any) -> ConnectOptions:
    """The options a client was given: ``options``, or its connection keyword arguments.

    Raises:
        TypeError: If both ``options`` and keywords other than their defaults are given.
    """
    if options is None:
        return ConnectOptions(**keywords)
    if not isinstance(options, ConnectOptions):
        raise TypeError(f"options must be rlmesh.ConnectOptions, not "
                        f"{type(options).__qualname__}")
    given = [name for name, value in keywords.items() if value != _DEFAULTS[name].default]
    if given:
        raise TypeError(f"pass either options= or {', '.join(given)}=, not both "
                        "(options.replace(...) changes a field)")
    return options


def endpoint_address(address: str | None, host: str | None = None, port: int | None = None,
                     path: str | None = None, transport: str | None = None) -> str:
    """The one address a client connects to, from ``address`` or the endpoint helpers.

    ``host``/``port`` name a TCP endpoint, ``path`` a unix socket, and ``transport``
    (``"tcp"`` or ``"unix"``) says which of the two; none of them combines with ``address``.

    Raises:
        TypeError: If nothing names an endpoint.
        ValueError: If the arguments contradict each other or are incomplete.
    """
    if address is not None and host is None and port is None and path is None \
            and transport is None:
        if isinstance(address, str) and not address.strip():
            raise ValueError("address must not be empty")
        return address
    return str(resolve_address(address, host, port, path, transport, required=True))


def spelled_timeouts(connect_timeout: float | None, timeout: float | None,
                     connect_timeout_seconds: float | None,
                     request_timeout_seconds: float | None) -> tuple[float | None, float | None]:
    """``(connect_timeout, timeout)`` from either spelling of each.

    ``connect_timeout_seconds`` and ``request_timeout_seconds`` are the reference API's names
    for ``connect_timeout`` and ``timeout``; ``None`` there means "not given" (the default
    applies), as in that API.

    Raises:
        TypeError: If one limit is given under both of its names.
    """
    pairs = (("connect_timeout", connect_timeout, connect_timeout_seconds,
              DEFAULT_CONNECT_TIMEOUT),
             ("timeout", timeout, request_timeout_seconds, DEFAULT_TIMEOUT))
    chosen: list[float | None] = []
    for name, ours, theirs, default in pairs:
        if theirs is not None and ours != default:
            alias = "connect_timeout_seconds" if name == "connect_timeout" else \
                "request_timeout_seconds"
            raise TypeError(f"pass either {name}= or {alias}=, not both")
        chosen.append(ours if theirs is None else theirs)
    return chosen[0], chosen[1]
