"""One client connection on the server: handshake, then requests answered in order."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np

from rlmesh import protocol as P
from rlmesh.errors import TransportError
from rlmesh.models.serve import serve_requests
from rlmesh.protocol.attributes import ATTRIBUTE_OPS
from rlmesh.server.attributes import answer as answer_attribute
from rlmesh.server.resume import Parked
from rlmesh.server.session_setup import Expired, Fatal, SessionSetup, brief, qualname
from rlmesh.server.validation import make_validator
from rlmesh.transport.sockets import wrap_server

log = logging.getLogger("rlmesh.server")
TLS_HANDSHAKE_TIMEOUT = 10.0


class Session(SessionSetup):
    """Serves one connection until the client closes it, it breaks, or the server stops."""

    def run(self) -> None:
        """Serve until the end; never raises."""
        opened = False
        ending = "the client closed it"
        try:
            tls = self.server.tls
            if tls is not None:
                try:
                    self.conn.upgrade(wrap_server(self.conn.sock, tls, TLS_HANDSHAKE_TIMEOUT))
                except (OSError, ValueError) as exc:
                    log.warning("session %d: TLS handshake failed: %s", self.session_id, exc)
                    return
            if self._handshake():
                opened = True
                self._loop()
                self._ended = True
        except (BlockingIOError, TimeoutError):
            self._ended = True  # idle_timeout: the client is there but silent
            ending = "idle for longer than idle_timeout"
        except (TransportError, OSError):
            # client went away or the server is stopping
            ending = "the server stopped" if self.server.stopping else "the connection was lost"
        except Fatal as exc:
            self._ended = True
            ending = f"ended after an error ({exc})"
        except Exception:
            self._ended = True
            ending = "internal error"
            log.exception("session %d: internal error", self.session_id)
            with contextlib.suppress(Exception):
                self._error(None, P.E_INTERNAL, "internal server error; the session is closed",
                            fatal=True)
        finally:
            self.busy = False
            parked = self._park()
            if not parked:
                self._release()
                if self._admitted:
                    self._admitted = False
                    self.server.dismiss()
                if opened:
                    log.info("session %d: disconnected: %s", self.session_id, ending)
            self.conn.close()

    def _park(self) -> bool:
        """Keep the env for a resuming client, if this session may be resumed."""
        key, resumes = self._key, self._resumes
        if key is None or resumes is None:
            return False
        if self._ended or self.env is None or self.server.stopping:
            resumes.forget(key)
            return False
        parked = Parked(self.env, self._has_reset, self._last_reply, self._restarts_left)
        if not resumes.park(key, parked):
            return False
        log.info("session %d: connection lost; kept for %ss for the client to resume",
                 self.session_id, resumes.window)
        self.env = None
        self._admitted = False  # the slot goes with the parked env
        return True

    def _release(self) -> None:
        """Give the env back (a factory-built env is closed). Idempotent."""
        env, self.env = self.env, None
        if env is not None:
            self.server.source.release(env)

    # -- requests -------------------------------------------------------------------------

    def _loop(self) -> None:
        if self.server.source.contract["kind"] == "model":
            serve_requests(self, self.env)
            return
        options = self.server.options
        timed = options.step_deadline is not None
        restarts = options.restart_on_error > 0
        env = self.env
        action_space = env.action_space
        contains = make_validator(action_space)
        server = self.server
        if timed:
            server.watch(self)
        while True:
            self.busy = False
            msg = self._receive()
            self.busy = True
            op, rid = msg[0], msg[1]
            if self._replay:
                self._replay = False
                last = self._last_reply
                if last is not None and last[0] == rid:  # executed before the break
                    self.conn.send(*last[1:], self.conn.peer_flag)
                    continue
            if op == P.OP_STEP:
                if len(msg) != 3:
                    self._fatal(rid, P.E_PROTOCOL, "STEP takes one argument")
                if not self._has_reset:
                    self._error(rid, P.E_RESET_NEEDED, "call reset() before step()")
                    continue
                action = msg[2]
                if self._validate:
                    try:
                        valid = contains(action)
                    except Exception:  # a value that breaks the check is not a member
                        valid = False
                else:
                    valid = True
                if not valid:
                    self._error(rid, P.E_INVALID_ACTION,
                                f"action {brief(action)} is not in the action space "
                                f"{action_space}")
                    continue
                try:
                    result = self._timed(rid, env.step, action) if timed else env.step(action)
                    obs, reward, terminated, truncated, info = result
                except Exception as exc:
                    if restarts and self._restarts_left:
                        env = self._restart(rid, "step", exc, None, None)
                        continue
                    self._env_error(rid, "step", exc)
                    continue
                self._send([P.STATUS_OK, rid, obs, reward, terminated, truncated, info])
            elif op == P.OP_RESET:
                if len(msg) != 4 or not _valid_seed(msg[2], self._vector) or not (
                        msg[3] is None or isinstance(msg[3], dict)):
                    self._fatal(rid, P.E_PROTOCOL, "RESET takes seed (int, nil, or for a vector "
                                "env a list of num_envs ints or nils) and options (map or nil)")
                try:
                    if timed:
                        obs, info = self._timed(rid, env.reset, seed=msg[2], options=msg[3])
                    else:
                        obs, info = env.reset(seed=msg[2], options=msg[3])
                except Exception as exc:
                    if restarts and self._restarts_left:
                        env = self._restart(rid, "reset", exc, msg[2], msg[3])
                        continue
                    self._env_error(rid, "reset", exc)
                    continue
                self._has_reset = True
                self._send([P.STATUS_OK, rid, obs, info])
            elif op == P.OP_RENDER:
                render = getattr(env, "render", None)
                try:
                    if render is None:
                        frame = None
                    elif timed:
                        frame = self._timed(rid, render)
                    else:
                        frame = render()
                except Exception as exc:
                    self._env_error(rid, "render", exc)
                    continue
                self._send([P.STATUS_OK, rid, frame])
            elif op == P.OP_PING:
                self._send([P.STATUS_OK, rid, *msg[2:]])
            elif op == P.OP_CLOSE:
                # Release first, so the env is free for the next client once close() returns.
                self._release()
                self._send([P.STATUS_OK, rid, None])
                return
            elif op == P.OP_SHUTDOWN:
                if not options.allow_remote_shutdown:
                    self._error(rid, P.E_NOT_ALLOWED, "this server does not allow remote "
                                "shutdown (ServeOptions(allow_remote_shutdown=True))")
                    continue
                log.warning("session %d: shutdown requested by the client", self.session_id)
                self._send([P.STATUS_OK, rid, None])
                server.request_shutdown()
                return
            elif op in ATTRIBUTE_OPS:
                answer_attribute(self, env, msg, timed)
            else:
                self._fatal(rid, P.E_PROTOCOL, f"unknown op {op!r}")

    # -- step deadline and restarts -------------------------------------------------------

    def _timed(self, rid: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an env call the watchdog may answer for (see :meth:`expire`)."""
        with self._guard:
            self._call = (rid, time.monotonic())
        try:
            return call(*args, **kwargs)
        finally:
            with self._guard:
                expired = self._call is None
                self._call = None
            if expired:  # the client already has its StepDeadlineError: drop the result
                raise Expired("step deadline")

    def expire(self, now: float, deadline: float) -> bool:
        """Answer a call running past ``deadline`` with ``StepDeadlineError`` (watchdog).

        Returns:
            Whether this session's call expired (its connection is then shut down).
        """
        with self._guard:
            call = self._call
            if call is None or now - call[1] < deadline:
                return False
            self._call = None
        log.warning("session %d: env call ran past the step deadline of %ss; ending the "
                    "session", self.session_id, deadline)
        with contextlib.suppress(Exception):
            self._error(call[0], P.E_DEADLINE,
                        f"the env's call ran past the server's step deadline of {deadline}s; "
                        "the session is closed", fatal=True)
        self.conn.abort()
        return True

    def _restart(self, rid: Any, what: str, exc: Exception, seed: Any, options: Any) -> Any:
        """Replace the env after ``exc``; answer the request from a fresh, reset env.

        A step is answered as a truncation (zero reward) and a reset as a reset; either way
        ``info["rlmesh_restart"]`` says what happened. Returns the new env.
        """
        cause = f"{qualname(exc)}: {exc}"
        while True:
            self._restarts_left -= 1
            used = self.server.options.restart_on_error - self._restarts_left
            self.server.count("restarts")
            log.warning("session %d: env.%s() raised (%s); replacing the env (restart %d of "
                        "%d)", self.session_id, what, cause, used,
                        self.server.options.restart_on_error)
            self._release()
            try:
                self.env = self.server.source.acquire()
                obs, info = self.env.reset(seed=seed, options=options)
                break
            except Exception as again:
                if not self._restarts_left:
                    self._fatal(rid, P.E_ENV, f"env.{what}() raised ({cause}) and the env "
                                f"could not be replaced: {again}", exc=again)
                cause = f"{qualname(again)}: {again}"
        self._has_reset = True
        info = dict(info) if isinstance(info, dict) else {}
        info["rlmesh_restart"] = {"op": what, "error": cause, "restart": used,
                                  "restarts_left": self._restarts_left}
        if what == "reset":
            self._send([P.STATUS_OK, rid, obs, info])
        elif self._vector:
            n = int(self.env.num_envs)
            self._send([P.STATUS_OK, rid, obs, np.zeros(n), np.zeros(n, bool), np.ones(n, bool),
                        info])
        else:
            self._send([P.STATUS_OK, rid, obs, 0.0, False, True, info])
        return self.env

    def _env_error(self, rid: Any, what: str, exc: Exception) -> None:
        if isinstance(exc, (TypeError, ValueError)) and "unpack" in str(exc):
            message = (f"env.{what}() returned the wrong number of values (Gymnasium API: "
                       "reset -> (obs, info), step -> (obs, reward, terminated, truncated, "
                       f"info)): {exc}")
        else:
            message = str(exc)
        self._error(rid, P.E_ENV, message, exc=exc)


def _valid_seed(seed: Any, vector: bool) -> bool:
    """Whether ``seed`` is a RESET seed: int or nil, or for a vector env a list of them."""
    if seed is None or type(seed) is int:
        return True
    # (a wrong length is the vector env's to refuse, as in-process: a non-fatal env error)
    return vector and type(seed) is list and all(s is None or type(s) is int for s in seed)
