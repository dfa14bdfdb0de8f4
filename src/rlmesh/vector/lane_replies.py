"""The replies of async stepping: one collector thread per endpoint, and their batches.

:mod:`rlmesh.vector.async_step` sends a request to an endpoint and hands the wait for its
reply to that endpoint's :class:`Collector`, a thread that only reads. Finished replies
land in one shared queue in the order they arrive, so the first endpoints to answer are the
first returned. :func:`assemble` turns the replies of one ``recv()`` into batches.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces as gs
from gymnasium.vector.utils import concatenate, create_empty_array

from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.vector.batching import join_batches, place_info

__all__ = ["Arrival", "Collector", "LaneUnit", "Reply", "assemble", "read_single",
           "read_vector", "stack_lanes"]


@dataclass(frozen=True)
class LaneUnit:
    """One endpoint as async stepping sees it: a channel and the lanes ``[lo, hi)`` it serves.

    Attributes:
        channel: The endpoint's connected channel.
        lo: Its first lane in the whole vector env.
        hi: One past its last lane.
        vector: Whether it is a vector endpoint (its lanes step together and autoreset on
            the server) rather than a single-env endpoint.
    """

    channel: Channel
    lo: int
    hi: int
    vector: bool

    @property
    def size(self) -> int:
        """How many lanes the endpoint serves."""
        return self.hi - self.lo


@dataclass
class Reply:
    """What one endpoint answered: a single env's values, or a vector endpoint's batches.

    ``final`` is the ``final_obs``/``final_info`` pair of a single env that finished and
    was reset at once (same-step autoreset), else ``None``.
    """

    obs: Any
    rewards: Any
    terminated: Any
    truncated: Any
    info: dict[str, Any]
    final: dict[str, Any] | None = None


Arrival = tuple[int, Reply | None, BaseException | None]
"""``(unit index, reply, error)``: one finished wait, as the shared queue holds it."""


def read_single(channel: Channel, same_step: bool) -> Reply:
    """Collect a single-env endpoint's reply (a step, or a reset standing in for one).

    Args:
        channel: The endpoint's channel, with one request pending.
        same_step: Whether a finished episode is reset at once (same-step autoreset).
    """
    reply = channel.collect()
    if len(reply) == 4:  # a reset: next-step autoreset or async_reset
        return Reply(reply[2], 0.0, False, False, reply[3])
    obs, reward, terminated, truncated, info = reply[2:7]
    if not (same_step and (terminated or truncated)):
        return Reply(obs, reward, terminated, truncated, info)
    final = {"final_obs": obs, "final_info": info}
    channel.submit(P.OP_RESET, None, None)
    reset = channel.collect()
    return Reply(reset[2], reward, terminated, truncated, reset[3], final)


def read_vector(channel: Channel, size: int) -> Reply:
    """Collect a vector endpoint's reply to a step or a reset of its ``size`` lanes."""
    reply = channel.collect()
    if len(reply) == 4:
        flags = np.zeros(size, dtype=np.bool_)
        return Reply(reply[2], np.zeros(size, dtype=np.float64), flags, flags.copy(), reply[3])
    return Reply(reply[2], np.asarray(reply[3]), np.asarray(reply[4]), np.asarray(reply[5]),
                 reply[6])


class Collector:
    """A daemon thread that runs one endpoint's waits, one at a time, into a shared queue.

    Args:
        index: The endpoint's unit index (tags every arrival).
        outbox: The queue every collector of one vector env delivers to.
        name: The thread's name.
    """

    def __init__(self, index: int, outbox: queue.SimpleQueue[Arrival], name: str) -> None:
        self.index = index
        self._outbox = outbox
        self._inbox: queue.SimpleQueue[Callable[[], Reply] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def post(self, wait: Callable[[], Reply]) -> None:
        """Run ``wait`` (which blocks for a reply) on the thread; its result is delivered."""
        self._inbox.put(wait)

    def stop(self, timeout: float | None = None) -> None:
        """End the thread once its current wait is over (joined up to ``timeout``)."""
        self._inbox.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            wait = self._inbox.get()
            if wait is None:
                return
            try:
                self._outbox.put((self.index, wait(), None))
            except BaseException as exc:  # delivered to recv(), raised there
                self._outbox.put((self.index, None, exc))


def assemble(units: Sequence[LaneUnit], got: Sequence[tuple[int, Reply]],
             obs_space: gs.Space[Any], add_info: Callable[..., dict[str, Any]]
             ) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    """Batch the replies of one ``recv()``, lanes in the order their endpoints answered.

    Args:
        units: Every endpoint of the vector env.
        got: ``(unit index, reply)`` pairs in arrival order.
        obs_space: The single observation space.
        add_info: The vector env's ``_add_info`` (Gymnasium's ``_key`` masks).

    Returns:
        ``(obs, rewards, terminated, truncated, infos)`` with ``infos["env_id"]`` the lanes.
    """
    lanes = np.concatenate([np.arange(units[u].lo, units[u].hi) for u, _ in got])
    replies = [reply for _, reply in got]
    infos: dict[str, Any] = {}
    if units[got[0][0]].vector:
        obs = join_batches(obs_space, [r.obs for r in replies])
        rewards = np.concatenate([r.rewards for r in replies])
        terminated = np.concatenate([r.terminated for r in replies])
        truncated = np.concatenate([r.truncated for r in replies])
        offset = 0
        for u, reply in got:
            place_info(infos, reply.info, offset, len(lanes))
            offset += units[u].size
    else:
        obs = stack_lanes(obs_space, [r.obs for r in replies])
        rewards = np.array([r.rewards for r in replies], dtype=np.float64)
        terminated = np.array([r.terminated for r in replies], dtype=np.bool_)
        truncated = np.array([r.truncated for r in replies], dtype=np.bool_)
        for position, reply in enumerate(replies):
            if reply.final is not None:
                infos = add_info(infos, reply.final, position)
            infos = add_info(infos, reply.info, position)
    infos["env_id"] = lanes.astype(np.int32)
    return obs, rewards, terminated, truncated, infos


def stack_lanes(space: gs.Space[Any], items: Sequence[Any]) -> Any:
    """Per-lane values of the single space ``space`` as one batch."""
    out: Any = create_empty_array(space, len(items))
    return concatenate(space, items, out)
