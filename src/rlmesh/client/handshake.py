"""The client side of opening a connection: connect, HELLO, token proof, shared memory.

Used to open a session (:class:`rlmesh.client.channel.Channel`), to resume one after a dropped
connection, and for health probes. See ``docs/protocol.md`` section 5.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from typing import Any

from rlmesh import protocol as P
from rlmesh.errors import (
    AuthenticationError,
    ConnectionLostError,
    ProtocolError,
    RLMeshTimeoutError,
    TransportError,
)
from rlmesh.protocol import auth
from rlmesh.transport import Transport, memory, shm, shmlink
from rlmesh.transport.fastslots import ClientSteps, client_steps
from rlmesh.transport.memory import MemoryTransport
from rlmesh.transport.shmlink import ShmLink
from rlmesh.transport.sockets import Address, connect
from rlmesh.transport.stream import Connection
from rlmesh.wire.decoder import Decoder
from rlmesh.wire.encoder import Encoder
from rlmesh.wire.fixed import StepFrames
from rlmesh.wire.slots import SlotSteps, slots_fit

__all__ = ["Opened", "answer_challenge", "exchange", "open_connection", "slot_steps"]


log = logging.getLogger("rlmesh.client")


@dataclasses.dataclass
class Opened:
    """A connection whose handshake succeeded, and the server's contract."""

    conn: Transport
    contract: dict[str, Any]


def exchange(conn: Transport, address: Address, op: int, value: Any,
             timeout: float | None) -> dict[str, Any]:
    """Send one handshake request ``[op, 0, value]`` and return the map it is answered with.

    Raises:
        RLMeshTimeoutError: No answer within ``timeout``.
        ConnectionLostError: The server hung up.
        RLMeshError: The typed error the server answered with.
    """
    encoder, decoder = Encoder(), Decoder()
    try:
        conn.send(*encoder.encode([op, 0, value]))
        reply = decoder.decode(*conn.recv())
    except (BlockingIOError, TimeoutError):
        raise RLMeshTimeoutError(f"{address} did not answer within {timeout}s") from None
    except ProtocolError:
        raise
    except (OSError, TransportError) as exc:
        raise ConnectionLostError(f"{address} hung up during the handshake: {exc}") from exc
    if type(reply) is not list or len(reply) < 3:
        raise ProtocolError(f"unexpected reply {reply!r:.200}")
    if reply[0] != P.STATUS_OK:
        raise P.error_from_map(reply[2])
    if not isinstance(reply[2], dict):
        raise ProtocolError("the server's answer is not a map")
    return reply[2]


def open_connection(address: Address, *, connect_timeout: float | None,
                    max_message_bytes: int, secret: bytes | None,
                    tls: ssl.SSLContext | None, spin: int, same_host: bool = True,
                    extra: dict[str, Any] | None = None, wait: bool = False) -> Opened:
    """Connect and complete the handshake (token proof and shared memory included).

    Args:
        address: The endpoint.
        connect_timeout: Seconds for the connect and again for each handshake exchange.
        max_message_bytes: Largest frame accepted from the server.
        secret: The token, when the endpoint requires one.
        tls: Wrap the connection in TLS with this context.
        spin: Receive polling budget for the connection.
        same_host: Offer shared memory to a server on this machine.
        extra: More HELLO keys (``resume`` to resume a session).
        wait: Retry a refused connection until ``connect_timeout`` (a server still starting).

    Returns:
        The connection, its timeout still ``connect_timeout``, and the contract.
    """
    conn, sock = open_transport(address, connect_timeout, tls, max_message_bytes, wait=wait)
    conn.set_spin(spin)
    offer = (same_host and not conn.tls and sock is not None and shm.enabled()
             and shm.same_host_socket(sock))
    try:
        conn.set_timeout(connect_timeout)
        hello: dict[str, Any] = {"rlmesh": P.PROTOCOL_VERSION, "client": P.CLIENT_NAME,
                                 "capabilities": [], **(extra or {})}
        if offer:
            hello["capabilities"] = (["shm", "shm-link", "shm-link-steps",
                                      "shm-link-step-rewards"]
                                     if shmlink.supported() else ["shm"])
            hello["shm"] = {"host": shm.host_id(), "pidns": shm.pid_namespace()}
        client_nonce = auth.nonce() if secret is not None else b""
        if secret is not None:
            hello["nonce"] = client_nonce
        contract = exchange(conn, address, P.OP_HELLO, hello, connect_timeout)
        contract = answer_challenge(conn, address, contract, secret, client_nonce,
                                    connect_timeout)
        return Opened(_settle_region(conn, address, contract), contract)
    except BaseException:
        conn.close()
        raise


