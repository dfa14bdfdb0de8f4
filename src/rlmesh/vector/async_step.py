"""Async stepping (EnvPool's pattern): ``send`` to some lanes, ``recv`` the first that answer.

A training loop that waits for every sub-env each step runs at the pace of the slowest one
and pays a whole round trip per batch. With ``batch_size < num_envs`` it can instead act on
the first ``batch_size`` lanes that answer while the others are still on the wire::

    env.async_reset()
    while training:
        obs, rewards, terminated, truncated, infos = env.recv()
        env.send(policy(obs), infos["env_id"])

Readiness is decided per endpoint: a single-env endpoint answers for its one lane, a vector
endpoint for all of its lanes at once. Each endpoint's wait runs on a small collector thread
(:mod:`rlmesh.vector.lane_replies`), so any transport (TCP, unix, TLS, shared memory) works.
"""

from __future__ import annotations

import collections
import queue
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces as gs
from gymnasium.vector.utils import batch_space, iterate

from rlmesh import protocol as P
from rlmesh.errors import AsyncStepError
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.batching import expand_seeds
from rlmesh.vector.lane_replies import (
    Arrival,
    Collector,
    LaneUnit,
    Reply,
    assemble,
    read_single,
    read_vector,
    stack_lanes,
)

__all__ = ["AsyncStepper", "check_batch_size"]


def check_batch_size(batch_size: int | None, num_envs: int) -> int:
    """``batch_size`` checked against ``num_envs`` (``None``: all of them, synchronous).

    Raises:
        ValueError: Not an int in ``1..num_envs``.
    """
    if batch_size is None:
        return num_envs
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an int, got {batch_size!r}")
    if not 1 <= int(batch_size) <= num_envs:
        raise ValueError(f"batch_size must be between 1 and num_envs={num_envs}, "
                         f"got {batch_size}")
    return int(batch_size)


