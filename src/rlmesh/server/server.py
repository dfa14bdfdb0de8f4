"""``EnvServer``: serve an env (or an env factory, or any source) over TCP or a unix socket.

The server binds, accepts connections and gives each one a
:class:`~rlmesh.server.session.Session` in a thread of its own; it drains and stops them on
shutdown. What is served and how requests are answered is its
:class:`~rlmesh.server.seam.Source`'s business; what sessions see of the server is a
narrow :class:`~rlmesh.server.seam.Host`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import os
import signal
import socket
import ssl
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

from rlmesh.protocol.auth import token_from
from rlmesh.server.accept import Acceptor, signal_wakeups
from rlmesh.server.admission import Gate, peer_key
from rlmesh.server.checks import check_exposure, check_source, source_of
from rlmesh.server.compat import with_compat
from rlmesh.server.options import ServeOptions
from rlmesh.server.seam import Host
from rlmesh.server.session import Session
from rlmesh.server.sources import EnvSource
from rlmesh.server.workers import WorkerPool
from rlmesh.specs import EnvContractView
from rlmesh.transport import Transport, memory
from rlmesh.transport.memory import MemoryListener, MemoryTransport
from rlmesh.transport.sockets import Address, listen, resolve_address, tune
from rlmesh.transport.stream import Connection

__all__ = ["EnvServer", "stop_on_signals"]

log = logging.getLogger("rlmesh.server")
_CPUS = os.cpu_count() or 1


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Make SIGTERM and SIGINT stop :meth:`EnvServer.serve` cleanly in this process.

    Installed explicitly, so it also works where SIGINT was inherited as ignored (a
    background job of a non-interactive shell, for instance). Main thread only.
    """
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)


