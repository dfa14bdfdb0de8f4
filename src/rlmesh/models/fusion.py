"""Fusing the predictions of concurrent sessions into one batched call (``allow_fusion``).

One served model answers every session at once, each in its own thread. A model that sets
``allow_fusion = True`` and has a batch corner (``predict_batch`` or ``predict_chunk_batch``)
lets the server fuse the single observations that arrive while a forward pass is running into
the next forward: N sessions cost one ``predict_batch`` over N lanes instead of N ``predict``
calls. Nobody waits for a batch to fill: the first request runs at once, alone; requests
that arrive meanwhile queue, and the next forward takes them all (at most ``max_lanes``).
So an idle model answers as fast as without fusion, and a busy one batches as deep as its
load.

The fused observation gains a leading batch axis on every leaf (text and other non-numeric
leaves stay per-lane lists); the returned batch is split back per lane. An exception in a
fused forward is every fused session's error (each gets ``model_error``; the server goes on).
Fusion is opt-in because it changes what a model sees: a model that keeps per-session state in
``predict`` (or is not safe to batch across episodes) keeps the default, ``False``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rlmesh.vector.batching import pick

__all__ = ["Fuser", "stack_lanes"]


def stack_lanes(values: list[Any]) -> Any:
    """Lanes as one batch: a leading axis on every numeric leaf, lists for the rest.

    Args:
        values: One observation per lane, all of one structure.

    Raises:
        ValueError: The lanes differ in structure or in a leaf's shape.
    """
    first = values[0]
    if isinstance(first, Mapping):
        if any(not isinstance(v, Mapping) or v.keys() != first.keys() for v in values):
            raise ValueError("fused observations differ in their keys")
        return {key: stack_lanes([v[key] for v in values]) for key in first}
    if isinstance(first, tuple):
        if any(not isinstance(v, tuple) or len(v) != len(first) for v in values):
            raise ValueError("fused observations differ in their length")
        return tuple(stack_lanes([v[i] for v in values]) for i in range(len(first)))
    if isinstance(first, (np.ndarray, np.generic, int, float, bool)) and not isinstance(
            first, (str, bytes)):
        try:
            return np.stack([np.asarray(v) for v in values])
        except ValueError as exc:
            raise ValueError(f"fused observations differ in shape: {exc}") from None
    return list(values)


class _Slot:
    """One session's observation, waiting for its action."""

    __slots__ = ("action", "error", "event", "lead", "observation")

    def __init__(self, observation: Any) -> None:
        self.observation = observation
        self.event = threading.Event()
        self.lead = False
        self.action: Any = None
        self.error: BaseException | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.action


class Fuser:
    """Answers single observations from many threads with batched calls.

    Args:
        batch: The model's batch corner as the server calls it (a numpy batch in, a batch of
            actions out).
        max_lanes: Most observations one call fuses.
    """

    def __init__(self, batch: Callable[[Any], Any], *, max_lanes: int = 256) -> None:
        if max_lanes < 1:
            raise ValueError("max_lanes must be >= 1")
        self._batch = batch
        self._max_lanes = max_lanes
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._running = False
        self.calls = 0
        """Batched calls made so far."""
        self.largest = 0
        """The most lanes one call has fused."""

    def __call__(self, observation: Any) -> Any:
        """The action for one observation (fused with whatever else is waiting)."""
        slot = _Slot(observation)
        with self._lock:
            self._pending.append(slot)
            lead = not self._running
            self._running = True
        if not lead:
            slot.event.wait()
            if not slot.lead:
                return slot.result()
        self._forward()
        return slot.result()

    def _forward(self) -> None:
        """Run one fused call over what is queued, then hand the lead on (or stand down)."""
        with self._lock:
            lanes = self._pending[: self._max_lanes]
            del self._pending[: self._max_lanes]
        try:
            self._answer(lanes)
        finally:
            with self._lock:
                if self._pending:
                    successor = self._pending[0]
                    successor.lead = True
                    successor.event.set()
                else:
                    self._running = False

    def _answer(self, lanes: list[_Slot]) -> None:
        try:
            actions = self._batch(stack_lanes([slot.observation for slot in lanes]))
            self.calls += 1
            self.largest = max(self.largest, len(lanes))
            for index, slot in enumerate(lanes):
                slot.action = pick(actions, index)
        except Exception as exc:
            for slot in lanes:
                slot.error = exc
        for slot in lanes:
            slot.event.set()
