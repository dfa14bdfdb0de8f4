"""The client side of one connection: handshake, then request/reply with timeouts.

:class:`Channel` is what the clients hold. Its layers, bottom up: the connection's exchanges
and their failures (:mod:`rlmesh.client.exchange`), resuming a broken session
(:mod:`rlmesh.client.resuming`), and here the public calls and the step's shortest paths.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from rlmesh import protocol as P
from rlmesh.client.options import DEFAULT, Default, limit_seconds
from rlmesh.client.resuming import Resumable
from rlmesh.errors import ProtocolError, RLMeshError, TransportError
from rlmesh.transport import fastframes, fastslots
from rlmesh.transport.shmlink import STEP_FRAME
from rlmesh.wire.fixed import StepFrames
from rlmesh.wire.slots import SlotSteps

__all__ = ["DEFAULT", "Channel", "Default"]


class Channel(Resumable):
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
                            return self._slot_step(rid, got)  # type: ignore[arg-type]
                    if slots.write_request(rid, action):
                        self._next_id = rid + 1
                        return self._slot_step(rid)
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

    def _slot_step(self, rid: int, fast: int = fastslots.DECLINED) -> list[Any]:
        """Announce the slot step ``rid`` already written, and answer its reply (locked).

        ``fast`` is where the compiled step stopped (:mod:`rlmesh.transport.fastslots`), if it
        already announced the step (``RECEIVE``: announced, receive the reply). The reply is
        a slot step, or a frame (an error, or a reply of another layout).
        """
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
            return self._slot_reply(P.OP_STEP, rid, self.timeout)
        return self._reply_locked(P.OP_STEP, rid, self.timeout, reply_header, body)

    def submit(self, op: int, *args: Any) -> int:
        """Send a request without waiting; :meth:`collect` its reply later, in order.

        Pipelining lets one thread keep many endpoints busy at once. A STEP with nothing
        else pending, over a link that agreed on slot steps and without a resume window, is
        written in place, so the server answers it on its shortest path (:meth:`collect`
        reads the reply slot).

        Returns:
            The request id.
        """
        with self._lock:
            try:
                slots = self._slots
                if slots is not None and op == P.OP_STEP and len(args) == 1 \
                        and not self._pending and self._resume is None \
                        and self._broken is None and not self._closed:
                    rid = self._next_id
                    if self._post_step(rid, slots, args[0]):
                        self._pending.append((rid, op))
                        return rid
                rid = self._send_locked(op, args, self.timeout)
                self._pending.append((rid, op))
            except BaseException as exc:
                self._stopped(exc, op)
                raise
            return rid

    def _post_step(self, rid: int, slots: SlotSteps, action: Any) -> bool:
        """Write and announce the slot step ``rid`` for :meth:`collect` (locked).

        The compiled half-step (:mod:`rlmesh.transport.fastslots`) goes first where there is
        one. Returns ``False`` if ``action`` is of no slot layout (nothing was sent).
        """
        self._next_id = rid + 1  # (an id left unused if the action has no slot layout)
        fast = self._fast
        conn: Any = self._conn  # (only links have slots)
        try:
            got = fast.post(rid, action) if fast is not None else fastslots.DECLINED
        except BaseException as exc:
            self._interrupted(exc, P.OP_STEP)
            raise
        if got == fastslots.DECLINED and not slots.write_request(rid, action):
            return False
        try:
            if got == fastslots.DECLINED:
                conn.send_written()
            elif got == fastslots.WAKE:
                conn.wake_peer()
        except (BlockingIOError, TimeoutError, OSError, TransportError) as exc:
            raise self._translate(exc, P.OP_STEP, self.timeout) from None
        except BaseException as exc:
            self._interrupted(exc, P.OP_STEP)
            raise
        self._posted = rid
        return True

    def _posted_reply(self, rid: int) -> list[Any]:
        """The reply to the slot step ``rid`` that :meth:`_post_step` sent (locked)."""
        if self._broken is not None or self._closed:  # (nothing to read there: abandoned)
            raise self._unusable()
        fast = self._fast
        code = fastslots.RECEIVE
        if fast is not None:
            try:
                got = fast.reply(rid)
            except BaseException as exc:
                self._interrupted(exc, P.OP_STEP)
                raise
            if type(got) is list:
                return got
            code = got  # type: ignore[assignment]
        return self._slot_step(rid, code)

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
                    if rid == self._posted:
                        return self._posted_reply(rid)
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
