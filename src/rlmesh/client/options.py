"""How a client connects: ``ConnectOptions``, the counterpart of ``ServeOptions``.

Every client (``RemoteEnv``, ``RemoteVectorEnv``, ``RemoteModel``, ``rlmesh.evaluate``, the
command line) turns its connection arguments into one of these, and the channel that opens
the connection reads nothing else. Environment variables are read when the options are
made, not at import time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import ssl
from typing import Any

from rlmesh.protocol import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_TIMEOUT", "ConnectOptions", "connect_options"]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to connect (waiting for a server that is still starting) and to handshake."""
DEFAULT_TIMEOUT = 60.0
"""Seconds allowed for each request."""


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
            default 64; 0 blocks at once).
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
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be a number of seconds or None")
            if math.isinf(value) and value > 0:
                object.__setattr__(self, name, None)  # no limit
            elif not value > 0:
                raise ValueError(f"{name} must be > 0 or None, not {value!r}")
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
