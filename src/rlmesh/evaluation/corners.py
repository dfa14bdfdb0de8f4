"""The four predict corners: batching and chunking, derived downward, and chunk replay.

A model implements any of ``predict`` (one observation, one action), ``predict_batch`` (a
batch, leaves ``[N, ...]``), ``predict_chunk`` (one observation, a chunk ``[H, ...]`` of
future actions) and ``predict_chunk_batch`` (``[N, H, ...]``). The others are derived, only
ever *downward*: a batch corner serves one observation as a batch of one (lane 0 back off),
a chunk corner serves one action by taking the chunk's first. With an execution horizon
above 1 the runner replays a chunk, one action per step, and predicts again when it runs
out; a new episode drops what is left.

These helpers work on values of any backend: numpy, torch and JAX arrays gain and lose their
leading axis by indexing; plain Python values (``rlmesh.Model``) as lists.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Replay", "call_chunk", "chunk_length", "chunk_step", "first_lane", "lane_count",
           "stack_one"]


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "__getitem__") and \
        not isinstance(value, (str, bytes))


def stack_one(observation: Any) -> Any:
    """``observation`` as a batch of one (a leading axis of 1 on every leaf)."""
    if isinstance(observation, Mapping):
        return {key: stack_one(value) for key, value in observation.items()}
    if isinstance(observation, tuple):
        return tuple(stack_one(value) for value in observation)
    if _is_array(observation):
        return observation[None]
    return [observation]


def first_lane(batch: Any) -> Any:
    """Lane 0 of a batch (the inverse of :func:`stack_one`)."""
    if isinstance(batch, Mapping):
        return {key: first_lane(value) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(first_lane(value) for value in batch)
    return batch[0]


def chunk_length(chunk: Any) -> int:
    """Actions in a chunk.

    A string, bytes or a non-sequence scalar is a chunk of one; a mapping's chunk axis is
    inside its leaves.
    """
    if isinstance(chunk, (str, bytes)):
        return 1
    if isinstance(chunk, Mapping):
        lengths = {chunk_length(value) for value in chunk.values()}
        if len(lengths) != 1:
            raise ValueError("the leaves of a chunked Dict action differ in chunk length")
        return lengths.pop()
    if _is_array(chunk):
        return int(chunk.shape[0]) if len(chunk.shape) else 1
    if isinstance(chunk, (list, tuple)):
        return len(chunk)
    return 1


def chunk_step(chunk: Any, index: int) -> Any:
    """Action ``index`` of a chunk."""
    if isinstance(chunk, (str, bytes)):
        return chunk
    if isinstance(chunk, Mapping):
        return {key: chunk_step(value, index) for key, value in chunk.items()}
    if (_is_array(chunk) and len(chunk.shape)) or isinstance(chunk, (list, tuple)):
        return chunk[index]
    return chunk


def _takes_horizon(function: Callable[..., Any]) -> bool:
    """Whether a chunk corner declares a second positional parameter (the horizon)."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.name != "context" and p.kind in (
        p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def call_chunk(function: Callable[..., Any], observation: Any, horizon: int,
               context: Any = None) -> Any:
    """Call a chunk corner, handing it ``horizon`` only if it declares one.

    ``context`` (a context, or a list of them for a batch corner) is passed as the keyword
    ``context`` when given; the caller checks that the corner declares it.
    """
    extra = {} if context is None else {"context": context}
    if _takes_horizon(function):
        return function(observation, horizon, **extra)
    return function(observation, **extra)


def lane_count(batch: Any) -> int:
    """Lanes in a batch: the first axis of its first leaf (a list's length)."""
    if isinstance(batch, Mapping):
        return lane_count(next(iter(batch.values()))) if batch else 0
    if isinstance(batch, tuple):
        return lane_count(batch[0]) if batch else 0
    if _is_array(batch):
        return int(batch.shape[0]) if len(batch.shape) else 1
    return len(batch) if isinstance(batch, list) else 1


class Replay:
    """One episode's chunk replay: one action per call, a new chunk when the queue is empty.

    Args:
        chunk: ``observation -> chunk`` (the model's chunk corner, horizon applied).
        horizon: At most this many actions of each chunk are executed.
    """

    def __init__(self, chunk: Callable[[Any], Any], horizon: int) -> None:
        self.chunk = chunk
        self.horizon = horizon
        self.queue: list[Any] = []

    def __call__(self, observation: Any) -> Any:
        """The next action (predicting a new chunk if none is queued)."""
        if not self.queue:
            chunk = self.chunk(observation)
            length = min(chunk_length(chunk), self.horizon)
            if length < 1:
                raise ValueError("the model returned an empty action chunk")
            self.queue = [chunk_step(chunk, i) for i in range(length)]
        return self.queue.pop(0)
