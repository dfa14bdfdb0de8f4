"""The compiled slot steps in tests: required where they must be, and spied on.

``RLMESH_REQUIRE_EXTENSIONS=1`` (set by CI, which has a C compiler) turns a missing
extension into a failure; elsewhere its tests skip with the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rlmesh.client import handshake as client_handshake
from rlmesh.transport import fastslots
from rlmesh.transport.shmlink import ShmLink
from rlmesh.wire.slots import SlotSteps
from tests.support.values import assert_same_values


def require_compiled(face: Any = fastslots) -> None:
    """Skip (or, under ``RLMESH_REQUIRE_EXTENSIONS=1``, fail) without the compiled steps.

    Args:
        face: The extension's Python face: :mod:`rlmesh.transport.fastslots` (the slot
            steps) or :mod:`rlmesh.transport.fastframes` (the fixed frames).
    """
    why = face.why_not()
    what = face.__name__.rsplit(".", 1)[-1]
    if why is None:
        return
    if os.environ.get("RLMESH_REQUIRE_EXTENSIONS") == "1":
        pytest.fail(f"the compiled steps of {what} are required here, but {why}")
    pytest.skip(f"the compiled steps of {what} are not available: {why}")


class CountedClientSteps:
    """A compiled step that counts the replies it read and records each call's outcome."""

    def __init__(self, fast: fastslots.ClientSteps, count: list[int], codes: list[int]) -> None:
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
        return self._counted(self.fast.step(rid, action))

    def post(self, rid: int, action: Any) -> int:
        got = self.fast.post(rid, action)
        self.codes.append(got)
        return got

    def reply(self, rid: int) -> list[Any] | int:
        return self._counted(self.fast.reply(rid))

    def _counted(self, got: list[Any] | int) -> list[Any] | int:
        """Count a reply read in C (``-1``), or record the code handed on."""
        if type(got) is list:
            self.count[0] += 1
            self.codes.append(-1)
        else:
            assert isinstance(got, int)
            self.codes.append(got)
        return got

    def release(self) -> None:
        self.fast.release()


def served(got: Any) -> tuple[Any, int | None]:
    """What one compiled ``serve`` call did, as its ``take`` and ``put`` would have said.

    Returns:
        The take's part (``"step"`` for a step taken, else its code) and the put's code
        (``None``: nothing was put).
    """
    if type(got) is int:
        return (got, None) if got in (fastslots.RECEIVE, fastslots.ASLEEP) else ("step", got)
    if len(got) == 3 and type(got[2]) is tuple and len(got[2]) == 5:
        return "step", fastslots.DECLINED  # (five results put, and declined)
    return "step", None  # (a refused action, or results of another kind)


class CountedServerSteps:
    """Compiled server steps that count their puts, ``serve``'s own included."""

    def __init__(self, fast: fastslots.ServerSteps, puts: list[int]) -> None:
        self.fast = fast
        self.puts = puts
        self.take = fast.take

    @property
    def spun_from(self) -> int:
        return self.fast.spun_from

    @property
    def failed(self) -> int | None:
        return self.fast.failed

    @property
    def stepping(self) -> bool:
        return self.fast.stepping

    def put(self, *args: Any) -> int:
        self.puts[0] += 1
        return self.fast.put(*args)

    def serve(self, env: Any, check: Any, bounds: Any) -> Any:
        got = self.fast.serve(env, check, bounds)
        self.puts[0] += served(got)[1] is not None
        return got

    def release(self) -> None:
        self.fast.release()


def count_python_slot_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the slot-step replies read on the Python path (``[count]``, kept current)."""
    count = [0]
    read_reply = SlotSteps.read_reply

    def counted(self: SlotSteps, rid: int) -> list[Any]:
        count[0] += 1
        return read_reply(self, rid)

    monkeypatch.setattr(SlotSteps, "read_reply", counted)
    return count


def counting_client_steps(count: list[int], codes: list[int] | None = None
                          ) -> Callable[[ShmLink, SlotSteps], Any]:
    """A stand-in for the client handshake's ``client_steps``: its steps count into ``count``.

    ``codes`` (if given) receives each call's outcome: ``-1`` for a reply read by the
    compiled step, else the code it handed to the Python path.
    """
    make = fastslots.client_steps
    outcomes: list[int] = [] if codes is None else codes

    def made(link: ShmLink, slots: SlotSteps) -> Any:
        fast = make(link, slots)
        assert fast is not None, "the compiled step declined a layout it covers"
        return CountedClientSteps(fast, count, outcomes)

    return made


def step_both(env: Any, local: Any, actions: list[Any], seed: int, expect: dict[str, Any],
              pause: float = 0.0) -> None:
    """Step ``env`` and ``local`` alike from ``seed``; resets where an episode ends.

    Args:
        env: The remote env, whose contract must hold ``expect`` (how it steps).
        local: The same env in this process.
        actions: The actions, in order (a NumPy 0-d value steps ``local`` as an int).
        seed: The first reset's seed.
        expect: Contract entries ``env`` must have (``{"shm_link_steps": True}``...).
        pause: Seconds to wait before each step.
    """
    for key, value in expect.items():
        assert env.contract[key] == value, (key, env.contract[key])
    assert_same_values(env.reset(seed=seed), local.reset(seed=seed), "reset")
    for i, action in enumerate(actions):
        if pause:
            time.sleep(pause)
        got = env.step(action)
        want = local.step(int(action) if np.ndim(action) == 0 else action)
        assert_same_values(got, want, f"step {i}")
        if want[2] or want[3]:
            assert_same_values(env.reset(seed=i), local.reset(seed=i), f"reset {i}")


__all__ = ["CountedClientSteps", "CountedServerSteps", "client_handshake",
           "counting_client_steps", "require_compiled", "step_both"]
