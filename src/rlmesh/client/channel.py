"""The client side of one connection: handshake, then request/reply with timeouts."""

from __future__ import annotations

import collections
import contextlib
import enum
import threading
import time
from typing import Any, Final

from rlmesh import protocol as P
from rlmesh.client import handshake, resuming
from rlmesh.client.options import ConnectOptions, limit_seconds
from rlmesh.errors import (
    ConnectionLostError,
    EnvClosedError,
    MessageTooLargeError,
    ProtocolError,
    RLMeshError,
    RLMeshTimeoutError,
    SessionLostError,
    TransportError,
)
from rlmesh.protocol import auth
from rlmesh.tls import resolve_client as resolve_tls
from rlmesh.transport import fastframes, fastslots
from rlmesh.transport.fastframes import ClientFrames
from rlmesh.transport.fastslots import ClientSteps
from rlmesh.transport.shmlink import STEP_FRAME
from rlmesh.transport.sockets import parse_address
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import StepFrames, contract_frames
from rlmesh.wire.slots import SlotSteps

__all__ = ["DEFAULT", "Channel", "Default"]

class Default(enum.Enum):
    """Type of :data:`DEFAULT`."""

    TOKEN = 0


DEFAULT: Final = Default.TOKEN
"""Sentinel: use the channel's own timeout."""


