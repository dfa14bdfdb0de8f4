"""Remote attribute access on the server: the three attribute ops.

The ops are ``GET_ATTR``, ``CALL`` and ``SET_ATTR`` (``docs/protocol.md`` section 13).
Gymnasium's escape hatches (``env.unwrapped.x``, ``get_wrapper_attr``, ``set_wrapper_attr``,
a vector env's ``get_attr``, ``set_attr`` and ``call``) reach the served env through these ops.
Clients are untrusted, so every rule of :mod:`rlmesh.protocol.attributes` is enforced here.
Arguments and results travel through the codec like everything else: data only, never pickle.
"""

from __future__ import annotations

from typing import Any, Final

import gymnasium as gym

from rlmesh import protocol as P
from rlmesh.protocol.attributes import refusal, shown
from rlmesh.server.seam import SessionPort

__all__ = ["answer"]

_ARITY: Final = {P.OP_GET_ATTR: 3, P.OP_CALL: 5, P.OP_SET_ATTR: 4}
_USAGE: Final = {
    P.OP_GET_ATTR: "GET_ATTR takes one argument: name",
    P.OP_CALL: "CALL takes name, args (array) and kwargs (map with str keys)",
    P.OP_SET_ATTR: "SET_ATTR takes two arguments: name and value",
}


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class Missing(Exception):
    """The served env has no attribute of that name (answered as ``no_attribute``)."""


def _lookup(env: Any, name: str) -> Any:
    """The attribute, looked up through a Gymnasium env's wrappers."""
    try:
        if isinstance(env, gym.Env):
            return env.get_wrapper_attr(name)
        return getattr(env, name)
    except AttributeError as exc:
        raise Missing(f"the served env has no attribute {shown(name)} "
                      f"({_cut(str(exc))})") from None


def _vector(env: Any, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """``env.<method>(name, ...)`` on a vector env; an AttributeError counts as missing."""
    try:
        return getattr(env, method)(name, *args, **kwargs)
    except AttributeError as exc:
        raise Missing(f"the served vector env has no attribute {shown(name)} in its "
                      f"sub-envs, or no {method}() ({_cut(str(exc))})") from None


def get(env: Any, name: str, vector: bool) -> tuple[Any, bool]:
    """GET_ATTR: ``(value, False)``, or ``(None, True)`` for a method (the client CALLs it)."""
    if vector:
        return tuple(_vector(env, "get_attr", name)), False
    value = _lookup(env, name)
    return (None, True) if callable(value) else (value, False)


def call(env: Any, name: str, args: list[Any], kwargs: dict[str, Any], vector: bool) -> Any:
    """CALL: the method's result, or the attribute's value if it is not callable."""
    if vector:
        return tuple(_vector(env, "call", name, *args, **kwargs))
    target = _lookup(env, name)
    return target(*args, **kwargs) if callable(target) else target


def assign(env: Any, name: str, value: Any, vector: bool) -> None:
    """SET_ATTR: through the wrappers of a Gymnasium env (``set_wrapper_attr``)."""
    if vector:
        env.set_attr(name, value)
    elif isinstance(env, gym.Env):
        env.set_wrapper_attr(name, value)
    else:
        setattr(env, name, value)


def answer(session: SessionPort, env: Any, msg: list[Any]) -> None:
    """Answer one GET_ATTR, CALL or SET_ATTR request of ``session`` (its request loop).

    Malformed arguments end the session (``protocol_error``); everything else is answered
    and the session goes on.
    """
    op, rid = msg[0], msg[1]
    if len(msg) != _ARITY[op] or (op == P.OP_CALL and not _call_arguments(msg[3], msg[4])):
        session.fatal(rid, P.E_PROTOCOL, _USAGE[op])
    if not session.host.options.remote_attributes:
        session.error(rid, P.E_NOT_ALLOWED, "this server does not allow remote attribute "
                       "access (ServeOptions(remote_attributes=True))")
        return
    name = msg[2]
    vector = session.vector
    why = refusal(op, name, vector=vector)
    if why is not None:
        session.error(rid, P.E_NOT_ALLOWED, why)
        return
    work: Any
    args: tuple[Any, ...]
    if op == P.OP_GET_ATTR:
        work, args, subject = get, (env, name, vector), f"the value of env.{name}"
    elif op == P.OP_CALL:
        work, args = call, (env, name, msg[3], msg[4], vector)
        subject = f"the result of env.{name}(...)"
    else:
        work, args, subject = assign, (env, name, msg[3], vector), ""
    try:
        deadline = session.deadline
        result = deadline.run(rid, work, *args) if deadline else work(*args)
    except Missing as exc:
        session.error(rid, P.E_NO_ATTRIBUTE, str(exc))
        return
    except Exception as exc:
        session.error(rid, P.E_ENV, str(exc), exc=exc)
        return
    if op == P.OP_GET_ATTR:
        session.send([P.STATUS_OK, rid, *result], subject=subject)
    else:
        session.send([P.STATUS_OK, rid, result], subject=subject)


def _call_arguments(args: Any, kwargs: Any) -> bool:
    """Whether CALL's ``args`` and ``kwargs`` have the shapes the protocol asks for."""
    return type(args) is list and type(kwargs) is dict and all(type(k) is str for k in kwargs)