def _settle_region(conn: Transport, address: Address, contract: dict[str, Any]) -> Transport:
    """Attach the region the server offered, if any, and tell it; returns the transport.

    Sets the contract's ``shm`` and ``shm_link`` to whether they are in use.
    """
    offered = contract.get("shm")
    link = contract.get("shm_link") is True
    contract["shm"] = contract["shm_link"] = False
    if not isinstance(offered, dict) or not isinstance(conn, Connection):
        return conn
    region = _attach(offered)
    try:
        conn.send(*Encoder().encode([P.OP_REGION, 0, {"attached": region is not None}]))
    except (OSError, TransportError) as exc:
        if region is not None:
            region.close()
        raise ConnectionLostError(f"{address} hung up during the handshake: {exc}") from exc
    if region is None:
        return conn
    contract["shm"], contract["shm_link"] = True, link
    if link:  # whole frames through the region
        return ShmLink(conn, region, "client")
    conn.attach_shm(region, "client")  # reply bodies through the region
    return conn


def slot_steps(conn: Transport, contract: dict[str, Any], frames: StepFrames | None
               ) -> tuple[SlotSteps, ClientSteps | None] | None:
    """The slot-step layout over ``conn``, if the server agreed on slot steps; else ``None``.

    The layout is the contract's fixed step frames; the link is told to accept slot steps.
    With it comes the compiled step over the link (:mod:`rlmesh.transport.fastslots`), or
    ``None`` where slot steps run in Python.
    """
    if frames is None or contract.get("shm_link_steps") is not True \
            or not isinstance(conn, ShmLink) \
            or not slots_fit(frames, shmlink.slot_room(conn.region.size)):
        return None  # (checked again: the peer's word is not trusted with our memory)
    slots = SlotSteps(frames, *conn.slot_views(), kind=shmlink.KIND_STEP,
                      rewards=contract.get("shm_link_step_rewards") is True)
    fast = client_steps(conn, slots)
    conn.enable_steps(*(() if fast is None else (fast.release,)), slots.release)
    return slots, fast


def _attach(offered: dict[str, Any]) -> shm.ShmRegion | None:
    """Map the server's region (``None`` if this process may not or should not)."""
    pid, fd, size = offered.get("pid"), offered.get("fd"), offered.get("size")
    if not (type(pid) is int and type(fd) is int and type(size) is int):
        log.debug("malformed shared-memory offer %r", offered)
        return None
    try:
        return shm.ShmRegion.attach(pid, fd, size)
    except (OSError, ValueError) as exc:
        log.debug("could not attach the offered shared-memory region: %s", exc)
        return None


def open_transport(address: Address, timeout: float | None, tls: ssl.SSLContext | None,
                   max_message_bytes: int, *,
                   wait: bool = False) -> tuple[Connection | MemoryTransport, Any]:
    """A connected transport to ``address`` (not yet handshaken), and its socket if any.

    Raises:
        ConnectFailedError: If the endpoint cannot be reached in time.
    """
    if address.kind == "memory":
        return memory.connect(address.path, max_message_bytes, timeout, wait=wait), None
    sock = connect(address, timeout, tls, wait=wait)
    return Connection(sock, max_message_bytes), sock


def answer_challenge(conn: Transport, address: Address, reply: dict[str, Any],
                     secret: bytes | None, client_nonce: bytes,
                     timeout: float | None) -> dict[str, Any]:
    """Complete token authentication (see :mod:`rlmesh.protocol.auth`); returns the contract."""
    challenge = reply.get("challenge")
    if challenge is None:
        if secret is not None:
            raise AuthenticationError(
                f"{address} does not use a token, so it cannot prove who it is; refusing it "
                "(unset token= / RLMESH_TOKEN to connect without auth)")
        return reply
    if secret is None:
        raise AuthenticationError(f"{address} requires a token (token= or RLMESH_TOKEN)")
    if not isinstance(challenge, bytes):
        raise ProtocolError("malformed authentication challenge")
    proof = auth.proof(secret, b"client", client_nonce, challenge)
    contract = exchange(conn, address, P.OP_AUTH, {"proof": proof}, timeout)
    expected = auth.proof(secret, b"server", client_nonce, challenge)
    if not auth.check(expected, contract.get("auth")):
        raise AuthenticationError(f"{address} could not prove it holds the token")
    return contract
