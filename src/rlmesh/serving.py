"""One client connection on the server: handshake, then requests answered in order."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from rlmesh import auth, shm, shmlink
from rlmesh import protocol as P
from rlmesh.codec import Decoder, Encoder
from rlmesh.errors import (
    EncodeError,
    EnvBusyError,
    MessageTooLargeError,
    ProtocolError,
    TransportError,
)
from rlmesh.model_server import serve_requests
from rlmesh.resume import Parked, new_key
from rlmesh.sanitize import sanitize
from rlmesh.sockets import wrap_server
from rlmesh.transport import Connection
from rlmesh.validation import make_validator

if TYPE_CHECKING:
    from rlmesh.server import EnvServer

log = logging.getLogger("rlmesh.server")
TLS_HANDSHAKE_TIMEOUT = 10.0


class _Fatal(Exception):
    """Ends the session after its error reply has been sent."""


class _Expired(_Fatal):
    """The env call ran past the step deadline; the watchdog has answered for it."""


def _qualname(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class Session:
    """Serves one connection until the client closes it, it breaks, or the server stops."""

    def __init__(self, server: EnvServer, conn: Connection, session_id: int) -> None:
        self.server = server
        self.conn = conn
        self.session_id = session_id
        self.env: Any = None
        self._encoder = Encoder()
        self._decoder = Decoder()
        self._has_reset = False
        self._validate = server.options.validate_actions
        self._admitted = False
        self._vector = server.source.contract["kind"] == "vector_env"
        self._guard = threading.Lock()
        self._call: tuple[Any, float] | None = None
        """``(request_id, started)`` of the env call running under a step deadline."""
        self._restarts_left = server.options.restart_on_error
        self.busy = False
        """Whether a request is being served (its reply not yet sent)."""
        self._resumes = server.resumes
        self._key: bytes | None = None
        self._last_reply: tuple[Any, bytes, list[Any], int] | None = None
        self._replay = False
        self._ended = False
        """Set once the session ended for good (closed, expired): never parked."""

    def run(self) -> None:
        """Serve until the end; never raises."""
        try:
            tls = self.server.tls
            if tls is not None:
                try:
                    self.conn.upgrade(wrap_server(self.conn.sock, tls, TLS_HANDSHAKE_TIMEOUT))
                except (OSError, ValueError) as exc:
                    log.warning("session %d: TLS handshake failed: %s", self.session_id, exc)
                    return
            if self._handshake():
                self._loop()
                self._ended = True
        except (BlockingIOError, TimeoutError):
            self._ended = True  # idle_timeout: the client is there but silent
        except (TransportError, OSError):
            pass  # client went away or the server is stopping
        except _Fatal:
            self._ended = True
        except Exception:
            self._ended = True
            log.exception("session %d: internal error", self.session_id)
            with contextlib.suppress(Exception):
                self._error(None, P.E_INTERNAL, "internal server error; the session is closed",
                            fatal=True)
        finally:
            self.busy = False
            if not self._park():
                self._release()
                if self._admitted:
                    self._admitted = False
                    self.server.dismiss()
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

    # -- replies --------------------------------------------------------------------------

    def _send(self, reply: list[Any], keep: bool = True) -> None:
        encoded: tuple[bytes, list[Any], int] | None
        try:
            encoded = self._encoder.encode(reply)
        except EncodeError as exc:
            encoded = self._encode_sanitized(reply)
            if encoded is None:
                self._error(reply[1], P.E_ENCODE,
                            f"the env returned a value that cannot be sent: {exc}")
                return
        if keep and self._key is not None:
            self._last_reply = (reply[1], *encoded)
        self.conn.send(*encoded, self.conn.peer_flag)

    def _encode_sanitized(self, reply: list[Any]) -> tuple[bytes, list[Any], int] | None:
        """Retry with ``info`` (a reply's last value) made encodable; ``None`` if still not."""
        if len(reply) <= 3 or not isinstance(reply[-1], dict):
            return None
        reply[-1] = sanitize(reply[-1])  # info never fails a request
        try:
            return self._encoder.encode(reply)
        except EncodeError:
            return None

    def _error(self, rid: Any, code: str, message: str, *,
               exc: BaseException | None = None, fatal: bool = False) -> None:
        """Send an error reply; the session goes on unless ``fatal``."""
        err = P.error_map(
            code, message, fatal=fatal,
            exc_type=_qualname(exc) if exc is not None else None,
            traceback="".join(traceback.format_exception(exc)) if exc is not None else None,
        )
        header, buffers, body_len = self._encoder.encode([P.STATUS_ERROR, rid, err])
        if self._key is not None:
            self._last_reply = (rid, header, buffers, body_len)
        self.conn.send(header, buffers, body_len)

    def _fatal(self, rid: Any, code: str, message: str, *,
               exc: BaseException | None = None) -> NoReturn:
        """Send an error reply and end the session."""
        self._error(rid, code, message, exc=exc, fatal=True)
        raise _Fatal(code)

    # -- handshake ------------------------------------------------------------------------

    def _receive(self) -> Any:
        try:
            header, body = self.conn.recv()
        except MessageTooLargeError as exc:
            self._fatal(None, P.E_TOO_LARGE, str(exc))
        except ProtocolError as exc:
            self._fatal(None, P.E_PROTOCOL, str(exc))
        try:
            msg = self._decoder.decode(header, body)
        except ProtocolError as exc:
            self._fatal(None, P.E_PROTOCOL, str(exc))
        if type(msg) is not list or len(msg) < 2 or type(msg[0]) is not int:
            self._fatal(None, P.E_PROTOCOL, "a request is an array [op, request_id, ...args]")
        return msg

    def _handshake(self) -> bool:
        msg = self._receive()
        rid = msg[1]
        if msg[0] != P.OP_HELLO or len(msg) != 3 or not isinstance(msg[2], dict):
            self._fatal(rid, P.E_PROTOCOL, "the first request must be HELLO")
        hello = msg[2]
        version = hello.get("rlmesh")
        if type(version) is not int or version != P.PROTOCOL_VERSION:
            self._fatal(rid, P.E_VERSION,
                        f"server speaks rlmesh protocol {P.PROTOCOL_VERSION}, client asked "
                        f"for {_brief(version)}")
        if self.server.stopping:
            self._fatal(rid, P.E_SHUTTING_DOWN, "the server is shutting down")
        token = self.server.token
        if hello.get("probe") is True:  # a health check: describe, build nothing, hang up
            if token is not None:  # without the token, say only that one is needed
                self._send([P.STATUS_OK, rid, {"rlmesh": P.PROTOCOL_VERSION, "auth": True,
                                               "server": P.server_info()}])
                return False
            contract = self._contract()
            contract["busy"] = self.server.source.busy
            self._send([P.STATUS_OK, rid, contract])
            return False
        server_proof = None
        if token is not None:
            rid, server_proof = self._authenticate(rid, token, hello.get("nonce"))
        if hello.get("resume") is not None:
            self._adopt(rid, hello.get("resume"))
        else:
            self._open(rid)
        contract = self._contract()
        region = self._accept_region(hello.get("shm"))
        link = region is not None and _wants_link(hello, region.size)
        contract["shm"] = region is not None
        contract["shm_link"] = link
        contract["auth"] = server_proof
        if self._key is not None:
            contract["resume"] = {"key": self._key, "window": self.server.options.resume_window}
        self._send([P.STATUS_OK, rid, contract], keep=False)  # (a resumed reply stays kept)
        if region is not None:  # from the next frame on (the client switches with us)
            self.conn.attach_shm(region, "server", link=link)
        if self.server.options.idle_timeout is not None:
            self.conn.set_timeout(self.server.options.idle_timeout)
        log.info("session %d: client %s %s", self.session_id, hello.get("client"),
                 "resumed its session" if self._replay else "connected")
        return True

    def _open(self, rid: Any) -> None:
        """Admit a new session and give it an env."""
        if not self.server.admit():
            self._fatal(rid, P.E_FULL, f"the server already serves its maximum of "
                        f"{self.server.options.max_sessions} sessions; try again later")
        self._admitted = True
        try:
            self.env = self.server.source.acquire()
        except EnvBusyError as exc:
            self._fatal(rid, P.E_BUSY, str(exc))
        except Exception as exc:
            self._fatal(rid, P.E_ENV, f"the env factory raised: {exc}", exc=exc)
        if self._resumes is not None:
            self._key = new_key()
            self._resumes.register(self._key, self)

    def _adopt(self, rid: Any, request: Any) -> None:
        """Take over a parked session whose client reconnected (see :mod:`rlmesh.resume`)."""
        if self._resumes is None:
            self._fatal(rid, P.E_RESUME, "this server does not resume sessions")
        key = request.get("key") if isinstance(request, dict) else None
        if not isinstance(key, bytes):
            self._fatal(rid, P.E_PROTOCOL, "resume needs the session key")
        parked = self._resumes.reclaim(key, self._resumes.window)
        if parked is None:
            self._fatal(rid, P.E_RESUME, "no session to resume under that key (it expired, "
                        "ended, or never existed)")
        self._admitted = True  # the parked session's slot
        self.env, self._has_reset = parked.env, parked.has_reset
        self._last_reply, self._restarts_left = parked.last_reply, parked.restarts_left
        self._key, self._replay = key, True
        self._resumes.register(key, self)
        self.server.count("resumes")

    def _authenticate(self, rid: Any, token: bytes, client_nonce: Any) -> tuple[Any, bytes]:
        """Challenge the client (see rlmesh.auth); returns the AUTH request id and our proof."""
        if not isinstance(client_nonce, bytes) or len(client_nonce) != auth.NONCE_BYTES:
            self._fatal(rid, P.E_AUTH, "this endpoint requires a token (token= or RLMESH_TOKEN)")
        server_nonce = auth.nonce()
        self._send([P.STATUS_OK, rid, {"challenge": server_nonce}])
        msg = self._receive()
        rid = msg[1]
        if msg[0] != P.OP_AUTH or len(msg) != 3 or not isinstance(msg[2], dict):
            self._fatal(rid, P.E_PROTOCOL, "expected AUTH after the challenge")
        expected = auth.proof(token, b"client", client_nonce, server_nonce)
        if not auth.check(expected, msg[2].get("proof")):
            log.warning("session %d: refused a client with a wrong token", self.session_id)
            self._fatal(rid, P.E_AUTH, "wrong token")
        return rid, auth.proof(token, b"server", client_nonce, server_nonce)

    def _contract(self) -> dict[str, Any]:
        contract = dict(self.server.source.contract)
        contract.update(
            rlmesh=P.PROTOCOL_VERSION,
            server=P.server_info(),
            session=self.session_id,
            max_message_bytes=self.server.options.max_message_bytes,
            capabilities=[],
            shm=False,
        )
        return contract

    def _accept_region(self, offer: Any) -> shm.ShmRegion | None:
        """Map the client's shared-memory region if it is on this host (see rlmesh.shm)."""
        if not isinstance(offer, dict) or not self.server.options.same_host:
            return None
        host = offer.get("host")
        if self.conn.tls or not (shm.enabled() and isinstance(host, str)
                                 and host == shm.host_id()
                                 and shm.same_host_socket(self.conn.sock)):
            return None
        size = offer.get("size")
        if type(size) is not int or not 0 < size <= shm.MAX_SHM_BYTES:
            return None
        try:
            region = shm.ShmRegion(str(offer.get("name")), size, create=False)
        except (OSError, ValueError):
            return None
        region.unlink()
        return region

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
                                f"action {_brief(action)} is not in the action space "
                                f"{action_space}")
                    continue
                try:
                    result = self._timed(rid, env.step, action) if timed else env.step(action)
                    obs, reward, terminated, truncated, info = result
                except _Fatal:
                    raise
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
                except _Fatal:
                    raise
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
                except _Fatal:
                    raise
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
            else:
                self._fatal(rid, P.E_PROTOCOL, f"unknown op {op!r}")

    # -- step deadline and restarts -------------------------------------------------------

    def _timed(self, rid: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an env call the watchdog may answer for (see :meth:`expire`)."""
        with self._guard:
            self._call = (rid, time.monotonic())
        self.server.watch(self)
        try:
            return call(*args, **kwargs)
        finally:
            with self._guard:
                expired = self._call is None
                self._call = None
            if expired:  # the client already has its StepDeadlineError: drop the result
                raise _Expired("step deadline")

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
        cause = f"{_qualname(exc)}: {exc}"
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
                cause = f"{_qualname(again)}: {again}"
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


def _wants_link(hello: dict[str, Any], size: int) -> bool:
    """Whether to move whole frames into the region (the client offered it, both can)."""
    capabilities = hello.get("capabilities")
    return (isinstance(capabilities, list)
            and any(type(c) is str and c == "shm-link" for c in capabilities)
            and shmlink.supported() and shmlink.fits(size))


def _brief(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (client values are hostile)."""
    try:
        text = repr(value)
    except Exception:  # RecursionError, SystemError from a broken array, ...
        return f"<unprintable {type(value).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."



def _valid_seed(seed: Any, vector: bool) -> bool:
    """Whether ``seed`` is a RESET seed: int or nil, or for a vector env a list of them."""
    if seed is None or type(seed) is int:
        return True
    # (a wrong length is the vector env's to refuse, as in-process: a non-fatal env error)
    return vector and type(seed) is list and all(s is None or type(s) is int for s in seed)
