"""Sub-envs stepped in the caller's own process, beside the worker processes of ``make_vec``.

While ``make_vec``'s workers step their sub-envs, the process that sent them the actions
only waits. :class:`InlineChannel` puts that core to work: it is a channel whose endpoint is a
``SyncVectorEnv`` in this process, answered by the very handlers a worker's server runs
(:func:`rlmesh.server.env_ops.env_handlers`), so its replies and its errors are those of a
served vector env. A request is carried out when it is submitted, in the calling thread;
:meth:`InlineChannel.collect` hands the replies back in order. Steps and resets hand over the
env's own values (as ``SyncVectorEnv`` returns them); every other reply (attributes,
renders) goes through the wire's encoder and decoder, so what cannot be sent by a worker
cannot be read here either. Placed last in a fleet, its
sub-envs step after every worker has its actions, that is, while the workers step theirs.

The price is isolation: these sub-envs live in the caller's process, so one that crashes the
interpreter takes the caller with it (``make_vec(local_envs=...)`` says so).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, NoReturn

from rlmesh import protocol as P
from rlmesh.errors import ConnectionLostError, EnvClosedError, RLMeshError
from rlmesh.server.deadline import Deadline
from rlmesh.server.options import ServeOptions
from rlmesh.server.replies import Fatal, Replies
from rlmesh.server.seam import Handler, Host
from rlmesh.server.session import answer_own
from rlmesh.server.sources import EnvSource
from rlmesh.wire.decoder import Decoder

__all__ = ["InlineChannel"]

_Reply = list[Any] | RLMeshError
_HOT = frozenset({P.OP_STEP, P.OP_RESET})
"""Ops whose replies are handed over as the env returned them (the stepping path)."""


class _Capture:
    """A transport that keeps the one frame a reply was encoded to."""

    peer_flag = False

    def __init__(self) -> None:
        self.frame: tuple[bytes, list[Any]] = (b"", [])

    def send(self, header: bytes, buffers: list[Any], body_len: int, flag: bool = False
             ) -> None:
        self.frame = (header, buffers)


def _no_shutdown() -> None:
    """An in-process endpoint has no server to shut down (remote shutdown stays refused)."""


class InlineChannel:
    """A channel to a vector env in this process, answered as a worker's server answers.

    It has the part of :class:`rlmesh.client.channel.Channel` that a fleet of vector
    endpoints uses (``contract``, ``submit``, ``collect``, ``request``, ``close``,
    ``abandon``), and it is the session its handlers answer through.

    Args:
        env: The vector env (a ``gymnasium.vector.SyncVectorEnv``); the channel owns it.
        address: How errors and reprs name this endpoint.
    """

    def __init__(self, env: Any, address: str = "in-process") -> None:
        self.address = address
        self.source = EnvSource(env)
        self.host = Host(ServeOptions(), self.source, None, None, _no_shutdown)
        self.session_id = 0
        self.vector = True
        self.deadline: Deadline | None = None
        self.has_reset = False
        self.restarts_left = 0
        self.busy = False  # (a session's; nothing drains an inline channel)
        self.resource: Any = self.source.acquire()
        self.contract: dict[str, Any] = dict(self.source.contract)
        self.contract.update(capabilities=self.source.capabilities(self.host.options),
                             session=0, shm=False)
        self.timeout: float | None = None
        self.closed = False
        self._handlers: dict[int, Handler] = self.source.handlers(self)
        self._replies: collections.deque[_Reply] = collections.deque()
        self._lock = threading.Lock()
        self._next_id = 1
        self._broken: RLMeshError | None = None
        self._op = 0
        self._capture = _Capture()
        self._wire = Replies(self._capture, "env")  # type: ignore[arg-type]
        self._decoder = Decoder()

    # -- the session side (what the handlers answer through) ------------------------------

    def send(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        """Keep an OK reply for :meth:`collect` (off the stepping path, as the wire has it)."""
        if self._op in _HOT:
            self._replies.append(reply)
            return
        self._wire.send(reply, keep=False, subject=subject)
        self._keep_captured()

    def send_frame(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        """Keep an OK reply (no slots here: as :meth:`send`)."""
        self.send(reply, keep, subject)

    def send_step(self, rid: int, obs: Any, reward: Any, terminated: Any, truncated: Any,
                  info: Any) -> None:
        """Keep a step's OK reply (as :meth:`send`)."""
        self.send([P.STATUS_OK, rid, obs, reward, terminated, truncated, info])

    def in_place(self) -> None:
        """No slots here: every reply is kept as a value (see ``SessionPort.in_place``)."""
        return None

    def error(self, rid: Any, code: str, message: str, *, exc: BaseException | None = None,
              fatal: bool = False) -> None:
        """Keep the error a served endpoint would answer with (the server's own reply)."""
        self._wire.error(rid, code, message, exc=exc, fatal=fatal)
        error = self._keep_captured()
        if fatal:
            self._broken = error

    def _keep_captured(self) -> RLMeshError | None:
        """Decode the frame the server's reply code just wrote; keep the reply or its error."""
        header, buffers = self._capture.frame
        body = bytearray(b"".join(memoryview(b).cast("B") for b in buffers)) if buffers \
            else None
        decoded = self._decoder.decode(header, body)
        if decoded[0] != P.STATUS_ERROR:
            self._replies.append(decoded)
            return None
        error = P.error_from_map(decoded[2])
        self._replies.append(error)
        return error

    def fatal(self, rid: Any, code: str, message: str, *,
              exc: BaseException | None = None) -> NoReturn:
        """Keep the error and end the session (the channel is unusable afterwards)."""
        self.error(rid, code, message, exc=exc, fatal=True)
        raise Fatal(message)

    def release(self) -> None:
        """Give the env back to its source (a restart would build another)."""
        self.source.release(self.resource)

    # -- the client side ------------------------------------------------------------------

    def submit(self, op: int, *args: Any) -> int:
        """Carry out one request now; :meth:`collect` returns its reply.

        Returns:
            The request id.
        """
        with self._lock:
            if self.closed:
                raise EnvClosedError("this env has been closed")
            if self._broken is not None:
                raise ConnectionLostError(f"the in-process endpoint is unusable after an "
                                          f"earlier error: {self._broken}")
            rid = self._next_id
            self._next_id = rid + 1
            msg = [op, rid, *args]
            self._op = op
            handle = self._handlers.get(op)
            try:
                if handle is not None:
                    handle(msg)
                else:
                    answer_own(self, msg)
            except Fatal:
                pass  # (its error reply is kept)
            return rid

    def collect(self) -> list[Any]:
        """The reply to the oldest submitted request.

        Raises:
            RuntimeError: If nothing is pending.
            RLMeshError: The error a served endpoint would have answered with.
        """
        with self._lock:
            if not self._replies:
                raise RuntimeError("no request is pending")
            reply = self._replies.popleft()
        if isinstance(reply, RLMeshError):
            raise reply
        return reply

    def request(self, op: int, *args: Any, timeout: Any = None) -> list[Any]:
        """Carry out one request and return its reply (``timeout`` changes nothing here)."""
        self.submit(op, *args)
        return self.collect()

    def set_timeout(self, timeout: float | None) -> None:
        """Accepted for a channel's interface; in-process calls run to completion."""
        self.timeout = timeout

    def close(self, timeout: float = 1.0) -> None:
        """Close the env (exactly once). Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._replies.clear()
        self.source.release(self.resource)
        self.source.close()

    def abandon(self) -> None:
        """Refuse every later request (from any thread); :meth:`close` still frees the env."""
        self._broken = self._broken or ConnectionLostError("the in-process endpoint was "
                                                           "abandoned")

    def __repr__(self) -> str:
        return f"<InlineChannel {self.address}>"
