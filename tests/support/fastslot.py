"""The client's compiled slot step in tests: required where it must be, and spied on.

``RLMESH_REQUIRE_EXTENSIONS=1`` (set by CI, which has a C compiler) turns a missing
extension into a failure; elsewhere its tests skip with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from rlmesh.client import fastslot
from rlmesh.client import handshake as client_handshake
from rlmesh.transport.shmlink import ShmLink
from rlmesh.wire.slots import SlotSteps


def require_compiled() -> None:
    """Skip (or, under ``RLMESH_REQUIRE_EXTENSIONS=1``, fail) without the compiled step."""
    why = fastslot.why_not()
    if why is None:
        return
    if os.environ.get("RLMESH_REQUIRE_EXTENSIONS") == "1":
        pytest.fail(f"the compiled slot step is required here, but {why}")
    pytest.skip(f"the compiled slot step is not available: {why}")


class CountedFastSlot:
    """A compiled step that counts the replies it read and records each call's outcome."""

    def __init__(self, fast: fastslot.FastSlot, count: list[int], codes: list[int]) -> None:
        self.fast = fast
        self.count = count
        self.codes = codes

    @property
    def spun_from(self) -> int:
        return self.fast.spun_from

    @property
    def wakes(self) -> int:
        return self.fast.wakes

    def step(self, rid: int, action: Any) -> list[Any] | int:
        got = self.fast.step(rid, action)
        if type(got) is list:
            self.count[0] += 1
            self.codes.append(-1)
        else:
            assert isinstance(got, int)
            self.codes.append(got)
        return got

    def release(self) -> None:
        self.fast.release()


def counting_fast_slot(count: list[int], codes: list[int] | None = None
                       ) -> Callable[[ShmLink, SlotSteps], Any]:
    """A stand-in for ``handshake.fast_slot`` whose steps count into ``count``.

    ``codes`` (if given) receives each call's outcome: ``-1`` for a reply read by the
    compiled step, else the code it handed to the Python path.
    """
    make = fastslot.fast_slot
    outcomes: list[int] = [] if codes is None else codes

    def made(link: ShmLink, slots: SlotSteps) -> Any:
        fast = make(link, slots)
        assert fast is not None, "the compiled step declined a layout it covers"
        return CountedFastSlot(fast, count, outcomes)

    return made


__all__ = ["CountedFastSlot", "client_handshake", "counting_fast_slot", "require_compiled"]
