"""The server side of opening a session: HELLO, token proof, resumption, shared memory.

See ``docs/protocol.md`` section 5; the client side is :mod:`rlmesh.client.handshake`. A
health probe (``probe: true`` in HELLO) is answered with the contract and builds nothing.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from rlmesh import protocol as P
from rlmesh.errors import EnvBusyError
from rlmesh.protocol import auth
from rlmesh.server import region
from rlmesh.server.admission import Gate
from rlmesh.server.replies import brief
from rlmesh.server.resume import new_key
from rlmesh.server.seam import SessionPort
from rlmesh.transport import Transport
from rlmesh.transport.fastframes import ServerFrames, server_frames
from rlmesh.transport.fastslots import ServerSteps, server_steps
from rlmesh.transport.shmlink import KIND_STEP, ShmLink
from rlmesh.transport.stream import Connection
from rlmesh.wire.fixed import StepFrames, contract_frames
from rlmesh.wire.slots import SlotSteps

__all__ = ["Opening", "handshake"]

log = logging.getLogger("rlmesh.server")


class Opening(SessionPort, Protocol):
    """What the handshake sets up on a session (:class:`rlmesh.server.session.Session`)."""

    conn: Transport
    """The connection; replaced by the same-host link when one is agreed."""
    socket: Connection | None
    key: bytes | None
    """The resume key, once the session may be resumed."""
    last_reply: tuple[Any, bytes, list[Any], int] | None
    admitted: bool
    replay: bool
    frames: StepFrames | None
    """The served contract's fixed step layouts (:mod:`rlmesh.wire.fixed`), built once here."""
    slots: SlotSteps | None
    """The slot-step layout, once the session agreed on slot steps."""
    fast_slots: ServerSteps | None
    """The compiled steps over those slots (:mod:`rlmesh.transport.fastslots`)."""
    fast_frames: ServerFrames | None
    """The compiled fixed frames over a plain socket (:mod:`rlmesh.transport.fastframes`)."""
    gate: Gate | None
    """Where the connection is pending until it has authenticated."""
    peer: str
    """Whom it counts against (for the token-guessing back-off)."""

    def receive(self) -> Any:
        """The next request ``[op, request_id, *args]``."""

    def trusted(self) -> None:
        """The client has authenticated: lift the handshake's limits."""


def handshake(session: Opening) -> bool:
    """Run the handshake of ``session``'s connection.

    Returns:
        ``True`` once a session is open (new or resumed), ``False`` after answering a probe.

    Raises:
        Fatal: After refusing the client (version, token, capacity, no such session...).
    """
    host = session.host
    rid, hello = _hello(session)
    probe = hello.get("probe") is True  # a health check: describe, build nothing, hang up
    if probe and host.token is not None and not isinstance(hello.get("nonce"), bytes):
        # Without the token, say only that one is needed.
        session.send([P.STATUS_OK, rid, {"rlmesh": P.PROTOCOL_VERSION, "auth": True,
                                         "server": P.server_info()}])
        return False
    server_proof = None
    if host.token is not None:
        rid, server_proof = _authenticate(session, rid, host.token, hello.get("nonce"))
    contract = _contract(session)
    contract["auth"] = server_proof
    if probe:
        contract["busy"] = host.source.busy
        session.send([P.STATUS_OK, rid, contract])
        return False
    if hello.get("resume") is not None:
        _adopt(session, rid, hello.get("resume"))
    else:
        _open(session, rid)
    _welcome(session, rid, hello, contract)
    return True


def _hello(session: Opening) -> tuple[Any, dict[str, Any]]:
    """Receive HELLO; refuse another first request, another version, or a stopping server."""
    msg = session.receive()
    rid = msg[1]
    if msg[0] != P.OP_HELLO or len(msg) != 3 or not isinstance(msg[2], dict):
        session.fatal(rid, P.E_PROTOCOL, "the first request must be HELLO")
    hello: dict[str, Any] = msg[2]
    version = hello.get("rlmesh")
    if type(version) is not int or version != P.PROTOCOL_VERSION:
        session.fatal(rid, P.E_VERSION, f"server speaks rlmesh protocol {P.PROTOCOL_VERSION}, "
                      f"client asked for {brief(version)}")
    if session.host.stopping:
        session.fatal(rid, P.E_SHUTTING_DOWN, "the server is shutting down")
    if session.host.token is None:
        session.trusted()
    return rid, hello


