"""The first part of a server session: its state, how it replies, and its handshake.

:class:`rlmesh.server.session.Session` builds on this with the request loop.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

from rlmesh import protocol as P
from rlmesh.errors import EncodeError, EnvBusyError, MessageTooLargeError, ProtocolError
from rlmesh.protocol import auth
from rlmesh.server.resume import new_key
from rlmesh.transport import shm, shmlink
from rlmesh.transport.stream import Connection
from rlmesh.wire.codec import Decoder, Encoder
from rlmesh.wire.lenient import sanitize

if TYPE_CHECKING:
    from rlmesh.server.server import EnvServer

log = logging.getLogger("rlmesh.server")


class Fatal(BaseException):
    """Ends the session after its error reply has been sent.

    A ``BaseException``, like ``SystemExit``: it is control flow, and the ``except
    Exception`` blocks around env calls must let it through.
    """


class Expired(Fatal):
    """The env call ran past the step deadline; the watchdog has answered for it."""


def qualname(exc: BaseException) -> str:
    """The exception's class name, qualified by its module unless it is a builtin."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class SessionSetup:
    """A session's state, replies and handshake (see :class:`rlmesh.server.session.Session`)."""

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
        self._what = "model" if server.source.contract["kind"] == "model" else "env"
        """What this endpoint serves, as error messages name it."""
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

    # -- replies --------------------------------------------------------------------------

    def _send(self, reply: list[Any], keep: bool = True, subject: str = "") -> None:
        encoded: tuple[bytes, list[Any], int] | None
        try:
            encoded = self._encoder.encode(reply)
        except EncodeError as exc:
            encoded = self._encode_sanitized(reply)
            if encoded is None:
                self._error(reply[1], P.E_ENCODE,
                            f"{subject} cannot be sent (values travel as data, never "
                            f"pickled): {exc}" if subject else
                            f"the {self._what} returned a value that cannot be sent: {exc}")
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
            exc_type=qualname(exc) if exc is not None else None,
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
        raise Fatal(code)

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
                        f"for {brief(version)}")
        if self.server.stopping:
            self._fatal(rid, P.E_SHUTTING_DOWN, "the server is shutting down")
        token = self.server.token
        probe = hello.get("probe") is True  # a health check: describe, build nothing, hang up
        if probe and token is not None and not isinstance(hello.get("nonce"), bytes):
            # Without the token, say only that one is needed.
            self._send([P.STATUS_OK, rid, {"rlmesh": P.PROTOCOL_VERSION, "auth": True,
                                           "server": P.server_info()}])
            return False
        server_proof = None
        if token is not None:
            rid, server_proof = self._authenticate(rid, token, hello.get("nonce"))
        if probe:
            contract = self._contract()
            contract["busy"] = self.server.source.busy
            contract["auth"] = server_proof
            self._send([P.STATUS_OK, rid, contract])
            return False
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
        """Take over a parked session whose client reconnected (see :mod:`rlmesh.server.resume`)."""
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
        """Challenge the client (:mod:`rlmesh.protocol.auth`); returns the AUTH id and our proof."""
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
            capabilities=[P.CAP_ATTRIBUTES] if self.server.options.remote_attributes
            and self.server.source.contract["kind"] != "model" else [],
            shm=False,
        )
        return contract

    def _accept_region(self, offer: Any) -> shm.ShmRegion | None:
        """Map the client's shared-memory region if it is on this host (rlmesh.transport.shm)."""
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


def _wants_link(hello: dict[str, Any], size: int) -> bool:
    """Whether to move whole frames into the region (the client offered it, both can)."""
    capabilities = hello.get("capabilities")
    return (isinstance(capabilities, list)
            and any(type(c) is str and c == "shm-link" for c in capabilities)
            and shmlink.supported() and shmlink.fits(size))


def brief(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (client values are hostile)."""
    try:
        text = repr(value)
    except Exception:  # RecursionError, SystemError from a broken array, ...
        return f"<unprintable {type(value).__qualname__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
