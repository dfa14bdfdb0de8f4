"""Fixed-shape step frames compiled when they can be: one C call per step on each side.

Over a socket (TCP, or a Unix socket without the same-host link), a step of a fixed-shape
contract (:mod:`rlmesh.wire.fixed`) costs each side a few microseconds of Python around its
system calls: the client encodes the request, frames and sends it, polls for the reply and
decodes it; the server receives and decodes the request and, after the env's step, encodes
and sends the reply. The optional C extension ``rlmesh.transport._fastframes`` does each of
those runs in one call, with the same bytes on the wire:

* :meth:`ClientFrames.step` (the client), :meth:`ServerFrames.take` and
  :meth:`ServerFrames.put` (the server), or :meth:`ServerFrames.serve`, which takes a step,
  checks its action, calls the env's ``step`` and puts the results in one call
  (:class:`~rlmesh.transport.extensions.ServesSteps`).

An observation too large to travel inline (an image) travels as the reply's body: the
server sends it from the env's own array, header and body in one system call, and the
client receives it straight into a new array of its own (no staging copy past the bytes
that came with the header).

Whatever else comes it hands to the Python path, which goes on from where it stopped:

* ``DECLINED``: nothing sent (a value of another layout);
* ``RECEIVE``: the request went out (client) and what came is another frame (an error
  reply, a reply of another layout, a request of another kind), or the peer closed: it is
  in the connection's buffer, and ``Connection.recv`` reads it as usual.

The state stays the connection's own: its staging buffer and spin policy (the extension
reads and writes ``Connection._buf``, ``_start``, ``_end``, ``spin`` and ``_policy``). A
failing system call raises what the socket module raises for it. Where the extension is not
built (no compiler), or ``RLMESH_PURE_PYTHON=1`` is set when rlmesh is imported, every step
takes the Python path, with the same results and errors (see
:mod:`rlmesh.transport.fastslots`, the same-host link's counterpart).
"""

from __future__ import annotations

import functools
from typing import Any, Final, Protocol

import numpy as np

from rlmesh.transport.extensions import ServesSteps, load
from rlmesh.transport.stream import Connection

__all__ = ["ACCELERATED", "DECLINED", "DONE", "RECEIVE", "ClientFrames", "ServerFrames",
           "client_frames", "server_frames", "why_not"]

DECLINED: Final = 0
DONE: Final = 1
RECEIVE: Final = 3
"""(The codes are :mod:`rlmesh.transport.fastslots`' own: a session loop reads either.)"""

_STAGING: Final = 64 * 1024
"""A frame the compiled steps take must fit the connection's staging buffer (its least)."""


class ClientFrames(Protocol):
    """The client's compiled fixed-frame step over one connection."""

    def step(self, rid: int, action: Any) -> list[Any] | int:
        """Step ``rid`` with ``action``: the reply list, or a code (see the module)."""


class ServerFrames(ServesSteps, Protocol):
    """The server's compiled fixed-frame steps over one connection."""

    def take(self) -> tuple[int, Any] | int:
        """The next fixed STEP request's ``(rid, action)``, or ``RECEIVE``."""

    def put(self, rid: int, obs: Any, reward: Any, terminated: Any, truncated: Any,
            info: Any) -> int:
        """Send step ``rid``'s results: ``DONE``, or ``DECLINED`` (nothing sent)."""


class _Field(Protocol):
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def prefix(self) -> bytes: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def in_body(self) -> bool: ...
    @property
    def inline(self) -> int: ...


class _Layouts(Protocol):
    """A contract's fixed step layouts (:class:`rlmesh.wire.fixed.StepFrames`)."""

    @property
    def action(self) -> _Field: ...
    @property
    def scalar(self) -> _Field | None: ...
    @property
    def scalar_type(self) -> type | None: ...
    @property
    def ints(self) -> bool: ...
    @property
    def obs(self) -> _Field: ...
    @property
    def batched(self) -> tuple[_Field, _Field, _Field] | None: ...
    @property
    def rewards(self) -> tuple[_Field, ...]: ...


_module, _why_not = load("_fastframes")
ACCELERATED: Final = _module is not None
"""Whether fixed frames run compiled in this process."""


def why_not() -> str | None:
    """Why fixed frames run in Python here (``None``: they run compiled)."""
    return _why_not