def _welcome(session: Opening, rid: Any, hello: dict[str, Any],
             contract: dict[str, Any]) -> None:
    """Answer an opened session with its contract, then switch to shared memory if agreed."""
    host = session.host
    frames = contract_frames(host.source.contract)
    created = region.offer(session, hello)
    link = created is not None and region.wants_link(hello, created.size)
    steps = region.link_steps(hello, frames, created.size) if (
        link and created is not None) else None
    contract["shm"] = region.describe(created) if created is not None else False
    contract["shm_link"] = link
    contract["shm_link_steps"] = steps is not None
    rewards = steps is not None and region.step_rewards(hello)
    contract["shm_link_step_rewards"] = rewards
    if session.key is not None:
        contract["resume"] = {"key": session.key, "window": host.options.resume_window}
    session.send([P.STATUS_OK, rid, contract], keep=False)  # (a resumed reply stays kept)
    session.frames = frames  # (the session's requests and replies from here on)
    if created is not None and session.socket is not None and region.settle(session, created):
        if link:  # from the next frame on, both sides
            session.conn = conn = ShmLink(session.socket, created, "server")
            if steps is not None:
                session.slots = slots = SlotSteps(steps, *conn.slot_views(), kind=KIND_STEP,
                                                  rewards=rewards)
                session.fast_slots = fast = server_steps(conn, slots)
                conn.enable_steps(*(() if fast is None else (fast.release,)), slots.release)
        else:
            session.socket.attach_shm(created, "server")
    elif session.key is None:  # (a plain socket; a resumable session keeps its replies)
        session.fast_frames = server_frames(session.conn, frames)
    session.conn.set_timeout(host.options.idle_timeout)  # (None: wait for requests forever)
    log.info("session %d: client %s %s", session.session_id, hello.get("client"),
             "resumed its session" if session.replay else "connected")


def _open(session: Opening, rid: Any) -> None:
    """Admit a new session and give it what the source serves."""
    host = session.host
    if not host.admit():
        session.fatal(rid, P.E_FULL, f"the server already serves its maximum of "
                      f"{host.options.max_sessions} sessions; try again later")
    session.admitted = True
    try:
        session.resource = host.source.acquire()
    except EnvBusyError as exc:
        session.fatal(rid, P.E_BUSY, str(exc))
    except Exception as exc:
        session.fatal(rid, P.E_ENV, f"the env factory raised: {exc}", exc=exc)
    if host.resumes is not None:
        session.key = new_key()
        host.resumes.register(session.key, session.conn.abort)


def _adopt(session: Opening, rid: Any, request: Any) -> None:
    """Take over a parked session whose client reconnected (see :mod:`rlmesh.server.resume`)."""
    resumes = session.host.resumes
    if resumes is None:
        session.fatal(rid, P.E_RESUME, "this server does not resume sessions")
    key = request.get("key") if isinstance(request, dict) else None
    if not isinstance(key, bytes):
        session.fatal(rid, P.E_PROTOCOL, "resume needs the session key")
    parked = resumes.reclaim(key, resumes.window)
    if parked is None:
        session.fatal(rid, P.E_RESUME, "no session to resume under that key (it expired, "
                      "ended, or never existed)")
    session.admitted = True  # the parked session's slot
    session.resource, session.has_reset = parked.resource, parked.has_reset
    session.last_reply, session.restarts_left = parked.last_reply, parked.restarts_left
    session.key, session.replay = key, True
    resumes.register(key, session.conn.abort)
    session.host.count("resumes")


def _authenticate(session: Opening, rid: Any, token: bytes,
                  client_nonce: Any) -> tuple[Any, bytes]:
    """Challenge the client (:mod:`rlmesh.protocol.auth`); returns the AUTH id and our proof."""
    if not isinstance(client_nonce, bytes) or len(client_nonce) != auth.NONCE_BYTES:
        session.fatal(rid, P.E_AUTH, "this endpoint requires a token (token= or RLMESH_TOKEN)")
    server_nonce = auth.nonce()
    session.send([P.STATUS_OK, rid, {"challenge": server_nonce}])
    msg = session.receive()
    rid = msg[1]
    if msg[0] != P.OP_AUTH or len(msg) != 3 or not isinstance(msg[2], dict):
        session.fatal(rid, P.E_PROTOCOL, "expected AUTH after the challenge")
    gate = session.gate
    hold = gate.throttle.hold(session.peer) if gate is not None else 0.0
    if hold:  # a peer that just failed waits before any proof of it is checked
        time.sleep(hold)
    expected = auth.proof(token, b"client", client_nonce, server_nonce)
    if not auth.check(expected, msg[2].get("proof")):
        if gate is None:
            log.warning("session %d: refused a client with a wrong token", session.session_id)
        else:  # slower with each recent failure of this peer; logged once per interval
            time.sleep(gate.refused(session.peer))
        session.fatal(rid, P.E_AUTH, "wrong token")
    session.trusted()
    return rid, auth.proof(token, b"server", client_nonce, server_nonce)


def _contract(session: Opening) -> dict[str, Any]:
    host = session.host
    contract = dict(host.source.contract)
    contract.update(
        rlmesh=P.PROTOCOL_VERSION,
        server=P.server_info(),
        session=session.session_id,
        max_message_bytes=host.options.max_message_bytes,
        capabilities=host.source.capabilities(host.options),
        shm=False,
    )
    return contract