class AsyncStepper:
    """The send/recv state of one vector env: which endpoints are busy, what has arrived.

    Args:
        units: The endpoints, their lanes in order and covering ``0..num_envs``.
        spaces: The single observation and action spaces.
        autoreset_mode: How finished single-env lanes are reset (vector endpoints reset on
            the server).
        finished: The single-env lanes' "episode over" flags, shared with synchronous
            stepping (updated in place); ``None`` for vector endpoints.
        add_info: The vector env's ``_add_info``.
        batch_size: Lanes each :meth:`recv` waits for.
    """

    def __init__(self, units: Sequence[LaneUnit], spaces: tuple[gs.Space[Any], gs.Space[Any]],
                 autoreset_mode: AutoresetMode, finished: np.ndarray[Any, Any] | None,
                 add_info: Callable[..., dict[str, Any]], batch_size: int) -> None:
        self.units = list(units)
        self.num_envs = self.units[-1].hi
        self.batch_size = batch_size
        self._obs_space, self._act_space = spaces
        self._mode = autoreset_mode
        self._finished = finished
        self._add_info = add_info
        self._unit_of = np.concatenate([np.full(u.size, i) for i, u in enumerate(self.units)])
        self._busy = np.zeros(len(self.units), dtype=np.bool_)
        self._outbox: queue.SimpleQueue[Arrival] = queue.SimpleQueue()
        self._held: collections.deque[Arrival] = collections.deque()
        self._collectors: list[Collector] | None = None
        self._last: np.ndarray[Any, Any] | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Lanes sent and not yet returned by :meth:`recv`."""
        return int(sum(u.size for u, busy in zip(self.units, self._busy, strict=True) if busy))

    def check_idle(self, what: str) -> None:
        """Refuse ``what`` while lanes are in flight.

        Raises:
            AsyncStepError: Some lanes were sent and not received yet.
        """
        if self._busy.any():
            raise AsyncStepError(f"{what} while {self.in_flight} lanes sent with send() or "
                                 "async_reset() are in flight: recv() them first")

    def _lanes(self, env_ids: Any, default: np.ndarray[Any, Any] | None) -> np.ndarray[Any, Any]:
        """``env_ids`` as distinct lane numbers (``None``: ``default``, else every lane).

        Raises:
            ValueError: Not integers, out of range, repeated, or empty.
        """
        if env_ids is None:
            return np.arange(self.num_envs) if default is None else default
        ids = np.asarray(env_ids).reshape(-1)
        if ids.size == 0 or ids.dtype.kind not in "iu":
            raise ValueError(f"env_ids must be a non-empty sequence of ints, got {env_ids!r}")
        if ids.min() < 0 or ids.max() >= self.num_envs:
            raise ValueError(f"env_ids must lie in 0..{self.num_envs - 1}, got "
                             f"{ids.tolist()}")
        if len(np.unique(ids)) != ids.size:
            raise ValueError(f"env_ids repeats a lane: {ids.tolist()}")
        return ids.astype(np.int64)

    def _targets(self, ids: np.ndarray[Any, Any], what: str) -> list[int]:
        """The endpoints ``ids`` address, each idle and (vector endpoints) named whole."""
        targets = list(dict.fromkeys(int(self._unit_of[i]) for i in ids))
        chosen = set(ids.tolist())
        for u in targets:
            unit = self.units[u]
            if self._busy[u]:
                lanes = [i for i in range(unit.lo, unit.hi) if i in chosen]
                raise AsyncStepError(f"{what} to lanes {lanes}, which are already in flight: "
                                     "recv() them first")
            if unit.vector and not chosen.issuperset(range(unit.lo, unit.hi)):
                raise ValueError(f"lanes {unit.lo}..{unit.hi - 1} are one vector endpoint and "
                                 "step together: name all of them in env_ids, or none")
        return targets

    # -- send, reset, recv -------------------------------------------------------------------

    def send(self, actions: Any, env_ids: Any = None) -> None:
        """Send ``actions[k]`` to lane ``env_ids[k]`` and return at once.

        Args:
            actions: A batch of ``len(env_ids)`` actions, in the order of ``env_ids``.
            env_ids: The lanes (``None``: those the last :meth:`recv` returned, or every lane
                before any).

        Raises:
            AsyncStepError: A lane is already in flight, or (autoreset disabled) has finished.
            ValueError: Bad ``env_ids``, a vector endpoint named in part, or the wrong number
                of actions.
        """
        ids = self._lanes(env_ids, self._last)
        per_lane = list(iterate(batch_space(self._act_space, len(ids)), actions))
        if len(per_lane) != len(ids):
            raise ValueError(f"send() got {len(per_lane)} actions for {len(ids)} lanes")
        targets = self._targets(ids, "send()")
        finished = self._finished
        if self._mode == AutoresetMode.DISABLED and finished is not None and finished[ids].any():
            raise AsyncStepError(
                f"autoreset is disabled and lanes {ids[finished[ids]].tolist()} have finished: "
                "async_reset(env_ids=...) them first")
        action_of = dict(zip(ids.tolist(), per_lane, strict=True))
        for u in targets:
            unit = self.units[u]
            if unit.vector:
                batch = [action_of[i] for i in range(unit.lo, unit.hi)]
                self._start(u, P.OP_STEP, stack_lanes(self._act_space, batch))
            elif (self._mode == AutoresetMode.NEXT_STEP and finished is not None
                  and finished[unit.lo]):
                self._start(u, P.OP_RESET, None, None)
            else:
                self._start(u, P.OP_STEP, action_of[unit.lo])

    def async_reset(self, seed: int | Sequence[int | None] | None = None,
                    options: dict[str, Any] | None = None, env_ids: Any = None) -> None:
        """Reset lanes without waiting; :meth:`recv` returns their first observations.

        Args:
            seed: As ``reset``: an int (lane ``i`` gets ``seed + i``) or one per lane.
            options: Passed to each reset (``reset_mask`` is refused: use ``env_ids``).
            env_ids: The lanes to reset (``None``: every lane).

        Raises:
            AsyncStepError: A lane is in flight.
            ValueError: Bad ``env_ids`` or ``options``.
        """
        if options is not None and "reset_mask" in options:
            raise ValueError("async_reset() takes env_ids, not options['reset_mask']")
        ids = self._lanes(env_ids, None)
        targets = self._targets(ids, "async_reset()")
        seeds = expand_seeds(seed, self.num_envs)
        for u in targets:
            unit = self.units[u]
            part = seeds[unit.lo:unit.hi] if unit.vector else seeds[unit.lo]
            self._start(u, P.OP_RESET, part, options)
        if self._finished is not None:
            self._finished[ids] = False
        self._last = None

    def recv(self) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Wait for the first ``batch_size`` lanes to answer; return them batched.

        Returns:
            ``(obs, rewards, terminated, truncated, infos)`` of the lanes in the order their
            endpoints answered; ``infos["env_id"]`` (int32) names them. A vector endpoint's
            lanes come together, so with vector endpoints a batch holds at least
            ``batch_size`` lanes (exactly, when it is a sum of whole endpoints).

        Raises:
            AsyncStepError: Nothing was sent, or fewer than ``batch_size`` lanes are in flight.
            RLMeshError: An endpoint's error (the other replies wait for the next recv).
        """
        pending = self.in_flight
        if pending == 0:
            raise AsyncStepError("recv() with nothing sent: call async_reset() or send() first")
        if pending < self.batch_size:
            raise AsyncStepError(f"recv() waits for batch_size={self.batch_size} lanes but only "
                                 f"{pending} are in flight: send() to more lanes first")
        got: list[tuple[int, Reply]] = []
        count = 0
        while count < self.batch_size:
            u, reply, error = self._held.popleft() if self._held else self._outbox.get()
            if error is not None or reply is None:
                self._busy[u] = False
                self._held.extendleft((v, r, None) for v, r in reversed(got))
                raise error or AsyncStepError("an endpoint delivered no reply")
            got.append((u, reply))
            count += self.units[u].size
        for u, _ in got:
            self._busy[u] = False
        result = assemble(self.units, got, self._obs_space, self._add_info)
        self._last = result[4]["env_id"].astype(np.int64)
        if self._finished is not None:
            self._finished[self._last] = np.logical_or(result[2], result[3])
        return result

    def _start(self, u: int, op: int, *args: Any) -> None:
        """Submit one request to endpoint ``u`` and hand the wait to its collector."""
        unit = self.units[u]
        unit.channel.submit(op, *args)
        self._busy[u] = True
        same_step = self._mode == AutoresetMode.SAME_STEP and op == P.OP_STEP
        wait: Callable[[], Reply]
        if unit.vector:
            size = unit.size
            wait = lambda: read_vector(unit.channel, size)  # noqa: E731
        else:
            wait = lambda: read_single(unit.channel, same_step)  # noqa: E731
        self._collector(u).post(wait)

    def _collector(self, u: int) -> Collector:
        if self._collectors is None:
            self._collectors = [Collector(i, self._outbox, f"rlmesh-recv-{i}")
                                for i in range(len(self.units))]
        return self._collectors[u]

    def close(self) -> None:
        """Drop the connections still waiting for a reply, and end the collector threads."""
        for unit, busy in zip(self.units, self._busy, strict=True):
            if busy and not unit.channel.closed:
                unit.channel.abandon()  # (its collector's wait fails at once)
        self._busy[:] = False
        for collector in self._collectors or ():
            collector.stop(timeout=5.0)
        self._collectors = None

