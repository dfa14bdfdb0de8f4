"""One client connection on the server, from handshake to goodbye: the ``Session``.

A session owns its connection's lifecycle: the (TLS and protocol) handshake, the request
loop, and the end (the resource released, or parked for a client that may resume). What the
requests mean is its source's business: the loop hands each request to the handler its
source supplied for that op (:meth:`rlmesh.server.seam.Source.handlers`), and answers
PING, CLOSE and SHUTDOWN itself. A session sees its server only through a narrow
:class:`~rlmesh.server.seam.Host`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from rlmesh import protocol as P
from rlmesh.errors import TransportError
from rlmesh.server.admission import Gate
from rlmesh.server.deadline import Deadline
from rlmesh.server.handshake import handshake
from rlmesh.server.replies import SLOT_STEP, Fatal, Replies
from rlmesh.server.resume import Parked
from rlmesh.server.seam import Host, SessionPort, SlotStepper
from rlmesh.transport import Transport, fastslots
from rlmesh.transport.sockets import wrap_server
from rlmesh.transport.stream import Connection

__all__ = ["Session", "answer_own"]

log = logging.getLogger("rlmesh.server")
TLS_HANDSHAKE_TIMEOUT = 10.0


class Session(Replies):
    """Serves one connection until the client closes it, it breaks, or the server stops.

    Args:
        host: What the session sees of its server.
        conn: The accepted connection.
        session_id: Its number, for the log.
        gate: Where the connection is pending until its client has authenticated (see
            :mod:`rlmesh.server.admission`); ``None``: not tracked.
        peer: Whom the connection counts against (:func:`~rlmesh.server.admission.peer_key`).

    Until the client has authenticated (:meth:`trusted`), its socket accepts only frames of
    ``max_handshake_bytes``.
    """

    def __init__(self, host: Host, conn: Transport, session_id: int, gate: Gate | None = None,
                 peer: str = "") -> None:
        super().__init__(conn, host.source.noun)
        self.socket = conn if isinstance(conn, Connection) else None
        """The socket connection (``conn`` wraps it once the same-host link is on; ``None``
        for an in-process connection)."""
        self.host = host
        self.session_id = session_id
        self.gate = gate
        self.peer = peer
        if self.socket is not None:
            small = min(host.options.max_handshake_bytes, host.options.max_message_bytes)
            self.socket.set_limits(small, small)
        self.resource: Any = None
        """What the source lent this session (its env, a model...)."""
        self.vector = host.source.contract["kind"] == "vector_env"
        self.deadline = Deadline() if host.options.step_deadline is not None else None
        """The step-deadline clock of this session's env calls (``None``: no deadline)."""
        self.has_reset = False
        self.restarts_left = host.options.restart_on_error
        self.admitted = False
        """Whether this session holds a ``max_sessions`` slot."""
        self.busy = False
        """Whether a request is being served (its reply not yet sent; see :attr:`working`)."""
        self.replay = False
        """Whether the next request may be the resent one of a resumed session."""
        self.ended = False
        """Set once the session ended for good (closed, expired): never parked."""

    def run(self) -> None:
        """Serve until the end; never raises."""
        opened = False
        ending = "the client closed it"
        try:
            if self._secure() and handshake(self):
                opened = True
                self._loop()
                self.ended = True
        except (BlockingIOError, TimeoutError):
            self.ended = True  # idle_timeout: the client is there but silent
            ending = "idle for longer than idle_timeout"
        except (TransportError, OSError):
            # client went away or the server is stopping
            ending = "the server stopped" if self.host.stopping else "the connection was lost"
        except Fatal as exc:
            self.ended = True
            ending = f"ended after an error ({exc})"
        except Exception:
            self.ended = True
            ending = "internal error"
            log.exception("session %d: internal error", self.session_id)
            with contextlib.suppress(Exception):
                self.error(None, P.E_INTERNAL, "internal server error; the session is closed",
                           fatal=True)
        finally:
            self._finish(opened, ending)

    def trusted(self) -> None:
        """The client has authenticated: lift the handshake's frame limit and deadline."""
        options = self.host.options
        if self.socket is not None:
            self.socket.set_limits(options.max_message_bytes, options.max_header_bytes)
        if self.gate is not None:
            self.gate.done(self.session_id)

    def _secure(self) -> bool:
        """Run the TLS handshake if the server has TLS; ``False`` if it failed."""
        tls = self.host.tls
        if tls is None or self.socket is None:
            return True
        try:
            timeout = min(TLS_HANDSHAKE_TIMEOUT, self.host.options.handshake_timeout)
            self.socket.upgrade(wrap_server(self.socket.sock, tls, timeout))
        except (OSError, ValueError) as exc:
            log.warning("session %d: TLS handshake failed: %s", self.session_id, exc)
            return False
        return True

    def _finish(self, opened: bool, ending: str) -> None:
        """Park or release the resource, give back the slot, close the connection."""
        self.busy = False
        if self.gate is not None:
            self.gate.done(self.session_id)
        if self.host.watchdog is not None:
            self.host.watchdog.forget(self)
        if not self._park():
            self.release()
            if self.admitted:
                self.admitted = False
                self.host.dismiss()
            if opened:
                log.info("session %d: disconnected: %s", self.session_id, ending)
        self.conn.close()

    def _loop(self) -> None:
        """Answer requests in order until the client closes the session."""
        handlers = self.host.source.handlers(self)
        if self.host.watchdog is not None:
            self.host.watchdog.watch(self)
        slotted = self.slots is not None
        slot_step, take, serve = self._steppers()
        receive, handler_of = self.receive, handlers.get
        while True:
            self.busy = False
            got: Any = None  # (what a compiled call left: ASLEEP, its poll missed)
            if take is not None:  # (the compiled steps: a step served, or read, in one call)
                self.slotted = slotted
                got = serve() if serve is not None and self.has_reset else take()
                if got == fastslots.DONE:  # (served; take never says DONE)
                    continue
                if type(got) is tuple:  # (read by take: the slot stepper answers it)
                    self.busy = True
                    slot_step(got)  # type: ignore[misc]  # (set whenever take is)
                    continue
            msg = receive(self.fast_slots.spun_from  # type: ignore[union-attr]  # (slots)
                          if got == fastslots.ASLEEP else None)
            self.busy = True
            if msg is SLOT_STEP:
                slot_step()  # type: ignore[misc]  # (set whenever receive returns SLOT_STEP)
                continue
            if self.replay and self._replayed(msg[1]):
                continue
            handle = handler_of(msg[0])
            if handle is not None:
                handle(msg)
            elif not self._own(msg):
                return
            msg = None  # (the last request is not held while the next one is awaited)

    def _steppers(self) -> tuple[SlotStepper | None, Callable[[], Any] | None,
                                 Callable[[], int] | None]:
        """The source's slot stepper, the compiled ``take`` and the compiled stepper, if any.

        Each is ``None`` where it does not apply (see :meth:`Source.slot_stepper
        <rlmesh.server.seam.Source.slot_stepper>` and :meth:`~rlmesh.server.seam.Source.
        compiled_stepper`).
        """
        slotted = self.slots is not None
        source = self.host.source
        slot_step = source.slot_stepper(self) if (
            slotted or self.fast_frames is not None) else None
        self.slot_steps_apart = slotted and slot_step is not None  # (no resume key: no replay)
        fast = None if slot_step is None else self.fast_slots if slotted else self.fast_frames
        if fast is None:
            return slot_step, None, None
        return slot_step, fast.take, source.compiled_stepper(self)

    @property
    def working(self) -> bool:
        """Whether a request is being served now, in Python or in a compiled step's call."""
        if self.busy:
            return True
        fast = self.fast_slots if self.slots is not None else self.fast_frames
        return fast is not None and fast.stepping

    def _replayed(self, rid: Any) -> bool:
        """Resend the kept reply if this is the request a resumed client sent again."""
        self.replay = False
        last = self.last_reply
        if last is None or last[0] != rid:
            return False
        self.conn.send(*last[1:], self.conn.peer_flag)  # executed before the break
        return True

    def _own(self, msg: list[Any]) -> bool:
        """Answer PING, CLOSE or SHUTDOWN; ``False`` once the session is over."""
        return answer_own(self, msg)

    def expire(self, now: float, limit: float) -> bool:
        """Answer a call running past ``limit`` with ``StepDeadlineError`` (the watchdog's).

        Returns:
            Whether this session's call expired (its connection is then shut down).
        """
        call = self.deadline.overdue(now, limit) if self.deadline is not None else None
        if call is None:
            return False
        log.warning("session %d: env call ran past the step deadline of %ss; ending the "
                    "session", self.session_id, limit)
        # Never blocks: a client that does not read its replies cannot stall the watchdog.
        if not self.last_word(call[0], P.E_DEADLINE,
                              f"the env's call ran past the server's step deadline of "
                              f"{limit}s; the session is closed"):
            log.warning("session %d: its client does not take its replies; the deadline "
                        "error was not sent", self.session_id)
        self.conn.abort()
        return True

    def release(self) -> None:
        """Give the resource back (a factory-built env is closed). Idempotent."""
        resource, self.resource = self.resource, None
        if resource is not None:
            self.host.source.release(resource)

    def _park(self) -> bool:
        """Keep the resource for a resuming client, if this session may be resumed."""
        key, resumes = self.key, self.host.resumes
        if key is None or resumes is None:
            return False
        if self.ended or self.resource is None or self.host.stopping:
            resumes.forget(key)
            return False
        parked = Parked(self.resource, self.has_reset, self.last_reply, self.restarts_left)
        if not resumes.park(key, parked):
            return False
        log.info("session %d: connection lost; kept for %ss for the client to resume",
                 self.session_id, resumes.window)
        self.resource = None
        self.admitted = False  # the slot goes with the parked resource
        return True


def answer_own(session: SessionPort, msg: list[Any]) -> bool:
    """Answer PING, CLOSE or SHUTDOWN (the session's own ops); ``False`` once it is over.

    Any other op ends the session with a protocol error (:meth:`SessionPort.fatal`).
    """
    op, rid = msg[0], msg[1]
    if op == P.OP_PING:
        session.send([P.STATUS_OK, rid, *msg[2:]])
        return True
    if op == P.OP_CLOSE:
        # Release first, so the resource is free for the next client once close() returns.
        session.release()
        session.send([P.STATUS_OK, rid, None])
        return False
    if op == P.OP_SHUTDOWN:
        if not session.host.options.allow_remote_shutdown:
            session.error(rid, P.E_NOT_ALLOWED, "this server does not allow remote shutdown "
                          "(ServeOptions(allow_remote_shutdown=True))")
            return True
        log.warning("session %d: shutdown requested by the client", session.session_id)
        session.send([P.STATUS_OK, rid, None])
        session.host.request_shutdown()
        return False
    session.fatal(rid, P.E_PROTOCOL, f"unknown op {op!r}")
