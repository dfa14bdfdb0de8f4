"""``rlmesh.probe``: ask an endpoint to describe itself without opening a session."""

from __future__ import annotations

import ssl
from typing import Any

from rlmesh import protocol as P
from rlmesh.client import handshake
from rlmesh.protocol import auth
from rlmesh.tls import resolve_client as resolve_tls
from rlmesh.transport.sockets import parse_address

__all__ = ["probe"]


def probe(address: str, timeout: float = 5.0,
          tls: ssl.SSLContext | bool | None = None, *, token: str | bytes | None = None,
          wait: float | None = None) -> dict[str, Any]:
    """Ask an endpoint to describe itself without opening a session (a health check).

    The server builds no env and holds nothing for this; a busy single-instance endpoint
    answers too (with ``"busy": True``). An endpoint that requires a token describes itself
    only to a client that proves it holds the token; without one the answer is partial:
    ``{"auth": True, "server": ...}`` and no ``kind``.

    Args:
        address: The endpoint.
        timeout: Seconds for the connect and for the answer.
        tls: TLS context, ``True`` for the system's CAs, or ``None``.
        token: The endpoint's token (default ``RLMESH_TOKEN``).
        wait: Seconds to keep retrying a refused connection (a server still starting);
            ``None`` fails at once.

    Returns:
        The endpoint's contract (spaces as schemas, ``kind``, ``num_envs``, ``server``...).

    Raises:
        ConnectFailedError: Nothing accepts connections at ``address`` (within ``wait``).
        AuthenticationError: The token is wrong, or the endpoint cannot prove it holds it.
        RLMeshError: The endpoint answered with another error, or not in time.
    """
    parsed = parse_address(address)
    secret = auth.token_from(token)
    conn, _ = handshake.open_transport(parsed, timeout if wait is None else wait,
                                       resolve_tls(tls, parsed.tls), P.DEFAULT_MAX_MESSAGE_BYTES,
                                       wait=wait is not None)
    try:
        conn.set_timeout(timeout)
        hello: dict[str, Any] = {"rlmesh": P.PROTOCOL_VERSION, "client": P.CLIENT_NAME,
                                 "capabilities": [], "probe": True}
        nonce = auth.nonce() if secret is not None else b""
        if secret is not None:
            hello["nonce"] = nonce
        reply = handshake.exchange(conn, parsed, P.OP_HELLO, hello, timeout)
        return handshake.answer_challenge(conn, parsed, reply, secret, nonce, timeout)
    finally:
        conn.close()
