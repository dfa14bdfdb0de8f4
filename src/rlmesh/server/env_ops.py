"""The requests of an env session: STEP, RESET, RENDER and the attribute ops.

:func:`env_handlers` builds one handler per op for a session (the env source's part of the
session seam, see :class:`rlmesh.server.seam.Source`). A handler checks its request,
calls the env (under the step deadline when there is one), and answers. An env that raises
is answered with ``env_error`` and its traceback, or, with ``restart_on_error``, replaced by a
fresh env whose reset answers the request (a step becomes a truncation). A session that
answers its steps in one call does so with :mod:`rlmesh.server.in_place`, which hands what
it cannot finish to these handlers.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from rlmesh import protocol as P
from rlmesh.protocol.attributes import ATTRIBUTE_OPS
from rlmesh.server.attributes import answer as answer_attribute
from rlmesh.server.replies import brief, qualname
from rlmesh.server.seam import Handler, SessionPort
from rlmesh.server.shapes import env_spaces, five_tuple
from rlmesh.server.validation import Validator, make_validator

__all__ = ["action_check", "env_handlers", "failed", "general_step"]

log = logging.getLogger("rlmesh.server")


def env_handlers(session: SessionPort) -> dict[int, Handler]:
    """The handlers of an env session's requests, by op code.

    The env they act on is ``session.resource``, which a restart replaces.
    """
    handlers: dict[int, Handler] = {
        P.OP_STEP: general_step(session, *action_check(session)),
        P.OP_RESET: functools.partial(_reset, session),
        P.OP_RENDER: functools.partial(_render, session)}
    handlers.update(dict.fromkeys(ATTRIBUTE_OPS, functools.partial(_attribute, session)))
    return handlers


def action_check(session: SessionPort) -> tuple[Any, Validator | None]:
    """The session env's action space, and its validator (``None``: actions unchecked)."""
    action_space = env_spaces(session.resource)[1]
    check = make_validator(action_space) if session.host.options.validate_actions else None
    return action_space, check


def general_step(session: SessionPort, action_space: Any, check: Validator | None
                 ) -> Handler:
    """The STEP handler (every STEP but those answered in one call, :mod:`.in_place`).

    The hot path, so what it needs is bound once, here.
    """
    deadline = session.deadline
    send_step, error = session.send_step, session.error
    convert = getattr(session.host.source, "convert_action", None)

    def step(msg: list[Any]) -> None:
        rid = msg[1]
        if len(msg) != 3:
            session.fatal(rid, P.E_PROTOCOL, "STEP takes one argument")
        if not session.has_reset:
            error(rid, P.E_RESET_NEEDED, "call reset() before step()")
            return
        action = msg[2]
        if check is not None and not check(action):  # (the validator never raises)
            error(rid, P.E_INVALID_ACTION,
                  f"action {brief(action)} is not in the action space {action_space}")
            return
        env = session.resource
        try:
            if convert is not None:
                action = convert(action)
            result = deadline.run(rid, env.step, action) if deadline else env.step(action)
            try:
                obs, reward, terminated, truncated, info = result
            except ValueError:  # (old Gym's four values, converted; anything else raises)
                obs, reward, terminated, truncated, info = five_tuple(result)
        except Exception as exc:
            failed(session, rid, "step", exc, None, None)
            return
        send_step(rid, obs, reward, terminated, truncated, info)

    return step


def _reset(session: SessionPort, msg: list[Any]) -> None:
    rid = msg[1]
    if len(msg) != 4 or not _valid_seed(msg[2], session.vector) or not (
            msg[3] is None or isinstance(msg[3], dict)):
        session.fatal(rid, P.E_PROTOCOL, "RESET takes seed (int, nil, or for a vector env "
                      "a list of num_envs ints or nils) and options (map or nil)")
    env, deadline = session.resource, session.deadline
    try:
        if deadline:
            obs, info = deadline.run(rid, env.reset, seed=msg[2], options=msg[3])
        else:
            obs, info = env.reset(seed=msg[2], options=msg[3])
    except Exception as exc:
        failed(session, rid, "reset", exc, msg[2], msg[3])
        return
    session.has_reset = True
    session.send([P.STATUS_OK, rid, obs, info])


def _render(session: SessionPort, msg: list[Any]) -> None:
    rid = msg[1]
    method = getattr(session.resource, "render", None)
    deadline = session.deadline
    try:
        frame = None if method is None else (
            deadline.run(rid, method) if deadline else method())
    except Exception as exc:
        _env_error(session, rid, "render", exc)
        return
    session.send([P.STATUS_OK, rid, frame])


def _attribute(session: SessionPort, msg: list[Any]) -> None:
    answer_attribute(session, session.resource, msg)


def failed(session: SessionPort, rid: Any, what: str, exc: Exception, seed: Any,
           options: Any) -> None:
    """The env raised in ``what``: replace it if restarts are allowed, else answer the error."""
    if session.host.options.restart_on_error > 0 and session.restarts_left:
        _restart(session, rid, what, exc, seed, options)
    else:
        _env_error(session, rid, what, exc)


def _restart(session: SessionPort, rid: Any, what: str, exc: Exception, seed: Any,
             options: Any) -> None:
    """Replace the env after ``exc``; answer the request from a fresh, reset env.

    A step is answered as a truncation (zero reward) and a reset as a reset; either way
    ``info["rlmesh_restart"]`` says what happened. The new env is ``session.resource``.
    """
    host = session.host
    allowed = host.options.restart_on_error
    cause = f"{qualname(exc)}: {exc}"
    while True:
        session.restarts_left -= 1
        used = allowed - session.restarts_left
        host.count("restarts")
        log.warning("session %d: env.%s() raised (%s); replacing the env (restart %d of %d)",
                    session.session_id, what, cause, used, allowed)
        session.release()
        try:
            session.resource = host.source.acquire()
            obs, info = session.resource.reset(seed=seed, options=options)
            break
        except Exception as again:
            if not session.restarts_left:
                session.fatal(rid, P.E_ENV, f"env.{what}() raised ({cause}) and the env "
                              f"could not be replaced: {again}", exc=again)
            cause = f"{qualname(again)}: {again}"
    session.has_reset = True
    info = dict(info) if isinstance(info, dict) else {}
    info["rlmesh_restart"] = {"op": what, "error": cause, "restart": used,
                              "restarts_left": session.restarts_left}
    if what == "reset":
        session.send([P.STATUS_OK, rid, obs, info])
    elif session.vector:
        n = int(session.resource.num_envs)
        session.send([P.STATUS_OK, rid, obs, np.zeros(n), np.zeros(n, bool), np.ones(n, bool),
                      info])
    else:
        session.send([P.STATUS_OK, rid, obs, 0.0, False, True, info])


def _env_error(session: SessionPort, rid: Any, what: str, exc: Exception) -> None:
    if isinstance(exc, (TypeError, ValueError)) and "unpack" in str(exc):
        message = (f"env.{what}() returned the wrong number of values (Gymnasium API: "
                   "reset -> (obs, info), step -> (obs, reward, terminated, truncated, "
                   f"info)): {exc}")
    else:
        message = str(exc)
    session.error(rid, P.E_ENV, message, exc=exc)


def _valid_seed(seed: Any, vector: bool) -> bool:
    """Whether ``seed`` is a RESET seed: int or nil, or for a vector env a list of them."""
    if seed is None or type(seed) is int:
        return True
    # (a wrong length is the vector env's to refuse, as in-process: a non-fatal env error)
    return vector and type(seed) is list and all(s is None or type(s) is int for s in seed)
