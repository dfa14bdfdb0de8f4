"""Server configuration."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from rlmesh.protocol import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["ServeOptions"]

_ALIASES = {"idle_timeout_seconds": "idle_timeout", "drain_timeout_seconds": "drain_timeout",
            "close_timeout_seconds": "close_timeout"}
"""The reference API's names of three fields: accepted by the constructor, readable after."""


class _Echo(float):
    """A field's value as read under its alias.

    Passed back in (as ``dataclasses.replace`` does) it is recognised and ignored, so
    replacing the field itself is never taken for a conflict.
    """


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How an :class:`~rlmesh.EnvServer` behaves.

    Attributes:
        max_message_bytes: Largest frame accepted from a client; larger frames are refused
            before anything is allocated and that connection is closed.
        validate_actions: Check every action against the action space before the env sees
            it and answer non-members with ``InvalidActionError``.
        close_timeout: Seconds ``shutdown()`` waits for each session thread to end (and so
            for its env's ``close()``) after draining; an env whose close hangs is left
            behind after that.
        drain_timeout: Seconds ``shutdown()`` (and SIGTERM/SIGINT under ``serve()``) lets
            requests already being served finish and send their replies before it closes
            the remaining connections.
        backlog: Listen queue length.
        same_host: Accept a same-host client's shared memory: a link carrying whole frames,
            or a region for reply bodies (see :mod:`rlmesh.transport.shmlink` and
            :mod:`rlmesh.transport.shm`); ``RLMESH_SAME_HOST=0`` also turns it off.
        max_sessions: Most sessions served at once; a client beyond that is refused at once
            with ``EnvBusyError`` (code ``server_full``). ``None``: no limit.
        idle_timeout: Seconds a session may wait for its client's next request (or for the
            client to take a reply) before the server closes it and frees its env. ``None``:
            no limit.
        step_deadline: Seconds an env's ``step``, ``reset`` or ``render`` (or an attribute
            access, call or assignment through ``remote_attributes``) may run. A call
            that runs longer gets ``StepDeadlineError`` sent to its client at the deadline
            and ends its session; the server keeps serving everyone else, and the stalled
            env is closed (factory) or withheld (instance) once the call returns. ``None``:
            no deadline.
        restart_on_error: With a factory, how many times per session an env whose
            ``step`` or ``reset`` raised is replaced by a fresh one instead of the error
            reaching the client. The step is answered as a truncation of a freshly reset
            env, with ``info["rlmesh_restart"]`` saying why; 0 turns this off.
        resume_window: Seconds a session outlives a broken connection, waiting for its
            client to reconnect and resume it (same env, same episode; a request sent before
            the break is neither lost nor applied twice). ``None``: a broken connection ends
            the session at once.
        allow_remote_shutdown: Honour a client's ``shutdown()`` request (refused with
            ``NotAllowedError`` otherwise).
        remote_attributes: Let clients read and set the served env's public attributes and
            call its public methods (``env.unwrapped.x``, ``get_wrapper_attr``,
            ``set_wrapper_attr``, a vector env's ``get_attr``, ``set_attr`` and ``call``;
            protocol ops ``GET_ATTR``, ``CALL``, ``SET_ATTR``). Names starting with ``_``,
            ``reset``/``step``/``close`` and what defines the contract stay out of reach
            either way (``docs/protocol.md`` section 13). ``False``: the three ops are
            answered with ``NotAllowedError``. Values set on a served **instance** persist
            into later sessions; serve a factory to give every session a fresh env.
        max_header_bytes: Largest frame header accepted from an authenticated client (1 MiB by
            default). Headers are msgpack and small: arrays travel in the body. A larger
            header is refused before it is read (``message_too_large``; the connection is
            closed), so no client can make the server decode a huge header.
        max_handshake_bytes: Largest frame accepted before a client has authenticated
            (until its AUTH succeeds, or until its HELLO is accepted on a server without a
            token); 64 KiB by default. Larger frames are refused with ``message_too_large``
            before anything of them is allocated, and the connection is closed.
        handshake_timeout: Seconds from accepting a connection until the client has
            authenticated (TLS, HELLO and AUTH included; on a server without a token, until
            its HELLO is accepted). A client that has not by then is disconnected, however
            it trickles its bytes.
        max_pending: Most connections that have not authenticated yet, in total. When a new
            connection would exceed it, the oldest pending connection is closed.
        max_pending_per_peer: Most such connections per peer address (an IPv4 address, an
            IPv6 /64, or a unix-socket peer's user id); beyond it the peer's oldest pending
            connection is closed.
        spin: Rounds of about 2 µs a session polls for its client's next request before its
            thread blocks (``RLMESH_SERVER_SPIN``, default 64; each round yields the CPU).
            Polling avoids the wake-up latency of a sleeping thread when a client steps in a
            tight loop; the budget adapts (a client that took up to four budgets to send is
            polled for about as long next time) and 0 disables it.

    ``idle_timeout_seconds``, ``drain_timeout_seconds`` and ``close_timeout_seconds`` (the
    reference API's names) are accepted for ``idle_timeout``, ``drain_timeout`` and
    ``close_timeout`` and read back their values; giving one field two different values
    under both names is a ``ValueError``.
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    validate_actions: bool = True
    close_timeout: float = 10.0
    drain_timeout: float = 10.0
    backlog: int = 128
    same_host: bool = True
    max_sessions: int | None = None
    idle_timeout: float | None = None
    step_deadline: float | None = None
    restart_on_error: int = 0
    resume_window: float | None = None
    allow_remote_shutdown: bool = False
    remote_attributes: bool = True
    max_header_bytes: int = 1024 * 1024
    max_handshake_bytes: int = 64 * 1024
    handshake_timeout: float = 10.0
    max_pending: int = 256
    max_pending_per_peer: int = 64
    spin: int = dataclasses.field(
        default_factory=lambda: int(os.environ.get("RLMESH_SERVER_SPIN", "64")))
    idle_timeout_seconds: dataclasses.InitVar[float | None] = None
    drain_timeout_seconds: dataclasses.InitVar[float | None] = None
    close_timeout_seconds: dataclasses.InitVar[float | None] = None

    def __post_init__(self, idle_timeout_seconds: float | None,
                      drain_timeout_seconds: float | None,
                      close_timeout_seconds: float | None) -> None:
        self._take_aliases({"idle_timeout_seconds": idle_timeout_seconds,
                            "drain_timeout_seconds": drain_timeout_seconds,
                            "close_timeout_seconds": close_timeout_seconds})
        if not 1024 <= self.max_message_bytes <= 0xFFFFFFFF:
            raise ValueError("max_message_bytes must be between 1 KiB and 4 GiB - 1")
        self._check_handshake_limits()
        if self.max_sessions is not None and self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1 or None")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0 or None")
        if self.spin < 0:
            raise ValueError("spin must be >= 0")
        if self.close_timeout < 0:
            raise ValueError("close_timeout must be >= 0")
        if self.drain_timeout < 0:
            raise ValueError("drain_timeout must be >= 0")
        if self.step_deadline is not None and self.step_deadline <= 0:
            raise ValueError("step_deadline must be > 0 or None")
        if self.resume_window is not None and self.resume_window <= 0:
            raise ValueError("resume_window must be > 0 or None")
        if self.restart_on_error < 0:
            raise ValueError("restart_on_error must be >= 0")

    def _take_aliases(self, given: dict[str, Any]) -> None:
        """Set each field given under its reference name (an echo of a read is no value)."""
        for alias, name in _ALIASES.items():
            value = given[alias]
            if value is None or isinstance(value, _Echo) or value == getattr(self, name):
                continue
            default = ServeOptions.__dataclass_fields__[name].default
            if getattr(self, name) != default:
                raise ValueError(f"{name}={getattr(self, name)!r} and {alias}={value!r} "
                                 "give one option two values; pass one of them")
            object.__setattr__(self, name, value)

    def _check_handshake_limits(self) -> None:
        if self.max_header_bytes < 1024 or self.max_handshake_bytes < 1024:
            raise ValueError("max_header_bytes and max_handshake_bytes must be >= 1 KiB")
        if self.handshake_timeout <= 0:
            raise ValueError("handshake_timeout must be > 0")
        if self.max_pending < 1 or self.max_pending_per_peer < 1:
            raise ValueError("max_pending and max_pending_per_peer must be >= 1")


def _alias(name: str) -> property:
    def read(self: ServeOptions) -> float | None:
        value = getattr(self, name)
        return None if value is None else _Echo(value)

    return property(read, doc=f"``{name}``, under the reference API's name.")


for _name, _field in _ALIASES.items():  # (after the dataclass took the InitVar defaults)
    setattr(ServeOptions, _name, _alias(_field))
