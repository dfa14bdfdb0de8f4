"""The requests of an env session: STEP, RESET, RENDER and the attribute ops.

:func:`env_handlers` builds one handler per op for a session (the env source's part of the
session seam, see :class:`rlmesh.server.seam.Source`). A handler checks its request,
calls the env (under the step deadline when there is one), and answers. An env that raises
is answered with ``env_error`` and its traceback, or, with ``restart_on_error``, replaced by a
fresh env whose reset answers the request (a step becomes a truncation).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from rlmesh import protocol as P
from rlmesh.errors import ProtocolError
from rlmesh.protocol.attributes import ATTRIBUTE_OPS
from rlmesh.server.attributes import answer as answer_attribute
from rlmesh.server.replies import InPlace, brief, qualname
from rlmesh.server.seam import Handler, SessionPort, SlotStepper
from rlmesh.server.shapes import env_spaces, five_tuple
from rlmesh.server.validation import Validator, make_validator
from rlmesh.transport import fastslots
from rlmesh.wire.slots import SlotSteps

__all__ = ["env_handlers", "slot_stepper"]

log = logging.getLogger("rlmesh.server")


def env_handlers(session: SessionPort) -> dict[int, Handler]:
    """The handlers of an env session's requests, by op code.

    The env they act on is ``session.resource``, which a restart replaces.
    """
    handlers: dict[int, Handler] = {
        P.OP_STEP: _general_step(session, *_action_check(session)),
        P.OP_RESET: functools.partial(_reset, session),
        P.OP_RENDER: functools.partial(_render, session)}
    handlers.update(dict.fromkeys(ATTRIBUTE_OPS, functools.partial(_attribute, session)))
    return handlers


def _action_check(session: SessionPort) -> tuple[Any, Validator | None]:
    """The session env's action space, and its validator (``None``: actions unchecked)."""
    action_space = env_spaces(session.resource)[1]
    check = make_validator(action_space) if session.host.options.validate_actions else None
    return action_space, check


def _general_step(session: SessionPort, action_space: Any, check: Validator | None
                  ) -> Handler:
    """The STEP handler (every STEP but the slot steps a slot stepper answers).

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
            _failed(session, rid, "step", exc, None, None)
            return
        send_step(rid, obs, reward, terminated, truncated, info)

    return step


def _in_place_step(session: SessionPort, step: Handler, check: Validator | None
                   ) -> SlotStepper | None:
    """STEP for a slot step, in one call.

    The action is read and checked, the env stepped, the reply written in place and
    announced. Anything else (an error to answer, a result of another layout) takes the
    general path. ``None`` where slot steps are not answered in place, or where the env's
    step runs under a deadline or an action conversion (those keep the STEP handler).
    """
    in_place = session.in_place()
    if in_place is None or session.deadline is not None \
            or getattr(session.host.source, "convert_action", None) is not None:
        return None
    read, answer = _reader(session, in_place.slots), _answerer(session, in_place)

    def slot_step(taken: tuple[int, Any] | None = None) -> None:
        rid, action = read() if taken is None else taken  # (else read by the compiled steps)
        if not session.has_reset or (check is not None and not check(action)):
            step([P.OP_STEP, rid, action])  # (it answers the error)
            return
        try:
            result = session.resource.step(action)
        except Exception as exc:
            _failed(session, rid, "step", exc, None, None)
            return
        if type(result) is tuple and len(result) == 5:
            answer(rid, result)
            return
        try:  # (five values of another kind, or old Gym's four: as the STEP handler reads)
            values = tuple(result)
            if len(values) != 5:
                values = five_tuple(values)
        except Exception as exc:
            _failed(session, rid, "step", exc, None, None)
            return
        session.send_step(rid, *values)

    return slot_step


def _reader(session: SessionPort, slots: SlotSteps | None) -> Callable[[], tuple[int, Any]]:
    """What reads a slot step's request id and action from its slot.

    Without slots (compiled frames over a socket) every step comes read: none is in a slot.
    """
    if slots is None:
        return functools.partial(session.fatal, None, P.E_PROTOCOL, "no slot step here")
    read_step = slots.read_step

    def read() -> tuple[int, Any]:
        try:
            return read_step()
        except ProtocolError as exc:
            session.fatal(None, P.E_PROTOCOL, str(exc))

    return read


def _answerer(session: SessionPort, in_place: InPlace
              ) -> Callable[[int, tuple[Any, ...]], None]:
    """What answers a step's five results: in place if they fit, else as a frame."""
    send_frame = session.send_frame
    put = in_place.fast.put if in_place.fast is not None else None
    if in_place.slots is None:  # (a plain socket: the compiled frame, else the Python one)
        assert put is not None

        def send(rid: int, result: tuple[Any, ...]) -> None:
            if not put(rid, *result):
                send_frame([P.STATUS_OK, rid, *result])

        return send
    write, announce, wake = in_place.slots.write_result, in_place.announce, in_place.wake

    def answer(rid: int, result: tuple[Any, ...]) -> None:
        if put is not None:
            done = put(rid, *result)
            if done:  # (written and announced by the compiled steps)
                if done == fastslots.WAKE:
                    wake()
                return
        if write(rid, *result):
            announce()
        else:  # (another layout: a frame; the slot was tried once)
            send_frame([P.STATUS_OK, rid, *result])

    return answer


def slot_stepper(session: SessionPort) -> SlotStepper | None:
    """What answers each slot step of an env session in one call.

    Returns:
        ``None`` if the session has no slot steps answered in place, or its env's steps
        run under a deadline or an action conversion.
    """
    action_space, check = _action_check(session)
    return _in_place_step(session, _general_step(session, action_space, check), check)


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
        _failed(session, rid, "reset", exc, msg[2], msg[3])
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


def _failed(session: SessionPort, rid: Any, what: str, exc: Exception, seed: Any,
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
