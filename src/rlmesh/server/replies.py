"""How a server session reads requests and answers them: replies, error replies, ``Fatal``.

A request handler (:mod:`rlmesh.server.env_ops`, :mod:`rlmesh.models.serve`) answers through
these methods; every reply is kept while the session may be resumed, so a request sent again
after a broken connection is answered from the kept reply instead of being applied twice.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any, Final, NamedTuple, NoReturn

from rlmesh import protocol as P
from rlmesh.errors import EncodeError, MessageTooLargeError, ProtocolError
from rlmesh.transport import Transport
from rlmesh.transport.fastframes import ServerFrames
from rlmesh.transport.fastslots import ServerSteps
from rlmesh.transport.shmlink import STEP_FRAME
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import StepFrames
from rlmesh.wire.lenient import sanitize
from rlmesh.wire.slots import SlotSteps

__all__ = ["SLOT_STEP", "Expired", "Fatal", "InPlace", "Replies", "brief", "qualname"]

SLOT_STEP: Final[list[Any]] = []
"""What :meth:`Replies.receive` returns for a slot step left to the caller (compare with
``is``): the request is still in its slot."""


class InPlace(NamedTuple):
    """Where a session answers its steps in one call (``SessionPort.in_place``).

    Slot steps over a link (their replies written in place), or the compiled fixed frames
    over a plain socket (``slots`` is ``None``, ``fast`` the frames).
    """

    slots: SlotSteps | None
    announce: Callable[[], None]
    """Announces a reply written into the slots."""
    fast: ServerSteps | ServerFrames | None
    """The compiled steps (:mod:`rlmesh.transport.fastslots` over slots,
    :mod:`rlmesh.transport.fastframes` over a socket; ``None``: Python's)."""
    wake: Callable[[], None]
    """Sends the sleeping client its wake-up byte (when a compiled reply's could not go)."""


class Fatal(BaseException):
    """Ends the session after its error reply has been sent.

    A ``BaseException``, like ``SystemExit``: it is control flow, and the ``except
    Exception`` blocks around env calls must let it through.
    """


class Expired(Fatal):
    """The env call ran past the step deadline; the watchdog has answered for it."""


def _nothing() -> None:
    """What announces and wakes over a plain socket (its replies are frames, sent whole)."""


def qualname(exc: BaseException) -> str:
    """The exception's class name, qualified by its module unless it is a builtin."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def brief(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (client values are hostile)."""
    try:
        text = repr(value)
    except Exception:  # RecursionError, SystemError from a broken array, ...
        return f"<unprintable {type(value).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Replies:
    """Reading requests and sending replies on one connection (a base of the server session).

    Args:
        conn: The connection.
        what: What the endpoint serves, as error messages name it (``"env"``, ``"model"``).
    """

    def __init__(self, conn: Transport, what: str) -> None:
        self.conn = conn
        self.what = what
        self._encoder = Encoder()
        self._decoder = Decoder()
        self.key: bytes | None = None
        """The resume key while this session may be resumed (replies are kept then)."""
        self.last_reply: tuple[Any, bytes, list[Any], int] | None = None
        """``(request_id, header, buffers, body_len)`` of the last reply kept."""
        self.frames: StepFrames | None = None
        """The served contract's fixed-shape step frames, once the session serves requests."""
        self.slots: SlotSteps | None = None
        """The slot-step layout, if the session agreed on slot steps (:mod:`rlmesh.wire.slots`)."""
        self.slotted = False
        """Whether the request being answered came as a slot step (so may its reply)."""
        self.slot_steps_apart = False
        """Whether :meth:`receive` hands a slot step over unread (as :data:`SLOT_STEP`)."""
        self.fast_slots: ServerSteps | None = None
        """The compiled slot steps over the link (:mod:`rlmesh.transport.fastslots`)."""
        self.fast_frames: ServerFrames | None = None
        """The compiled fixed frames over a plain socket (:mod:`rlmesh.transport.fastframes`)."""

    def receive(self, spun_from: int | None = None) -> Any:
        """The next request ``[op, request_id, *args]``, decoded.

        Returns :data:`SLOT_STEP` instead for a slot step while :attr:`slot_steps_apart`
        is set (the caller reads and answers it in place).

        Args:
            spun_from: Where a compiled poll of the link that missed started: sleep for the
                request at once (:meth:`~rlmesh.transport.shmlink.ShmLink.recv_after_spin`).

        Raises:
            Fatal: After answering a malformed or oversized request.
        """
        try:
            header, body = self.conn.recv() if spun_from is None else \
                self.conn.recv_after_spin(spun_from)  # type: ignore[attr-defined]  # (links)
        except MessageTooLargeError as exc:
            self.fatal(None, P.E_TOO_LARGE, str(exc))
        except ProtocolError as exc:
            self.fatal(None, P.E_PROTOCOL, str(exc))
        slots = self.slots
        if slots is not None:  # (a link that agreed on slot steps)
            self.slotted = header is STEP_FRAME
            if self.slotted:
                if self.slot_steps_apart:
                    return SLOT_STEP
                try:
                    return slots.read_request()
                except ProtocolError as exc:
                    self.fatal(None, P.E_PROTOCOL, str(exc))
        frames = self.frames
        if frames is not None and body is None:
            try:
                fixed = frames.decode_request(header)
            except Exception:  # (never for a frame it reads; the general decoder judges)
                fixed = None
            if fixed is not None:
                return fixed
        return self._decode(header, body)

    def _decode(self, header: bytes | memoryview, body: bytearray | None) -> Any:
        """A request of no fixed layout, through the general decoder.

        Raises:
            Fatal: After answering a malformed request.
        """
        try:
            msg = self._decoder.decode(header, body)
        except ProtocolError as exc:
            self.fatal(None, P.E_PROTOCOL, str(exc))
        if type(msg) is not list or len(msg) < 2 or type(msg[0]) is not int:
            self.fatal(None, P.E_PROTOCOL, "a request is an array [op, request_id, ...args]")
        return msg

    def send(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        """Send an OK reply ``[status, request_id, *values]``.

        A reply that cannot be encoded is retried with its ``info`` (last value) made
        encodable, then answered with ``encode_error`` naming ``subject`` (or the env).
        """
        if self.slotted and self.key is None and self.slots is not None \
                and self.slots.write_reply(reply):
            self.conn.send_written()  # type: ignore[attr-defined]  # (only links have slots)
            return
        self.send_frame(reply, keep, subject)

    def send_frame(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        """Send an OK reply as a frame, never in place (see :meth:`send`)."""
        frames = self.frames
        encoded = frames.encode_reply(reply) if frames is not None else None
        try:
            if encoded is None:
                encoded = self._encoder.encode(reply)
        except EncodeError as exc:
            encoded = self._encode_sanitized(reply)
            if encoded is None:
                self.error(reply[1], P.E_ENCODE,
                           f"{subject} cannot be sent (values travel as data, never "
                           f"pickled): {exc}" if subject else
                           f"the {self.what} returned a value that cannot be sent: {exc}")
                return
        if keep and self.key is not None:
            self.last_reply = (reply[1], *encoded)
        self.conn.send(*encoded, self.conn.peer_flag)

    def in_place(self) -> InPlace | None:
        """Where a step is answered in one call, if it is (see :class:`InPlace`).

        ``None`` if the session has neither slot steps nor compiled frames, or keeps its
        replies (a resumable session sends every reply through :meth:`send_frame`).
        """
        slots, conn = self.slots, self.conn
        if self.key is not None:
            return None
        if slots is None:
            frames = self.fast_frames
            return None if frames is None else InPlace(None, _nothing, frames, _nothing)
        return InPlace(slots, conn.send_written,  # type: ignore[attr-defined]  # (links)
                       self.fast_slots, conn.wake_peer)  # type: ignore[attr-defined]

    def send_step(self, rid: int, obs: Any, reward: Any, terminated: Any, truncated: Any,
                  info: Any) -> None:
        """Send the results of a step: in place, if it came as a slot step and they fit.

        Otherwise as a frame of ``[OK, rid, obs, reward, terminated, truncated, info]``.
        """
        if self.slotted and self.key is None:
            slots = self.slots
            if slots is not None and slots.write_result(rid, obs, reward, terminated,
                                                        truncated, info):
                self.conn.send_written()  # type: ignore[attr-defined]  # (only links)
                return
        self.send_frame([P.STATUS_OK, rid, obs, reward, terminated, truncated, info])

    def _encode_sanitized(self, reply: list[Any]) -> tuple[bytes, list[Any], int] | None:
        """Retry with ``info`` (a reply's last value) made encodable; ``None`` if still not."""
        if len(reply) <= 3 or not isinstance(reply[-1], dict):
            return None
        reply[-1] = sanitize(reply[-1])  # info never fails a request
        try:
            return self._encoder.encode(reply)
        except EncodeError:
            return None

    def error(self, rid: Any, code: str, message: str, *,
              exc: BaseException | None = None, fatal: bool = False) -> None:
        """Send an error reply; the session goes on unless ``fatal``."""
        err = P.error_map(
            code, message, fatal=fatal,
            exc_type=qualname(exc) if exc is not None else None,
            traceback="".join(traceback.format_exception(exc)) if exc is not None else None,
        )
        header, buffers, body_len = self._encoder.encode([P.STATUS_ERROR, rid, err])
        if self.key is not None:
            self.last_reply = (rid, header, buffers, body_len)
        self.conn.send(header, buffers, body_len)

    def last_word(self, rid: Any, code: str, message: str) -> bool:
        """Send a fatal error reply without blocking, from another thread (the watchdog's).

        The session's own thread is busy in a call meanwhile, so its encoder is left alone.

        Returns:
            Whether the reply went out whole; the caller aborts the connection either way.
        """
        err = P.error_map(code, message, fatal=True)
        try:
            return self.conn.send_nowait(*Encoder().encode([P.STATUS_ERROR, rid, err]))
        except Exception:  # (whatever happens, the caller goes on)
            return False

    def fatal(self, rid: Any, code: str, message: str, *,
              exc: BaseException | None = None) -> NoReturn:
        """Send an error reply and end the session."""
        self.error(rid, code, message, exc=exc, fatal=True)
        raise Fatal(code)
