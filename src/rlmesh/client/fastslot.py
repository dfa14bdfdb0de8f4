"""The client's slot step, compiled when it can be: one C call per step on the common path.

A client whose link agreed on slot steps (:mod:`rlmesh.wire.slots`) spends most of a step's
own time in Python: writing the action, announcing it, polling for the reply and reading it.
The optional C extension ``rlmesh.client._fastslot`` does those in one call
(:meth:`FastSlot.step`), the same bytes in the same order, and hands anything else back to
the Python path, which goes on from where it stopped:

* ``DECLINED``: nothing was written (an action of another layout, released views);
* ``WAKE``: announced, and the server sleeps, and its wake-up byte could not go out at once
  (the compiled step sends it itself when the socket takes it): send it, then receive;
* ``RECEIVE``: announced; the reply is a frame (an error, a reply of another layout) or
  answers another request: receive it as usual;
* ``ASLEEP``: announced, and the poll missed: sleep for the reply
  (:meth:`rlmesh.transport.shmlink.ShmLink.recv_after_spin`).

The extension is built when rlmesh is installed from source with a C compiler at hand; where
it is not (no compiler, another platform), or ``RLMESH_PURE_PYTHON=1`` is set when rlmesh is
imported, every step takes the Python path, with the same results and errors.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from rlmesh.transport.shmlink import ShmLink
from rlmesh.wire.slots import SlotSteps

__all__ = ["ACCELERATED", "ASLEEP", "DECLINED", "RECEIVE", "WAKE", "FastSlot", "fast_slot",
           "why_not"]

DECLINED, WAKE, RECEIVE, ASLEEP = 0, 1, 2, 3


class FastSlot(Protocol):
    """The compiled step over one link (``rlmesh.client._fastslot.FastSlot``)."""

    spun_from: int
    """When the last poll that missed started (``time.perf_counter_ns``'s clock)."""
    wakes: int
    """Wake-up bytes the compiled step sent to a sleeping server."""

    def step(self, rid: int, action: Any) -> list[Any] | int:
        """Step ``rid`` with ``action``: the reply list, or a code (see the module)."""

    def release(self) -> None:
        """Drop every view of the slots. Idempotent."""


def _load() -> tuple[Any, str | None]:
    if os.environ.get("RLMESH_PURE_PYTHON", "") not in ("", "0"):
        return None, "RLMESH_PURE_PYTHON is set"
    try:
        from rlmesh.client import _fastslot
    except ImportError as exc:
        return None, f"the C extension is not built ({exc})"
    return _fastslot, None


_module, _why_not = _load()
ACCELERATED: bool = _module is not None
"""Whether client slot steps run compiled in this process."""


def why_not() -> str | None:
    """Why slot steps run in Python here (``None``: they run compiled)."""
    return _why_not


def fast_slot(link: ShmLink, slots: SlotSteps) -> FastSlot | None:
    """The compiled step over ``link`` with ``slots``' layout; ``None`` where there is none.

    Its views of the slots are dropped together with ``slots``' own (the link's close).
    """
    if _module is None:
        return None
    ctl, out_word, in_word, peer_sleep, policy = link.step_words()
    out, incoming = link.slot_views()
    action, scalar_type, ints, tail, replies = slots.client_views()
    try:
        fast: FastSlot = _module.FastSlot(
            link, policy, ctl, out, incoming, out_word, in_word, peer_sleep, slots.kind,
            np.ndarray, action, scalar_type, ints, tail, replies)
    except (ValueError, TypeError, BufferError):
        return None  # (a layout the compiled step does not cover: the Python path serves)
    return fast
