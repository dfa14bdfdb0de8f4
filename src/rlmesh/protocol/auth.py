"""Token authentication: a challenge-response in which the token never crosses the wire.

Both sides hold the same secret token (``token=`` or the ``RLMESH_TOKEN`` environment
variable). After the client's HELLO (which carries a random client nonce) the server answers
with a random server nonce; the client proves knowledge of the token with an HMAC-SHA256 over
both nonces, and the server's contract carries its own HMAC, so a client also knows it
reached a server that holds the token. Fresh nonces make every proof single-use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

__all__ = ["NONCE_BYTES", "check", "nonce", "proof", "token_from"]

NONCE_BYTES = 16


def token_from(value: str | bytes | None) -> bytes | None:
    """The token to use: ``value``, else ``RLMESH_TOKEN``, else ``None`` (no auth)."""
    if value is None:
        value = os.environ.get("RLMESH_TOKEN") or None
    if value is None:
        return None
    token = value.encode() if isinstance(value, str) else bytes(value)
    if not token:
        raise ValueError("an rlmesh token must not be empty")
    return token


def nonce() -> bytes:
    """A fresh random nonce."""
    return secrets.token_bytes(NONCE_BYTES)


def proof(token: bytes, role: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """HMAC-SHA256 of the role and both nonces under ``token``."""
    message = b"rlmesh-auth-v1|" + role + b"|" + client_nonce + b"|" + server_nonce
    return hmac.new(token, message, hashlib.sha256).digest()


def check(expected: bytes, given: object) -> bool:
    """Constant-time comparison of a received proof."""
    return isinstance(given, bytes) and hmac.compare_digest(expected, given)
