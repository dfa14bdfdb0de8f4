"""The server's side of the same-host region: decide, size, create, offer, settle.

The server creates every region itself (:meth:`rlmesh.transport.shm.ShmRegion.create`), so it
never maps a file a client could resize or another user could name. A region is offered only
to an authenticated client on this machine and in this pid namespace, sized to the session's
need (what its spaces say a reply carries), and reserved before it is offered. The client
answers with one ``REGION`` frame saying whether it attached; only then do both sides switch
(``docs/protocol.md`` section 10).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final, Protocol

from rlmesh import protocol as P
from rlmesh.server.seam import SessionPort
from rlmesh.transport import shm, shmlink
from rlmesh.transport.shm import ShmRegion
from rlmesh.transport.stream import Connection
from rlmesh.wire.fixed import StepFrames
from rlmesh.wire.slots import slots_fit

__all__ = ["DEFAULT_CEILING", "describe", "link_steps", "offer", "region_bytes", "schema_bytes",
           "settle", "wants_link"]

log = logging.getLogger("rlmesh.server")

_UNKNOWN: Final = 64 * 1024
"""What a value of a space without a fixed size (Text, Sequence, Graph, OneOf) is budgeted."""
_HEADROOM: Final = 64 * 1024
"""Room for a reply's header (info, rewards, flags) beyond its arrays."""
_REQUEST_HEADROOM: Final = 16 * 1024
"""Room for a request's header beyond its arrays."""
DEFAULT_CEILING: Final = 64 * 1024 * 1024
"""The largest region sized automatically; bigger frames cross the socket."""


class Offered(SessionPort, Protocol):
    """What settling a region needs of a session."""

    socket: Connection | None

    def receive(self) -> Any:
        """The next request ``[op, request_id, *args]``."""


def schema_bytes(schema: Any) -> int:
    """Bytes the arrays of one value of the space ``schema`` describes take (an estimate).

    Fixed-size spaces are exact; spaces without a fixed size count :data:`_UNKNOWN`.
    """
    if not isinstance(schema, dict):
        return _UNKNOWN
    kind = schema.get("type")
    if kind == "Box":
        return int(getattr(schema.get("low"), "nbytes", _UNKNOWN))
    if kind == "Discrete":
        return 8
    if kind == "MultiDiscrete":
        return int(getattr(schema.get("nvec"), "size", 0)) * 8 or _UNKNOWN
    if kind == "MultiBinary":
        n = schema.get("n")
        count = n if isinstance(n, int) else _product(n)
        return count if count > 0 else _UNKNOWN
    if kind in ("Dict", "Tuple"):
        parts = schema.get("spaces") or []
        subs = [p[1] if isinstance(p, list) and len(p) == 2 else p for p in parts]
        return sum(schema_bytes(sub) for sub in subs)
    return _UNKNOWN


def _product(values: Any) -> int:
    count = 1
    for value in values if isinstance(values, list) else []:
        count *= value if isinstance(value, int) and value > 0 else 0
    return count


def region_bytes(contract: dict[str, Any]) -> int:
    """The region a session of ``contract`` needs: two observations, an action and headroom.

    ``RLMESH_SHM_BYTES`` (read at each session) sets the size instead.
    """
    forced = os.environ.get("RLMESH_SHM_BYTES")
    if forced:
        return max(min(int(forced), shm.MAX_SHM_BYTES), 1)
    reply = 2 * schema_bytes(contract.get("observation_space")) + _HEADROOM
    request = schema_bytes(contract.get("action_space")) + _REQUEST_HEADROOM
    # The link's slots: a quarter of the region after the control page for requests.
    need = shmlink.CONTROL_BYTES + max(reply * 4 // 3, request * 4)
    need = -(-need // 4096) * 4096
    return max(shm.MIN_SHM_BYTES, min(need, DEFAULT_CEILING))


def offer(session: Offered, hello: dict[str, Any]) -> ShmRegion | None:
    """A fresh region for ``session``, if its client may share one with us."""
    conn = session.socket
    if conn is None or not session.host.options.same_host:
        return None
    why = _refusal(conn, hello.get("shm"))
    if why is None:
        try:
            return ShmRegion.create(region_bytes(session.host.source.contract))
        except (OSError, ValueError) as exc:
            why = f"no memory could be reserved for it ({exc})"
    log.debug("session %d: no shared memory: %s", session.session_id, why)
    return None


def _refusal(conn: Connection, request: Any) -> str | None:
    """Why a region cannot be offered on ``conn`` (``None``: it can)."""
    if not isinstance(request, dict):
        return "the client did not ask for one"
    if conn.tls:
        return "the connection is TLS"
    if not (shm.enabled() and shm.same_host_socket(conn.sock)):
        return "the client is not on this host (or RLMESH_SAME_HOST=0)"
    host, pidns = request.get("host"), request.get("pidns")
    if not (isinstance(host, str) and host == shm.host_id()
            and type(pidns) is int and pidns == shm.pid_namespace() != 0):
        return "the client is on another machine or in another pid namespace"
    return None


def describe(region: ShmRegion) -> dict[str, Any]:
    """The contract's ``shm`` map: where the client finds the region."""
    return {"pid": os.getpid(), "fd": region.fd, "size": region.size}


def _offered(hello: dict[str, Any], capability: str) -> bool:
    capabilities = hello.get("capabilities")
    return isinstance(capabilities, list) and any(
        type(c) is str and c == capability for c in capabilities)


def wants_link(hello: dict[str, Any], size: int) -> bool:
    """Whether to move whole frames into the region (the client offered it, both can)."""
    return _offered(hello, "shm-link") and shmlink.supported() and shmlink.fits(size)


def link_steps(hello: dict[str, Any], frames: StepFrames | None, size: int
               ) -> StepFrames | None:
    """The step layouts to exchange as slot steps on a link in a region of ``size`` bytes.

    Args:
        hello: The client's HELLO.
        frames: The contract's fixed step layouts (:func:`rlmesh.wire.fixed.contract_frames`;
            ``None``: it has none).
        size: The region's size.

    Returns:
        ``frames``, or ``None`` unless the client offered ``shm-link-steps``, the contract
        has fixed step layouts and both slots hold them (``docs/protocol.md`` section 10.3).
    """
    if not _offered(hello, "shm-link-steps"):
        return None
    return frames if frames is not None and slots_fit(frames, shmlink.slot_room(size)) \
        else None


def step_rewards(hello: dict[str, Any]) -> bool:
    """Whether slot-step replies may carry one env's NumPy scalar reward (section 10.3)."""
    return _offered(hello, "shm-link-step-rewards")


def settle(session: Offered, region: ShmRegion) -> bool:
    """Read the client's ``REGION`` answer; ``True`` if it attached the region.

    Closes the region when it did not. A first frame other than ``REGION`` is a fatal
    protocol error.
    """
    try:
        if session.socket is not None:  # (authenticated, but not yet idle: bounded anyway)
            session.socket.set_timeout(session.host.options.handshake_timeout)
        msg = session.receive()
    except BaseException:
        region.close()
        raise
    rid = msg[1]
    if msg[0] != P.OP_REGION or len(msg) != 3 or not isinstance(msg[2], dict):
        region.close()
        session.fatal(rid, P.E_PROTOCOL, "expected REGION after a shared-memory offer")
    attached = msg[2].get("attached") is True
    region.forget_fd()  # attached or not, nobody opens it any more
    if not attached:
        region.close()
        log.debug("session %d: the client could not attach the region", session.session_id)
    return attached