class Channel:
    """A connected, handshaken session with an rlmesh server.

    Every request is bounded by ``timeout``. After a timeout or a transport error the
    channel is unusable (a late reply would be mistaken for the next one) and every later
    request raises at once, unless the server keeps sessions for resumption
    (``ServeOptions(resume_window=...)``): then a broken connection is reopened within the
    window and the unanswered request is sent again under its request id, which the server
    answers exactly once. Resuming counts against the call's timeout too: a call whose time
    runs out first raises ``RLMeshTimeoutError`` and the next call, within the window,
    resumes the session. Thread-safe: requests from several threads are serialised.

    Args:
        address: Endpoint address string.
        options: How to connect (timeouts, token, TLS, ...); default ``ConnectOptions()``.
        resume: Resume the session after a broken connection when the server offers it.
        wait: Retry a refused connection (a server still starting) until
            ``connect_timeout``; ``False`` fails at once.
        **changes: Fields of ``options`` to change (``timeout=5``...).
    """

    def __init__(self, address: str, options: ConnectOptions | None = None, *,
                 resume: bool = True, wait: bool = True, **changes: Any) -> None:
        options = options or ConnectOptions()
        if changes:
            options = options.replace(**changes)
        self.options = options
        self.address = parse_address(address)
        self._secret = auth.token_from(options.token)
        self._tls = resolve_tls(options.tls, self.address.tls)
        self._connect_timeout = options.connect_timeout
        self._max_message_bytes = options.max_message_bytes
        self.timeout = options.timeout
        self._lock = threading.Lock()
        self._next_id = 1
        self._broken: RLMeshError | None = None
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        self._early: dict[int, list[Any] | RLMeshError] = {}
        """Replies read ahead of :meth:`collect` (a shared-memory link holds one frame)."""
        self._sent: tuple[int, int, tuple[Any, ...]] | None = None
        """``(request_id, op, args)`` of the last request sent, for a resume to resend."""
        self._dropped = False
        """Whether the connection broke (rather than a timeout or a protocol error)."""
        self._window_end: float | None = None
        """When the server gives up the session parked after the break (while resuming)."""
        self._retimed = False
        """Whether a resume set the connection's timeout to a call's remaining time."""
        self._peer_max = P.DEFAULT_MAX_MESSAGE_BYTES
        self._closed = False
        self._encoder = Encoder()
        self._decoder = Decoder()
        opened = self._open(options.connect_timeout, wait=wait)
        self._conn = opened.conn
        self._conn.set_timeout(options.timeout)
        contract = opened.contract
        self.contract: dict[str, Any] = contract
        self._frames = contract_frames(contract)
        """The contract's fixed-shape step frames (``rlmesh.wire.fixed``), if it has them."""
        slot_steps = handshake.slot_steps(self._conn, contract, self._frames)
        self._slots: SlotSteps | None = None if slot_steps is None else slot_steps[0]
        self._fast: ClientSteps | None = None if slot_steps is None else slot_steps[1]
        """The slot-step layout (``rlmesh.wire.slots``), if the link agreed on slot steps,
        and its compiled step (``rlmesh.transport.fastslots``), if this process has one."""
        offer = contract.get("resume")
        self._resume: dict[str, Any] | None = offer if resume and isinstance(offer, dict) \
            and isinstance(offer.get("key"), bytes) else None
        peer_max = contract.get("max_message_bytes")
        if isinstance(peer_max, int) and peer_max > 0:
            self._peer_max = peer_max
        self._fast_frames: ClientFrames | None = None if slot_steps is not None else \
            fastframes.client_frames(self._conn, self._frames, self._peer_max)
        """The compiled fixed-frame step over a plain socket (``rlmesh.transport.fastframes``)."""

    def _open(self, connect_timeout: float | None, extra: dict[str, Any] | None = None,
              wait: bool = False) -> handshake.Opened:
        return handshake.open_connection(
            self.address, connect_timeout=connect_timeout,
            max_message_bytes=self._max_message_bytes, secret=self._secret, tls=self._tls,
            spin=self.options.spin, same_host=self.options.same_host, extra=extra, wait=wait)

    def _reopen(self, cause: RLMeshError, deadline: float | None) -> bool:
        """Resume the session on a new connection and resend the unanswered request.

        Args:
            cause: The error that broke the old connection.
            deadline: When the call's time runs out (``time.monotonic()``; ``None``: never).

        Returns:
            ``False`` if this session cannot be resumed (the caller raises ``cause``).

        Raises:
            SessionLostError: Resumption failed (the window ran out, or the server no
                longer holds the session).
            RLMeshTimeoutError: The call's time ran out first (the session stays
                resumable: the next call within the window resumes it).
        """
        if (self._resume is None or not self._dropped or self._closed
                or len(self._pending) > 1 or self._sent is None):
            return False
        self._resume_session(cause, deadline)
        rid, op, args = self._sent
        header, buffers, body_len = self._encoder.encode([op, rid, *args])
        try:
            self._conn.send(header, buffers, body_len, True)
        except (BlockingIOError, TimeoutError, OSError, TransportError) as exc:
            raise self._translate(exc, op, self.timeout) from None
        except BaseException as exc:
            self._interrupted(exc, op)
            raise
        return True

    def _resume_session(self, cause: RLMeshError, deadline: float | None) -> None:
        """Reconnect with the session key (see :func:`rlmesh.client.resuming.reconnect`)."""
        offer = self._resume
        assert offer is not None
        if self._window_end is None:  # the server parks the session about now
            self._window_end = time.monotonic() + float(offer.get("window") or 0)
        try:
            opened = resuming.reconnect(
                lambda seconds: self._open(seconds, {"resume": {"key": offer["key"]}}),
                self.address, cause, window_end=self._window_end, deadline=deadline,
                connect_timeout=self._connect_timeout)
        except RLMeshTimeoutError:
            self._sent = None  # this call gives up its reply; the next one resumes first
            raise
        except SessionLostError:
            self._dropped = False  # for good: later calls fail at once
            self._window_end = None
            raise
        self._conn = opened.conn
        self._slots = self._fast = None  # (a resumed session steps with frames)
        self._fast_frames = None
        self._conn.set_timeout(None if deadline is None
                               else max(deadline - time.monotonic(), resuming.MIN_ATTEMPT))
        self._retimed = True
        self._broken = None
        self._dropped = False
        self._window_end = None

    def _restore_timeout(self) -> None:
        """Put the channel's timeout back after a resume bounded the call's remaining time."""
        self._retimed = False
        if self._broken is None and not self._closed:
            self._conn.set_timeout(self.timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def set_timeout(self, timeout: float | None) -> None:
        """Change the bound on each later request (``None``: no limit)."""
        timeout = limit_seconds("timeout", timeout)
        with self._lock:
            self.timeout = timeout
            if self._broken is None and not self._closed:
                self._conn.set_timeout(timeout)

    def _fail(self, error: RLMeshError) -> RLMeshError:
        self._broken = error
        self._conn.close()
        return error

    def _unusable(self) -> RLMeshError:
        if self._closed:
            return EnvClosedError("this env has been closed")
        return ConnectionLostError(
            f"the connection to {self.address} is unusable after an earlier error: "
            f"{self._broken}"
        )

    def _send_locked(self, op: int, args: tuple[Any, ...], limit: float | None) -> int:
        if self._broken is not None or self._closed:
            self._resume_before_send(limit)
        rid = self._next_id
        self._next_id = rid + 1
        frames = self._frames
        fixed = frames.encode_request(rid, args[0]) if (
            frames is not None and op == P.OP_STEP and len(args) == 1) else None
        buffers: list[Any]
        if fixed is not None:
            header, buffers, body_len = fixed, [], 0
        else:
            header, buffers, body_len = self._encoder.encode([op, rid, *args])
        if len(header) + body_len > self._peer_max:
            raise MessageTooLargeError(
                f"request of {len(header) + body_len} bytes exceeds the server's limit of "
                f"{self._peer_max}; nothing was sent"
            )
        if self._pending and self._conn.single_slot:
            self._read_ahead()
        if self._resume is not None:
            self._sent = (rid, op, args)
        try:
            # The reply may use shared memory only if no earlier reply is still unread.
            self._conn.send(header, buffers, body_len, not self._pending)
        except (BlockingIOError, TimeoutError, OSError, TransportError) as exc:
            raise self._translate(exc, op, self.timeout) from None
        except BaseException as exc:
            self._interrupted(exc, op)
            raise
        return rid

    def _resume_before_send(self, limit: float | None) -> None:
        """Resume a session an earlier call left parked (it timed out resuming); else raise.

        Raises:
            ConnectionLostError: The channel is unusable (``EnvClosedError`` if closed).
            SessionLostError: As :meth:`_reopen`.
            RLMeshTimeoutError: As :meth:`_reopen`.
        """
        if (self._closed or self._resume is None or not self._dropped or self._pending
                or self._window_end is None or self._broken is None):
            raise self._unusable()
        deadline = None if limit is None else time.monotonic() + limit
        self._resume_session(self._broken, deadline)

    def _read_ahead(self) -> None:
        """Read every pending reply now, so the link's slots are free for the next request."""
        for rid, op in self._pending:
            if rid not in self._early:
                try:
                    self._early[rid] = self._recv_locked(op, rid, self.timeout)
                except RLMeshError as exc:
                    self._early[rid] = exc
        if self._broken is not None:
            raise self._unusable()

    def _recv_locked(self, op: int, rid: int, limit: float | None) -> list[Any]:
        if self._broken is not None:  # (its connection is closed: nothing to read there)
            raise self._unusable()
        try:
            reply_header, body = self._conn.recv()
        except (BlockingIOError, TimeoutError, OSError, TransportError, ProtocolError) as exc:
            raise self._translate(exc, op, limit) from None
        except BaseException as exc:
            self._interrupted(exc, op)
            raise
        frames = self._frames
        reply = frames.decode_reply(reply_header, body) if frames is not None else None
        if reply is not None and reply[1] == rid:
            return reply
        return self._reply_locked(op, rid, limit, reply_header, body)

    def _reply_locked(self, op: int, rid: int, limit: float | None,
                      reply_header: bytes | memoryview, body: Any) -> list[Any]:
        """Decode a reply with the general decoder; return it, or raise what it says."""
        try:
            reply = self._decoder.decode(reply_header, body)
        except ProtocolError as exc:
            raise self._translate(exc, op, limit) from None
        if type(reply) is list and len(reply) > 2 and reply[1] == rid:
            if reply[0] == P.STATUS_OK:
                return reply
        elif not (type(reply) is list and len(reply) == 3 and reply[0] == P.STATUS_ERROR):
            # (an error sent before the server could read our request id is fine)
            raise self._fail(ProtocolError(f"unexpected reply {reply!r:.200}"))
        error = P.error_from_map(reply[2])
        if isinstance(reply[2], dict) and reply[2].get("fatal"):
            self._fail(error)
        raise error

    def _interrupted(self, exc: BaseException, op: int) -> None:
        """A call stopped mid-exchange by ``exc`` (Ctrl-C, a signal handler's exception).

        What of the request went out, and what of its reply came in, is unknown, so the
        connection is closed: the next call raises ``ConnectionLostError`` instead of
        reading a stale or half-read reply. With a resume window the next call resumes the
        session instead (the interrupted request was applied at most once).
        """
        if self._broken is not None or self._closed:
            self._conn.close()  # (idempotent: abandon() from another thread leaves it to us)
            return
        self._fail(ConnectionLostError(
            f"{P.OP_NAMES.get(op, op)} to {self.address} was interrupted "
            f"({type(exc).__name__}) while its request or reply was in flight; "
            "the connection was closed"))
        if self._resume is not None:  # (a resume needs no other request pending: checked then)
            self._dropped = True
            self._window_end = time.monotonic() + float(self._resume.get("window") or 0)

    def _stopped(self, exc: BaseException, op: int) -> None:
        """A locked call ended by ``exc``: an interruption (not an ``Exception``) breaks it.

        The I/O calls catch what ends them mid-exchange themselves; this also covers the
        moments between them (a signal handler runs between any two bytecodes).
        """
        if not isinstance(exc, Exception):
            self._interrupted(exc, op)

    def _translate(self, exc: BaseException, op: int, limit: float | None) -> RLMeshError:
        """Turn a send/receive failure into the typed error, breaking the channel."""
        if isinstance(exc, (BlockingIOError, TimeoutError)):
            return self._fail(RLMeshTimeoutError(
                f"{P.OP_NAMES.get(op, op)} to {self.address} got no reply within {limit}s"))
        if isinstance(exc, ProtocolError):
            return self._fail(exc)
        self._dropped = True
        return self._fail(ConnectionLostError(f"connection to {self.address} lost: {exc}"))

    def _call_locked(self, op: int, args: tuple[Any, ...], limit: float | None) -> list[Any]:
        """Send a request and receive its reply, resuming the session if it breaks.

        The whole call, resumption included, is bounded by ``limit`` seconds.
        """
        deadline = None if limit is None else time.monotonic() + limit
        try:
            try:
                rid = self._send_locked(op, args, limit)
            except ConnectionLostError as exc:
                if not self._reopen(exc, deadline):
                    raise
                rid = self._next_id - 1
            return self._recv_resuming(op, rid, limit, deadline)
        finally:
            if self._retimed:
                self._restore_timeout()

    def _recv_resuming(self, op: int, rid: int, limit: float | None,
                       deadline: float | None) -> list[Any]:
        """Receive the reply to ``rid``, resuming the session (and resending) if it breaks."""
        while True:
            try:
                return self._recv_locked(op, rid, limit)
            except ConnectionLostError as exc:
                if not self._reopen(exc, deadline):
                    raise

    def request(self, op: int, *args: Any, timeout: float | Default | None = DEFAULT
                ) -> list[Any]:
        """Send one request and wait for its reply.

        Args:
            op: The op code.
            *args: The op's arguments.
            timeout: Override of the channel timeout for this request.

        Returns:
            The reply header ``[status, request_id, *values]`` (status is always OK).

        Raises:
            RLMeshTimeoutError: No reply in time (the channel is closed; with a resume
                window, a call that ran out of time while resuming leaves the session for
                the next call to resume).
            ConnectionLostError: The server went away (the channel is closed).
            RLMeshError: The typed error the server answered with.
        """
        with self._lock:
            if self._pending:
                raise RuntimeError("collect() the pipelined replies before request()")
            try:
                if timeout is DEFAULT:
                    if self._resume is None:
                        return self._recv_locked(op, self._send_locked(op, args, self.timeout),
                                                 self.timeout)
                    return self._call_locked(op, args, self.timeout)
                timeout = limit_seconds("timeout", timeout)
                if self._broken is not None or self._closed:
                    return self._call_locked(op, args, timeout)  # (resumes, or raises)
                self._conn.set_timeout(timeout)
                try:
                    return self._call_locked(op, args, timeout)
                finally:
                    if self._broken is None and not self._closed:
                        self._conn.set_timeout(self.timeout)
            except BaseException as exc:
                self._stopped(exc, op)
                raise

    def step(self, action: Any, timeout: float | Default | None = DEFAULT) -> list[Any]:
        """``request(OP_STEP, action)``, on the shortest path when it applies.

        That is a fixed-shape contract (:mod:`rlmesh.wire.fixed`), an action of its layout,
        the channel's own timeout, no pipelined request and no resume window; over a link
        that agreed on slot steps (:mod:`rlmesh.wire.slots`) the step is written in place.
        Anything else takes :meth:`request`, with the same results and errors.
        """
        frames = self._frames
        if frames is None or timeout is not DEFAULT or self._resume is not None:
            return self.request(P.OP_STEP, action, timeout=timeout)
        with self._lock:
            try:
                rid = self._next_id
                idle = not (self._pending or self._broken is not None or self._closed)
                slots = self._slots
                if idle and slots is not None:
                    fast = self._fast
                    if fast is not None:
                        self._next_id = rid + 1  # (an id is never used twice)
                        try:
                            got = fast.step(rid, action)
                        except BaseException as exc:
                            self._interrupted(exc, P.OP_STEP)
                            raise
                        if type(got) is list:
                            return got
                        if got:
                            return self._slot_step(rid, slots, got)  # type: ignore[arg-type]
                    if slots.write_request(rid, action):
                        return self._slot_step(rid, slots)
                reply = self._frame_step(rid, action, frames) if idle else None
            except BaseException as exc:
                self._stopped(exc, P.OP_STEP)
                raise
        return reply if reply is not None else self.request(P.OP_STEP, action, timeout=timeout)

    def _frame_step(self, rid: int, action: Any, frames: StepFrames) -> list[Any] | None:
        """Step ``rid`` with fixed frames (locked): its reply, ``None`` if ``action`` has none.

        The compiled step (:mod:`rlmesh.transport.fastframes`) goes first where there is one;
        it hands a reply of another frame to :meth:`_reply_locked`, and a declined action to
        the Python frames.
        """
        fast, conn = self._fast_frames, self._conn
        self._next_id = rid + 1  # (an id left unused if neither frame takes the action)
        try:
            got = fast.step(rid, action) if fast is not None else fastframes.DECLINED
            if type(got) is list:
                return got
            if not got:  # (nothing sent: the Python frames, if the action has one)
                header = frames.encode_request(rid, action)
                if header is None or len(header) > self._peer_max:
                    return None
                conn.send(header, [], 0, True)
            reply_header, body = conn.recv()
        except (BlockingIOError, TimeoutError, OSError, TransportError, ProtocolError) as exc:
            raise self._translate(exc, P.OP_STEP, self.timeout) from None
        except BaseException as exc:
            self._interrupted(exc, P.OP_STEP)
            raise
        # (a frame the compiled step handed on is of no fixed layout: the general decoder's)
        reply = None if got else frames.decode_reply(reply_header, body)
        if reply is not None and reply[1] == rid:
            return reply
        return self._reply_locked(P.OP_STEP, rid, self.timeout, reply_header, body)

    def _slot_step(self, rid: int, slots: SlotSteps, fast: int = fastslots.DECLINED
                   ) -> list[Any]:
        """Announce the slot step ``rid`` already written, and answer its reply (locked).

        ``fast`` is where the compiled step stopped (:mod:`rlmesh.transport.fastslots`), if it
        already announced the step. The reply is a slot step, or a frame (an error, or a
        reply of another layout).
        """
        self._next_id = rid + 1
        conn: Any = self._conn  # (only links have slots)
        try:
            if fast == fastslots.DECLINED:
                conn.send_written()
                reply_header, body = conn.recv()
            elif fast == fastslots.ASLEEP:
                spun_from = self._fast.spun_from if self._fast is not None else 0
                reply_header, body = conn.recv_after_spin(spun_from)
            else:
                if fast == fastslots.WAKE:
                    conn.wake_peer()
                reply_header, body = conn.recv()
        except (BlockingIOError, TimeoutError, OSError, TransportError, ProtocolError) as exc:
            raise self._translate(exc, P.OP_STEP, self.timeout) from None
        except BaseException as exc:
            self._interrupted(exc, P.OP_STEP)
            raise
        if reply_header is STEP_FRAME:
            try:
                return slots.read_reply(rid)
            except ProtocolError as exc:
                raise self._translate(exc, P.OP_STEP, self.timeout) from None
        return self._reply_locked(P.OP_STEP, rid, self.timeout, reply_header, body)

    def submit(self, op: int, *args: Any) -> int:
        """Send a request without waiting; :meth:`collect` its reply later, in order.

        Pipelining lets one thread keep many endpoints busy at once.

        Returns:
            The request id.
        """
        with self._lock:
            try:
                rid = self._send_locked(op, args, self.timeout)
                self._pending.append((rid, op))
            except BaseException as exc:
                self._stopped(exc, op)
                raise
            return rid

    def collect(self) -> list[Any]:
        """Wait for the reply to the oldest :meth:`submit`-ted request.

        Raises:
            RuntimeError: If nothing is pending.
            RLMeshError: As :meth:`request`.
        """
        with self._lock:
            if not self._pending:
                raise RuntimeError("no request is pending")
            rid, op = self._pending[0]
            limit = self.timeout
            try:  # (the request stays pending while a resume may resend it)
                early = self._early.pop(rid, None)
                if early is None:
                    return self._recv_resuming(
                        op, rid, limit, None if limit is None else time.monotonic() + limit)
            except BaseException as exc:
                self._stopped(exc, op)
                raise
            finally:
                self._pending.popleft()
                if self._retimed:
                    self._restore_timeout()
            if isinstance(early, RLMeshError):
                raise early
            return early

    def close(self, timeout: float = 1.0) -> None:
        """Tell the server goodbye (best effort, bounded) and close the socket. Idempotent."""
        with self._lock:
            if self._closed:
                return
            broken = self._broken
            pending = bool(self._pending)
        if broken is None and not pending:
            with contextlib.suppress(RLMeshError, OSError):  # (abandoned meanwhile: no goodbye)
                self.request(P.OP_CLOSE, timeout=timeout)
        with self._lock:
            self._closed = True
            self._conn.close()

    def abandon(self) -> None:
        """Drop the connection without a goodbye, from any thread (and from finalizers).

        The connection is shut down at once, so a call in flight in another thread fails
        with ``ConnectionLostError`` and closes it there; otherwise it is closed here. (A
        file descriptor is never closed under a thread still using it: the number could be
        reused meanwhile.)
        """
        self._closed = True
        self._conn.abort()
        if self._lock.acquire(blocking=False):
            try:
                self._conn.close()
            finally:
                self._lock.release()
