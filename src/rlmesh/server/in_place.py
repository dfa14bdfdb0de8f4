"""A step of an env session answered in one call: its slot stepper and its compiled step.

The STEP handler (:func:`rlmesh.server.env_ops.general_step`) answers any STEP: it checks
the request, steps the env and sends the reply through the session's reply layer. Where a
session answers its steps in one call (:meth:`~rlmesh.server.seam.SessionPort.in_place`:
slot steps over a link, or the compiled fixed frames over a socket), two shorter paths
answer the common step instead, with the same results and errors:

* :func:`slot_stepper`: the action read from its slot (or handed over, read by the compiled
  ``take``), checked, the env stepped, and its results written in place and announced (by
  the compiled ``put`` where there is one);
* :func:`compiled_stepper`: all of that in one compiled call
  (:class:`~rlmesh.transport.extensions.ServesSteps`), the action check included where
  integer bounds decide it (:func:`~rlmesh.server.validation.int_bounds`). What the call
  hands back (a refused action, results of another layout or kind, an env that raised) is
  finished here, as the STEP handler finishes it.

A step before ``reset``, or an invalid action, goes to the STEP handler, which answers the
error. Neither path applies where the env's steps run under a step deadline or an action
conversion, nor to a resumable session: those keep the STEP handler for every step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rlmesh import protocol as P
from rlmesh.errors import ProtocolError
from rlmesh.server.env_ops import action_check, failed, general_step
from rlmesh.server.replies import InPlace
from rlmesh.server.seam import SessionPort, SlotStepper
from rlmesh.server.shapes import five_tuple
from rlmesh.server.validation import int_bounds
from rlmesh.transport import fastslots
from rlmesh.transport.fastframes import ServerFrames
from rlmesh.transport.fastslots import ServerSteps
from rlmesh.wire.slots import SlotSteps

__all__ = ["compiled_stepper", "slot_stepper"]

Finish = Callable[[int, Any], None]
"""Answers a step's results (``finish(rid, result)``), as the STEP handler reads them."""


def slot_stepper(session: SessionPort) -> SlotStepper | None:
    """What answers each slot step of an env session in one call.

    Returns:
        ``None`` if the session has no slot steps answered in place, or its env's steps
        run under a deadline or an action conversion.
    """
    in_place = _in_place(session)
    if in_place is None:
        return None
    action_space, check = action_check(session)
    step = general_step(session, action_space, check)
    read, finish = _reader(session, in_place.slots), _finisher(session, in_place)

    def slot_step(taken: tuple[int, Any] | None = None) -> None:
        rid, action = read() if taken is None else taken  # (else read by the compiled steps)
        if not session.has_reset or (check is not None and not check(action)):
            step([P.OP_STEP, rid, action])  # (it answers the error)
            return
        try:
            result = session.resource.step(action)
        except Exception as exc:
            failed(session, rid, "step", exc, None, None)
            return
        finish(rid, result)

    return slot_step


def compiled_stepper(session: SessionPort) -> Callable[[], int] | None:
    """What serves an env session's next step in one compiled call, once its env is reset.

    Returns:
        ``None`` where the compiled steps do not serve this session (no compiled steps, or
        as :func:`slot_stepper`); else a callable that waits for the next request and
        answers it if it is a step of the fixed layout: it returns ``DONE`` when it
        answered a step, or the compiled ``take``'s ``RECEIVE`` or ``ASLEEP`` when the
        request is to be received on the Python path (``ASLEEP``: its poll missed).
    """
    in_place = _in_place(session)
    fast = None if in_place is None else in_place.fast
    if in_place is None or fast is None:
        return None
    action_space, check = action_check(session)
    bounds = int_bounds(action_space) if check is not None else None
    step = general_step(session, action_space, check)
    finish = _finisher(session, in_place, put_tried=True)
    serve, wake = fast.serve, in_place.wake

    def serve_step() -> int:
        try:
            got = serve(session.resource, check, bounds)
        except Exception as exc:
            rid = fast.failed
            if rid is None:  # (not the env's step: as a failing take or put)
                raise
            session.busy = True
            failed(session, rid, "step", exc, None, None)
            return fastslots.DONE
        if type(got) is int:
            if got == fastslots.WAKE:  # (answered; the client's wake-up byte is to go)
                wake()
                return fastslots.DONE
            return got  # (DONE, RECEIVE or ASLEEP)
        session.busy = True
        if len(got) == 2:  # (a refused action: the STEP handler answers the error)
            step([P.OP_STEP, *got])
        else:
            finish(got[0], got[2])
        return fastslots.DONE

    return serve_step


def _in_place(session: SessionPort) -> InPlace | None:
    """The session's in-place answering, unless its env's steps need the STEP handler."""
    in_place = session.in_place()
    if in_place is None or session.deadline is not None \
            or getattr(session.host.source, "convert_action", None) is not None:
        return None
    return in_place


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


def _finisher(session: SessionPort, in_place: InPlace, put_tried: bool = False) -> Finish:
    """What answers a step's results: in place if they fit, else as a frame.

    Five results in a tuple are answered as they are (``put_tried``: the compiled ``put``
    already declined them); anything else is read as the STEP handler reads it (five values
    of another kind, or old Gym's four converted).
    """
    answer = _answerer(session, in_place, None if put_tried else in_place.fast)

    def finish(rid: int, result: Any) -> None:
        if type(result) is tuple and len(result) == 5:
            answer(rid, result)
            return
        try:
            values = tuple(result)
            if len(values) != 5:
                values = five_tuple(values)
        except Exception as exc:
            failed(session, rid, "step", exc, None, None)
            return
        session.send_step(rid, *values)

    return finish


def _answerer(session: SessionPort, in_place: InPlace,
              fast: ServerSteps | ServerFrames | None) -> Callable[[int, tuple[Any, ...]], None]:
    """What answers a step's five results: in place if they fit, else as a frame.

    ``fast``'s compiled ``put`` tries first, if given.
    """
    send_frame = session.send_frame
    put = fast.put if fast is not None else None
    if in_place.slots is None:  # (a plain socket: the compiled frame, else the Python one)

        def send(rid: int, result: tuple[Any, ...]) -> None:
            if put is None or not put(rid, *result):
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
