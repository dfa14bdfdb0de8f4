"""The session seam: what a session sees of its server, and what its source hands it.

A server's sessions never see the :class:`~rlmesh.server.server.EnvServer`. Each sees a
narrow :class:`Host` (options, what is served, admission, counters, resumption). What is
served is a :class:`Source`: it lends each session a resource (an env, a model...) and supplies
the :data:`Handler` of each op; handlers in turn see their session only as a
:class:`SessionPort`. The env source is :class:`rlmesh.server.sources.EnvSource`, the model
source :class:`rlmesh.models.serve.ModelSource`; a new kind of source implements
:class:`Source` and nothing else changes.
"""

from __future__ import annotations

import abc
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from rlmesh.server.deadline import Deadline, Watchdog
from rlmesh.server.options import ServeOptions
from rlmesh.server.replies import InPlace
from rlmesh.server.resume import Parked, ResumeRegistry

__all__ = ["Handler", "Host", "SessionPort", "SlotStepper", "Source"]

log = logging.getLogger("rlmesh.server")

Handler = Callable[[list[Any]], None]
"""Answers one request ``[op, request_id, *args]`` (through the session's replies)."""
SlotStepper = Callable[..., None]
"""Answers one step in one call: ``stepper()`` reads a slot step from its slot,
``stepper((rid, action))`` answers one the compiled steps read (:meth:`Source.slot_stepper`)."""


class SessionPort(Protocol):
    """What a request handler sees of its session (:class:`rlmesh.server.session.Session`)."""

    host: Host
    session_id: int
    resource: Any
    """What the source lent this session; a restart may replace it."""
    vector: bool
    deadline: Deadline | None
    has_reset: bool
    restarts_left: int
    busy: bool
    """Whether a request is being answered (a draining server lets its reply out)."""

    def send(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        """Send a reply (kept for a resuming client unless ``keep`` is false)."""

    def send_frame(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        """Send a reply as a frame, never in place (as :meth:`send` otherwise)."""

    def send_step(self, rid: int, obs: Any, reward: Any, terminated: Any, truncated: Any,
                  info: Any) -> None:
        """Send a step's OK reply (written in place when the request was a slot step)."""

    def in_place(self) -> InPlace | None:
        """Where a slot step is answered in place (``None``: every reply is a frame)."""

    def error(self, rid: Any, code: str, message: str, *, exc: BaseException | None = None,
              fatal: bool = False) -> None:
        """Answer with an error reply; the session goes on unless ``fatal``."""

    def fatal(self, rid: Any, code: str, message: str, *,
              exc: BaseException | None = None) -> NoReturn:
        """Answer with an error reply and end the session."""

    def release(self) -> None:
        """Give the resource back to the source."""


class Source(abc.ABC):
    """What a server serves: its contract, a resource per session, and their request handlers.

    Attributes:
        contract: The fields of the handshake contract that describe what is served.
        noun: What error messages call the served thing (``"env"``, ``"model"``).
    """

    contract: dict[str, Any]
    noun = "env"

    @property
    @abc.abstractmethod
    def busy(self) -> bool:
        """Whether a new session would be refused as busy now (for health probes)."""

    @property
    @abc.abstractmethod
    def shared(self) -> bool:
        """Whether every session shares one resource (it cannot be rebuilt or forked)."""

    @abc.abstractmethod
    def acquire(self) -> Any:
        """The resource of a new session.

        Raises:
            EnvBusyError: If it cannot be lent now.
        """

    @abc.abstractmethod
    def release(self, resource: Any) -> None:
        """Take back a session's resource when the session ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything (the server is shutting down). Idempotent."""

    @abc.abstractmethod
    def handlers(self, session: SessionPort) -> dict[int, Handler]:
        """The request handlers of ``session``, by op code.

        PING, CLOSE and SHUTDOWN are the session's own.
        """

    def capabilities(self, options: ServeOptions) -> list[str]:
        """The protocol capabilities this source offers (in the contract)."""
        return []

    def slot_stepper(self, session: SessionPort) -> SlotStepper | None:
        """What answers a slot step of ``session`` (:mod:`rlmesh.wire.slots`) in one call.

        The session calls it for each slot step it receives, in place of the STEP handler
        (``None``, the default: slot steps go to the STEP handler like any request): with
        no argument for a step still in its slot, or with the ``(rid, action)`` the
        compiled steps read (:meth:`rlmesh.transport.fastslots.ServerSteps.take`). Over a
        plain socket it answers the fixed STEP requests the compiled frames read
        (:meth:`rlmesh.transport.fastframes.ServerFrames.take`), always with an argument.
        """
        return None

    def compiled_stepper(self, session: SessionPort) -> Callable[[], int] | None:
        """What serves a step of ``session`` in one compiled call, once it has reset.

        Where the session has compiled steps
        (:class:`~rlmesh.transport.extensions.ServesSteps`), it calls it for each request it
        awaits after a reset: it answers a step of the fixed layout and returns ``DONE``,
        or returns the compiled ``take``'s ``RECEIVE`` or ``ASLEEP`` and the session
        receives the request on the Python path. ``None``, the default: the session takes
        and answers its steps with :meth:`slot_stepper`.
        """
        return None


class Host:
    """A server's shared state, as its sessions use it.

    Args:
        options: How the server behaves.
        source: What it serves.
        token: The shared secret clients must prove they hold (``None``: no token).
        tls: The TLS context, if the server speaks TLS.
        request_shutdown: Shuts the server down from a session's thread (an allowed remote
            ``shutdown()``).
    """

    def __init__(self, options: ServeOptions, source: Source, token: bytes | None,
                 tls: ssl.SSLContext | None, request_shutdown: Callable[[], None]) -> None:
        self.options = options
        self.source = source
        self.token = token
        self.tls = tls
        self.request_shutdown = request_shutdown
        self._lock = threading.Lock()
        self._admitted = 0
        self._stopping = threading.Event()
        self.stats: dict[str, int] = {"sessions": 0, "restarts": 0, "deadlines": 0,
                                      "resumes": 0}
        """Counters since start: sessions admitted, envs restarted, env calls that ran past
        ``step_deadline``, sessions resumed."""
        self.resumes: ResumeRegistry | None = None
        if options.resume_window is not None:
            self.resumes = ResumeRegistry(options.resume_window, self.release_parked)
        self.watchdog: Watchdog | None = None
        if options.step_deadline is not None:
            self.watchdog = Watchdog(options.step_deadline, lambda: self.count("deadlines"))

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down (no new session is admitted)."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Mark the server as shutting down."""
        self._stopping.set()
        if self.watchdog is not None:
            self.watchdog.stop()

    def admit(self) -> bool:
        """Count a new session in, unless ``max_sessions`` are already being served."""
        limit = self.options.max_sessions
        with self._lock:
            if limit is not None and self._admitted >= limit:
                return False
            self._admitted += 1
            self.stats["sessions"] += 1
            return True

    def dismiss(self) -> None:
        """Count an admitted session out."""
        with self._lock:
            self._admitted -= 1

    def count(self, event: str) -> None:
        """Add one to ``stats[event]``."""
        with self._lock:
            self.stats[event] += 1

    def release_parked(self, parked: Parked) -> None:
        """Free a parked session nobody resumed (what it held, and its ``max_sessions`` slot)."""
        try:
            self.source.release(parked.resource)
        except Exception:  # (the resume reaper must go on)
            log.exception("releasing a parked session failed")
        self.dismiss()
