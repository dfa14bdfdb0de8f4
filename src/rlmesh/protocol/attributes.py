"""The rules of remote attribute access that both peers apply (``docs/protocol.md`` section 13).

Clients are untrusted, so the server enforces every rule (:mod:`rlmesh.server.attributes`);
clients check names first so that a refused request is never sent
(:mod:`rlmesh.client.attributes`). A name is a public identifier (nothing private or dunder),
``reset``, ``step`` and ``close`` keep to their own ops, nothing that defines the contract a
client cached at the handshake can be set, and the accessors that take a name
(``get_wrapper_attr`` and friends) cannot be called, since they would bypass these rules.
"""

from __future__ import annotations

from typing import Any, Final

from rlmesh import protocol as P

__all__ = ["ACCESSORS", "ATTRIBUTE_OPS", "FIXED", "OWN_OPS", "refusal", "shown"]

ATTRIBUTE_OPS: Final = frozenset({P.OP_GET_ATTR, P.OP_CALL, P.OP_SET_ATTR})

OWN_OPS: Final = frozenset({"reset", "step", "close"})
"""Methods with ops of their own; CALL and SET_ATTR (and a vector env's GET_ATTR) refuse them."""
ACCESSORS: Final = frozenset({"get_wrapper_attr", "set_wrapper_attr", "has_wrapper_attr"})
"""Methods that take an attribute name: calling them would bypass the name rules."""
FIXED: Final = frozenset({
    "observation_space", "action_space", "single_observation_space", "single_action_space",
    "num_envs", "metadata", "render_mode", "spec", "render", "env",
})
"""What SET_ATTR refuses: the contract a client cached, ``render``, and a wrapper's ``env``."""

def shown(name: str, limit: int = 60) -> str:
    """``repr(name)``, cut to about ``limit`` characters (names come from untrusted peers)."""
    return repr(name) if len(name) <= limit else repr(name[:limit]) + "..."


def refusal(op: int, name: Any, *, vector: bool) -> str | None:
    """Why ``name`` may not be used with ``op``, or ``None`` when it may.

    Args:
        op: ``OP_GET_ATTR``, ``OP_CALL`` or ``OP_SET_ATTR``.
        name: The attribute name as received (any value).
        vector: Whether the endpoint serves a vector env (whose ``get_attr`` calls methods).
    """
    if type(name) is not str:
        return f"an attribute name must be a str, not {type(name).__qualname__}"
    if not name.isidentifier():
        return f"{shown(name)} is not an attribute name (a Python identifier)"
    if name.startswith("_"):
        return f"{shown(name)}: names starting with '_' (private, dunder) are not accessible " \
               "remotely"
    if name in ACCESSORS:
        return f"{name}() takes an attribute name and would bypass the remote access rules; " \
               "ask for the attribute itself"
    if name in OWN_OPS and (op != P.OP_GET_ATTR or vector):
        return f"{name}() can only be used through its own request (env.{name}(...)), not " \
               "through call, get_attr or set_attr"
    if op == P.OP_SET_ATTR and name in FIXED:
        return f"{name!r} defines the env's contract (cached by clients at the handshake) and " \
               "cannot be set remotely"
    return None