def _plain(conn: Any) -> bool:
    """Whether ``conn`` is a plain socket connection (no TLS, no region, no link)."""
    return type(conn) is Connection and not conn.tls and conn.shm is None


def _field(field: _Field, items: tuple[int, ...] | None = None) -> tuple[Any, ...]:
    """A field as the extension takes it: its prefix, and an array of its layout to fill.

    A field in the body has a third item: what makes a new array of its layout (the body's).
    """
    scratch = np.empty(field.shape if items is None else items, field.dtype)
    if field.in_body:
        return field.prefix, scratch, functools.partial(np.empty, field.shape, field.dtype)
    return field.prefix, scratch


def _replies(frames: _Layouts) -> tuple[_Field, ...]:
    """A reply's array fields: the observation (and a vector env's rewards and flags)."""
    return (frames.obs, *(frames.batched or ()))


def _bytes(fields: tuple[_Field, ...]) -> int:
    """What these fields take in a header: each one's prefix and values (not the body's)."""
    return sum(len(f.prefix) + f.inline for f in fields)


def _limit(conn: Any) -> int:
    """The largest header ``conn`` accepts now."""
    return min(conn.max_header_bytes, conn.max_message_bytes)  # type: ignore[no-any-return]


def _layout(frames: _Layouts) -> tuple[Any, ...]:
    """The fields as the extension takes them, in its arguments' order.

    The action's, its scalar form's (or ``None``), whether ints act, the replies', and one
    env's NumPy scalar rewards' (a scalar's scratch has one item).
    """
    scalar = None if frames.scalar is None else _field(frames.scalar, (1,))
    rewards = tuple(_field(form, (1,)) for form in frames.rewards)
    return (_field(frames.action), scalar, frames.ints, tuple(map(_field, _replies(frames))),
            rewards)


def _fits(frames: _Layouts) -> bool:
    """Whether a request's and a reply's headers fit the staging buffer, a body 32 bits."""
    return _bytes((frames.action, *_replies(frames))) + 64 <= _STAGING \
        and _body(frames) < 1 << 32


def _body(frames: _Layouts) -> int:
    """The size of a reply's body: the observation's bytes where it travels there."""
    return frames.obs.nbytes if frames.obs.in_body else 0


def _reply_header(frames: _Layouts) -> int:
    """The size of the largest reply header of ``frames`` (its request id in five bytes)."""
    reward = max((len(f.prefix) + f.nbytes for f in frames.rewards), default=0)
    values = 1 if frames.batched else 3 + max(9, reward)  # (the empty info; one env's
    return 2 + 5 + _bytes(_replies(frames)) + values        # reward and flags too)


def client_frames(conn: Any, frames: _Layouts | None, peer_max: int) -> ClientFrames | None:
    """The client's compiled step over ``conn`` (``None``: none here, or not for ``conn``).

    Args:
        conn: The channel's transport; only a plain socket connection has one.
        frames: The contract's fixed step layouts.
        peer_max: The largest request the server takes (a larger one is declined).

    ``None`` too where a reply of ``frames`` is larger than ``conn``'s own frame limits.
    """
    if _module is None or frames is None or not _plain(conn) or not _fits(frames) \
            or _reply_header(frames) > _limit(conn) \
            or _reply_header(frames) + _body(frames) > conn.max_message_bytes:
        return None  # (a reply this side's own limit refuses: the Python path says so)
    action, scalar, ints, replies, rewards = _layout(frames)
    try:
        made: ClientFrames = _module.ClientFrames(conn, np.ndarray, action, scalar,
                                                  frames.scalar_type, ints, replies, rewards,
                                                  min(peer_max, _STAGING))
    except (ValueError, TypeError, BufferError):
        return None  # (a layout the compiled step does not cover: the Python path serves it)
    return made


def server_frames(conn: Any, frames: _Layouts | None) -> ServerFrames | None:
    """The server's compiled steps over ``conn`` (``None``: none here, or not for ``conn``).

    Requests larger than the connection's header limit now are never taken (the Python path
    refuses them); the limit only grows once a session is open.
    """
    if _module is None or frames is None or not _plain(conn) or not _fits(frames):
        return None
    action, scalar, ints, replies, rewards = _layout(frames)
    try:
        made: ServerFrames = _module.ServerFrames(conn, np.ndarray, action, scalar, ints,
                                                  replies, rewards, _limit(conn))
    except (ValueError, TypeError, BufferError):
        return None
    return made
