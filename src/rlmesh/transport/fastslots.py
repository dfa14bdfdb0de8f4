"""Slot steps compiled when they can be: one C call per step on each side's common path.

Over a link that agreed on slot steps (:mod:`rlmesh.wire.slots`), most of a step's own time
on each side is Python: the client writes the action, announces it, polls for the reply and
reads it; the server polls for the request, reads it, and after the env's step writes and
announces the reply. The optional C extension ``rlmesh.transport._fastslots`` does each of
those runs in one call, the same bytes in the same order:

* :meth:`ClientSteps.step` (the client), or its two halves :meth:`ClientSteps.post` and
  :meth:`ClientSteps.reply` for a pipelined request (a fleet's ``submit`` and ``collect``);
  :meth:`ServerSteps.take` and :meth:`ServerSteps.put` (the server), or
  :meth:`ServerSteps.serve`, which takes a step, checks its action, calls the env's
  ``step`` and puts the results in one call
  (:class:`~rlmesh.transport.extensions.ServesSteps`).

Whatever else happens it hands to the Python path, which goes on from where it stopped:

* ``DECLINED``: nothing written or read (a value of another layout, the views released;
  ``reply`` hands a released view on as ``RECEIVE``);
* ``WAKE``: announced, the peer sleeps, and its wake-up byte did not go out at once (the
  compiled step sends it itself when the socket takes it): send it
  (:meth:`~rlmesh.transport.shmlink.ShmLink.wake_peer`);
* ``RECEIVE``: the peer's slot holds something else (a frame, another request's reply, a
  form this layout has not): receive it as usual;
* ``ASLEEP``: the poll missed: sleep for the peer
  (:meth:`~rlmesh.transport.shmlink.ShmLink.recv_after_spin` from ``spun_from``).

The state stays the link's own: its sequence counts and its spin policy (the extension reads
and writes ``ShmLink._out_seq``, ``_in_seq``, ``_policy`` and ``sock``). The extension is
built when rlmesh is installed from source with a C compiler at hand; where it is not (no
compiler, another platform), or ``RLMESH_PURE_PYTHON=1`` is set when rlmesh is imported,
every step takes the Python path, with the same results and errors.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import numpy as np

from rlmesh.transport.extensions import ServesSteps, load
from rlmesh.transport.shmlink import ShmLink

__all__ = ["ACCELERATED", "ASLEEP", "DECLINED", "DONE", "RECEIVE", "WAKE", "ClientSteps",
           "ServerSteps", "client_steps", "server_steps", "why_not"]

DECLINED: Final = 0
DONE: Final = 1
WAKE: Final = 2
RECEIVE: Final = 3
ASLEEP: Final = 4


class _Side(Protocol):
    spun_from: int
    """When the last poll that missed started (``time.perf_counter_ns``'s clock)."""
    wakes: int
    """Wake-up bytes this side sent to its sleeping peer."""
    held: bool
    """Whether the views of the slots are held (until :meth:`release`)."""

    def release(self) -> None:
        """Drop every view of the slots (the region may then close). Idempotent."""


class ClientSteps(_Side, Protocol):
    """The client's compiled step over one link."""

    def step(self, rid: int, action: Any) -> list[Any] | int:
        """Step ``rid`` with ``action``: the reply list, or a code (see the module)."""

    def post(self, rid: int, action: Any) -> int:
        """The first half of a step, for a pipelined request: write and announce it.

        Returns:
            ``DONE``, ``WAKE``, or ``DECLINED`` (of another layout: nothing written).
        """

    def reply(self, rid: int) -> list[Any] | int:
        """The second half of a posted step: the reply list, or ``RECEIVE`` or ``ASLEEP``."""


class ServerSteps(_Side, ServesSteps, Protocol):
    """The server's compiled steps over one link."""

    def take(self) -> tuple[int, Any] | int:
        """The next slot step's ``(rid, action)``, or a code (see the module)."""

    def put(self, rid: int, obs: Any, reward: Any, terminated: Any, truncated: Any,
            info: Any) -> int:
        """Write step ``rid``'s results and announce them.

        Returns:
            ``DONE``, ``WAKE``, or ``DECLINED`` (of another layout: nothing announced).
        """


class _ClientLayout(Protocol):
    kind: int

    def client_views(self) -> tuple[np.ndarray[Any, Any], type | None, bool, int,
                                    tuple[np.ndarray[Any, Any], ...],
                                    tuple[np.ndarray[Any, Any], ...]]: ...


class _ServerLayout(Protocol):
    kind: int

    def server_views(self) -> tuple[np.ndarray[Any, Any], bool, bool,
                                    tuple[np.ndarray[Any, Any], ...],
                                    tuple[np.ndarray[Any, Any], ...]]: ...


_module, _why_not = load("_fastslots")
ACCELERATED: Final = _module is not None
"""Whether slot steps run compiled in this process."""


def why_not() -> str | None:
    """Why slot steps run in Python here (``None``: they run compiled)."""
    return _why_not


def client_steps(link: ShmLink, slots: _ClientLayout) -> ClientSteps | None:
    """The client's compiled step over ``link`` in ``slots``' layout (``None``: none here).

    Its views must be released (:meth:`ClientSteps.release`) before the link's region.
    """
    made: ClientSteps | None = _made("ClientSteps", link, slots.kind, slots.client_views())
    return made


def server_steps(link: ShmLink, slots: _ServerLayout) -> ServerSteps | None:
    """The server's compiled steps over ``link`` in ``slots``' layout (``None``: none here).

    Its views must be released (:meth:`ServerSteps.release`) before the link's region.
    """
    made: ServerSteps | None = _made("ServerSteps", link, slots.kind, slots.server_views())
    return made


def _made(name: str, link: ShmLink, kind: int, layout: tuple[Any, ...]) -> Any:
    """The extension's ``name`` over ``link``'s words and slots; ``None`` where there is none.

    ``None`` too for a layout the compiled steps do not cover: the Python path serves it.
    """
    if _module is None:
        return None
    ctl, out_word, in_word, peer_sleep = link.step_words()
    try:
        return getattr(_module, name)(link, ctl, *link.slot_views(), out_word, in_word,
                                      peer_sleep, kind, np.ndarray, *layout)
    except (ValueError, TypeError, BufferError):
        return None