class EnvServer(EnvContractView):
    """Serves one env, or one env per session from a factory, to remote clients.

    Args:
        env: A Gymnasium env (wrappers included), any object with ``observation_space``,
            ``action_space``, ``reset(seed=None, options=None)``, ``step(action)`` and
            ``close()``, a zero-argument callable returning such an env, or a registered
            Gymnasium env id. An instance serves one session at a time; a factory gives every
            session its own env. (Also any :class:`~rlmesh.server.seam.Source`, such as
            the model source ``Model.serve`` uses.)
        address: ``"host:port"``, ``"tcp://host:port"``, ``"unix:///path"``, or
            ``"memory://name"`` (reachable in this process only, for tests). Defaults to
            ``127.0.0.1:5555``. Port 0 picks a free port (see :attr:`address`).
        host: TCP host, instead of ``address``.
        port: TCP port, instead of ``address``.
        path: Unix socket path, instead of ``address``.
        transport: ``"tcp"`` or ``"unix"``: which kind ``host``/``port``/``path`` name.
        options: A :class:`~rlmesh.ServeOptions`.
        workers: Processes serving this endpoint. With more than one (a factory and a TCP
            address are needed), this process and ``workers - 1`` children share the port
            through ``SO_REUSEPORT`` and the kernel spreads sessions over them; the children
            stop with this server, or by themselves if this process dies.
        reuse_port: Bind with ``SO_REUSEPORT`` (set for you when ``workers > 1``).
        token: Shared secret clients must prove they hold (challenge-response; it never
            crosses the wire). Defaults to ``RLMESH_TOKEN``; ``None`` without it means no
            authentication, and binding beyond loopback without one (or client
            certificates) warns.
        tls: Serve over TLS with this context (see :func:`rlmesh.tls.server_context`);
            required for a ``tls://`` address.
        tags: The env's tags, published in its contract's ``metadata`` (a mapping, or an
            object with ``to_dict()`` or ``to_metadata()``; see
            :func:`rlmesh.server.sources.tags_metadata`); kept as :attr:`tags`.
        framework: ``"torch"`` or ``"jax"`` for an env whose ``step`` needs its action as
            that framework's arrays (``"numpy"``, the default, changes nothing).
        device: Where those arrays go (``"cuda:0"``, a ``torch.device``...); needs
            ``framework="torch"`` or ``"jax"``.
        compat: ``"gym"`` serves an env of the old ``gym`` package (0.21 to 0.26) as a
            Gymnasium env: an id is made with the old ``gym.make``, and every env is wrapped
            in :class:`~rlmesh.server.oldgym.OldGymEnv` (see ``docs/old-gym.md``).

    The socket is bound when the server is constructed. Example::

        with EnvServer(gym.make("CartPole-v1"), "127.0.0.1:0") as server:
            server.start()
            print(server.address)
    """

    def __init__(
        self,
        env: Any,
        address: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        transport: str | None = None,
        options: ServeOptions | None = None,
        workers: int = 1,
        reuse_port: bool = False,
        token: str | bytes | None = None,
        tls: ssl.SSLContext | None = None,
        tags: Any = None,
        framework: str | None = None,
        device: Any = None,
        compat: str | None = None,
    ) -> None:
        self.options = options or ServeOptions()
        self.token = token_from(token)
        requested = resolve_address(address, host, port, path, transport)
        check_exposure(requested, self.token, tls, workers)
        self.tls = tls
        self.tags = tags
        self.source = source_of(with_compat(env, compat), tags, framework, device)
        self._pool: WorkerPool | None = None
        try:
            check_source(self.source, self.options, workers)
            self._listener, self._address = self._bind(requested, workers, reuse_port)
        except BaseException:
            self.source.close()
            raise
        self._host = Host(self.options, self.source, self.token, tls, self._request_shutdown)
        self._gate = Gate(self.options)
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._sessions: dict[int, tuple[Session, threading.Thread]] = {}
        self._ids = itertools.count(1)
        self._running = False
        self._loop_done = threading.Event()
        """Set while no accept loop runs (before serving, and once the loop has returned)."""
        self._loop_done.set()
        self._loop_thread: threading.Thread | None = None
        """The thread running the accept loop, while it runs."""
        self._stopped = threading.Event()
        self._shutdown_done = False

    def _bind(self, requested: Address, workers: int,
              reuse_port: bool) -> tuple[socket.socket | MemoryListener, Address]:
        """Listen, and start the other worker processes sharing the port."""
        if requested.kind == "memory":
            return memory.listen(requested.path, self.options.max_message_bytes), requested
        listener, bound = listen(requested, self.options.backlog, reuse_port or workers > 1)
        if workers > 1:
            assert isinstance(self.source, EnvSource)
            command = ["serve", str(bound), json.dumps(dataclasses.asdict(self.options))]
            extra_env = {"RLMESH_TOKEN": self.token.decode("latin-1")} if self.token else {}
            try:
                self._pool = WorkerPool(self.source.factory, [command] * (workers - 1),
                                        env=extra_env)
            except BaseException:
                listener.close()
                raise
        return listener, bound

    # -- public API -----------------------------------------------------------------------

    def _handshake_contract(self) -> dict[str, Any]:
        contract: dict[str, Any] = self.source.contract
        if contract.get("kind") not in ("env", "vector_env"):
            raise AttributeError(f"this server serves a {contract.get('kind')!r}, not an env: "
                                 "it has no env_contract")
        return contract

    @property
    def address(self) -> str:
        """The bound address, with the real port when port 0 was requested."""
        return str(self._address)

    @property
    def stats(self) -> dict[str, int]:
        """Counters since start.

        ``sessions`` admitted, envs ``restarts``, env calls that ran past ``step_deadline``
        (``deadlines``), sessions ``resumes``.
        """
        return self._host.stats

    def describe(self) -> str:
        """What this server serves, in a few words (its banner says it)."""
        contract = self.source.contract
        if contract["kind"] == "model":
            return f"model {contract.get('name')}"
        spec = contract.get("spec")
        what = str(spec["id"]) if isinstance(spec, dict) and spec.get("id") else "a custom env"
        if contract["kind"] == "vector_env":
            what = f"a vector env of {contract.get('num_envs')} x {what}"
        how = ("one instance, one session at a time" if self.source.shared
               else "one env per session")
        if self._pool is not None:
            how += f", {len(self._pool.pids) + 1} processes"
        return f"{what} ({how})"

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the child workers (empty unless ``workers > 1``)."""
        return self._pool.pids if self._pool is not None else []

    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` has begun."""
        return self._host.stopping

    def serve(self, *, banner: bool = True) -> None:
        """Serve in the calling thread until :meth:`shutdown` or Ctrl+C (which shuts down).

        Args:
            banner: Print one line to stderr saying what is served where (``rlmesh:
                serving CartPole-v1 (one env per session) on 127.0.0.1:5555; Ctrl+C
                stops``). Sessions are logged through :mod:`logging` (logger
                ``rlmesh.server``, INFO).
        """
        self._claim_run()
        if banner:
            print(f"rlmesh: serving {self.describe()} on {self.address}; Ctrl+C stops",
                  file=sys.stderr, flush=True)
        try:
            with signal_wakeups() as signal_fd:
                self._accept_loop(signal_fd)
        except KeyboardInterrupt:
            log.info("interrupted; shutting down")
        except Exception:
            log.exception("the accept loop failed; the server stops")
            raise
        finally:
            self._loop_done.set()
            self.shutdown()
            self._stopped.wait()  # (a shutdown another thread began may still be closing)

    def start(self) -> EnvServer:
        """Serve from a background thread and return at once."""
        self._claim_run()
        threading.Thread(target=self._accept_in_background, name="rlmesh-accept",
                         daemon=True).start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has shut down.

        Args:
            timeout: Seconds to wait; ``None`` or ``math.inf`` waits as long as it takes.

        Returns:
            ``True`` if it stopped, ``False`` if ``timeout`` elapsed first.

        Raises:
            ValueError: If ``timeout`` is NaN or negative.
        """
        if timeout is None or timeout == math.inf:
            return self._stopped.wait()
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool):
            raise TypeError(f"timeout must be a number of seconds or None, not "
                            f"{type(timeout).__qualname__}")
        if math.isnan(timeout) or timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds (None or math.inf: no limit), "
                             f"not {timeout!r}")
        deadline = time.monotonic() + timeout
        while not self._stopped.is_set():  # (in slices: one huge wait overflows)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._stopped.wait(min(left, 86400.0))
        return True

    def shutdown(self) -> None:
        """Stop accepting, drain, end every session, and close the env. Idempotent.

        Requests being served get ``drain_timeout`` seconds to finish and send their
        replies; then every connection is closed and each session thread gets
        ``close_timeout`` seconds to end and close its env.
        """
        with self._lock:
            if self._shutdown_done:
                return
            self._shutdown_done = True
            self._host.stop()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        me = threading.current_thread()
        # The pipe and the listener close only once the accept loop (serve()'s or start()'s)
        # has returned: a loop about to wait on them, or woken but not yet run, would wait
        # on nothing for good. A handler on the loop's own thread (a signal's) cannot wait
        # for it: the loop sees ``stopping`` once it returns.
        if self._loop_thread is not me:
            self._loop_done.wait(self.options.close_timeout)
        try:
            with self._lock:  # the accept loop has stopped: no session starts after this
                sessions = list(self._sessions.values())
            self._drain([s for s, _ in sessions])
            for _, thread in sessions:
                if thread is not me and thread.ident is not None:  # (never unstarted ones)
                    thread.join(self.options.close_timeout)
            self._close_sources()
            with contextlib.suppress(OSError):
                self._listener.close()
            if self._pool is not None:
                self._pool.close()
            if self._address.kind == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(self._address.path)
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        finally:
            self._stopped.set()  # (serve() waits for it: never left unset)
        log.info("server %s stopped", self.address)

    def __enter__(self) -> EnvServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped.is_set() else "running" if self._running else "idle"
        return f"<EnvServer {self.address} {state}>"

    # -- internals ------------------------------------------------------------------------

    def _drain(self, sessions: list[Session]) -> None:
        """Close idle connections now and busy ones once their reply is out (bounded)."""
        deadline = time.monotonic() + self.options.drain_timeout
        while sessions:
            busy = []
            for session in sessions:
                if session.working and time.monotonic() < deadline:
                    busy.append(session)
                else:
                    session.conn.abort()
            sessions = busy
            if sessions:
                time.sleep(0.005)

    def _close_sources(self) -> None:
        """Release parked sessions and close the source, within ``close_timeout``."""
        resumes = self._host.resumes
        parked = resumes.close() if resumes is not None else []

        def close() -> None:
            for one in parked:
                self._host.release_parked(one)
            self.source.close()

        closer = threading.Thread(target=close, name="rlmesh-close", daemon=True)
        closer.start()
        closer.join(self.options.close_timeout)
        if closer.is_alive():
            log.warning("an env's close() did not return within close_timeout=%ss; leaving "
                        "it behind", self.options.close_timeout)

    def _request_shutdown(self) -> None:
        """Shut down from a session thread (a client's allowed ``shutdown()`` request)."""
        threading.Thread(target=self.shutdown, name="rlmesh-shutdown", daemon=True).start()

    def _claim_run(self) -> None:
        with self._lock:
            if self._running or self._shutdown_done:
                raise RuntimeError("this EnvServer is already serving or has been shut down")
            self._running = True
            self._loop_done.clear()

    def _accept_in_background(self) -> None:
        """The accept thread of :meth:`start`: an unexpected failure stops the server."""
        try:
            self._accept_loop()
        except Exception:
            log.exception("the accept loop failed; the server stops")
            self.shutdown()

    def _accept_loop(self, signal_fd: int | None = None) -> None:
        log.debug("accepting connections on %s", self.address)
        self._loop_thread = threading.current_thread()
        try:
            acceptor = Acceptor(self._listener, self._wake_r, self._gate, signal_fd)
            try:
                while not self._host.stopping:
                    accepted = acceptor.next()
                    if accepted is None or self._host.stopping:
                        if accepted is not None:
                            accepted.close()
                        break
                    if self._start_session(accepted):
                        acceptor.recovered()
                    else:
                        acceptor.back_off("a session thread could not be started")
            finally:
                acceptor.close()
        finally:
            self._loop_thread = None
            self._loop_done.set()

    def _start_session(self, accepted: socket.socket | MemoryTransport) -> bool:
        """Give ``accepted`` a session in a thread of its own.

        Returns:
            ``False`` if no thread could be started (the connection is closed then).
        """
        session_id = next(self._ids)
        conn: Transport
        if isinstance(accepted, MemoryTransport):
            conn, peer = accepted, "memory"
        else:
            tune(accepted)
            conn, peer = Connection(accepted, self.options.max_message_bytes), peer_key(accepted)
        with self._lock:
            crowded = len(self._sessions) >= _CPUS
        conn.set_spin(0 if crowded else self.options.spin)
        session = Session(self._host, conn, session_id, self._gate, peer)
        thread = threading.Thread(target=self._run_session, args=(session,),
                                  name=f"rlmesh-session-{session_id}", daemon=True)
        self._gate.add(session_id, peer, conn.abort)
        with self._lock:  # (registered before it starts: it never serves unregistered)
            if self._host.stopping:
                self._gate.done(session_id)
                session.conn.close()
                return True
            self._sessions[session_id] = (session, thread)
            try:
                thread.start()
            except RuntimeError as exc:  # can't start new thread
                del self._sessions[session_id]
                log.debug("session %d: no thread: %s", session_id, exc)
                self._gate.done(session_id)
                session.conn.close()
                return False
        return True

    def _run_session(self, session: Session) -> None:
        try:
            session.run()
        finally:
            with self._lock:
                self._sessions.pop(session.session_id, None)
