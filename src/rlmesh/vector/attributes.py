"""``get_attr``, ``set_attr`` and ``call`` of a remote vector env, as ``SyncVectorEnv`` has them.

Requests to several endpoints are pipelined (sent to all, then collected). The name rules and
the capability check are the single env's (:mod:`rlmesh.client.attributes`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from rlmesh import protocol as P
from rlmesh.client.attributes import check_request
from rlmesh.client.channel import Channel
from rlmesh.client.gather import gather
from rlmesh.errors import RLMeshError
from rlmesh.vector.vector_fleet import VectorFleet

if TYPE_CHECKING:
    from rlmesh.vector.env_fleet import Fleet

__all__ = ["VectorAttributes"]


class Part(NamedTuple):
    """The endpoint behind sub-envs ``lo`` to ``hi`` of a vector env."""

    channel: Channel
    lo: int
    hi: int
    batched: bool
    """A vector endpoint (its replies hold one item per sub-env) or a single env."""


class VectorAttributes:
    """``get_attr``, ``set_attr`` and ``call`` of a remote vector env (a mixin).

    Each has the semantics of ``gymnasium.vector.SyncVectorEnv``'s, applied to the served
    sub-envs; requests to several endpoints are pipelined (sent to all, then collected).
    """

    num_envs: int
    _channel: Channel | None
    _fleet: Fleet | VectorFleet | None
    _check_idle: Callable[[], None]

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` of every sub-env (or read it, if it is not callable).

        Returns:
            One result per sub-env, in order.

        Raises:
            RemoteAttributeError: A sub-env has no attribute ``name``.
            NotAllowedError: ``name`` is private or ``reset``, ``step``, ``close``, or the
                server does not offer remote attribute access.
            RuntimeError: Between ``step_async`` and ``step_wait``.
        """
        return self._fan_out(P.OP_CALL, name, lambda part: (list(args), kwargs))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Every sub-env's attribute ``name`` (``call(name)``, as in ``SyncVectorEnv``)."""
        return self._fan_out(P.OP_GET_ATTR, name, lambda part: ())

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set attribute ``name`` of every sub-env.

        Args:
            name: The attribute's name.
            values: One value per sub-env (a list or tuple of ``num_envs`` values), or any
                other value, given to every sub-env.

        Raises:
            ValueError: ``values`` is a list or tuple of the wrong length.
            NotAllowedError: The name is private, ``reset``, ``step``, ``close``, defines the
                contract, or the server does not offer remote attribute access.
            RuntimeError: Between ``step_async`` and ``step_wait``.
        """
        self._check_idle()
        if not isinstance(values, (list, tuple)):
            values = [values for _ in range(self.num_envs)]
        if len(values) != self.num_envs:
            raise ValueError(
                "Values must be a list or tuple with length equal to the number of "
                f"environments. Got `{len(values)}` values for {self.num_envs} environments.")
        items = list(values)
        self._fan_out(P.OP_SET_ATTR, name, lambda part: (
            items[part.lo:part.hi] if part.batched else items[part.lo],))

    def _parts(self) -> list[Part]:
        fleet = self._fleet
        if fleet is None:
            channel = self._channel
            if channel is None:
                raise RuntimeError("this vector env has no endpoint")
            return [Part(channel, 0, self.num_envs, True)]
        if isinstance(fleet, VectorFleet):
            return [Part(c, lo, hi, True) for c, (lo, hi) in zip(fleet.channels, fleet.bounds,
                                                                 strict=True)]
        return [Part(c, i, i + 1, False) for i, c in enumerate(fleet.channels)]

    def _fan_out(self, op: int, name: str, arguments: Callable[[Part], tuple[Any, ...]]
                 ) -> tuple[Any, ...]:
        """Send ``op`` for ``name`` to every endpoint, collect, join in sub-env order."""
        self._check_idle()
        parts = self._parts()
        for part in parts:
            check_request(part.channel, op, name, vector=True)
        channels = [part.channel for part in parts]
        sent: list[int] = []
        try:
            for i, part in enumerate(parts):
                # A single-env endpoint reads an attribute as SyncVectorEnv does: call(name).
                part_op = P.OP_CALL if op == P.OP_GET_ATTR and not part.batched else op
                extra = ([], {}) if part_op != op else arguments(part)
                part.channel.submit(part_op, name, *extra)
                sent.append(i)
        except BaseException:
            with contextlib.suppress(RLMeshError):  # leave no reply unread
                gather(channels, sent)
            raise
        replies = gather(channels, sent)
        results: tuple[Any, ...] = ()
        if op != P.OP_SET_ATTR:
            for part, reply in zip(parts, replies, strict=True):
                results += tuple(reply[2]) if part.batched else (reply[2],)
        return results
