"""``async_reset``, ``send`` and ``recv`` on :class:`~rlmesh.RemoteVectorEnv`.

The methods users call; the machinery is :class:`rlmesh.vector.async_step.AsyncStepper`,
made on first use from whatever endpoints the vector env drives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gymnasium import spaces as gs

from rlmesh.client.channel import Channel
from rlmesh.errors import AsyncStepError
from rlmesh.vector.async_step import AsyncStepper
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.env_fleet import Fleet
from rlmesh.vector.lane_replies import LaneUnit
from rlmesh.vector.live_fleet import LiveFleet
from rlmesh.vector.vector_fleet import VectorFleet

__all__ = ["AsyncStepping"]


class AsyncStepping:
    """EnvPool-style async stepping, mixed into :class:`~rlmesh.RemoteVectorEnv`.

    ``batch_size`` lanes make one :meth:`recv`; lanes are numbered as the vector env's
    sub-envs. Autoreset follows the vector env's mode: under ``NEXT_STEP`` (the default) the
    ``send`` after a lane's episode ended resets it (its action is ignored, the reply carries
    the new episode's first observation with reward 0); under ``SAME_STEP`` a finished lane is
    reset before its reply is returned (``infos["final_obs"]``, ``infos["final_info"]``);
    under ``DISABLED`` a finished lane must be reset with ``async_reset(env_ids=...)``.
    """

    num_envs: int
    single_observation_space: gs.Space[Any]
    single_action_space: gs.Space[Any]
    metadata: dict[str, Any]
    batch_size: int
    _channel: Channel | None
    _fleet: Fleet | VectorFleet | None
    _async: AsyncStepper | None
    _add_info: Callable[..., dict[str, Any]]

    def async_reset(self, *, seed: int | Sequence[int | None] | None = None,
                    options: dict[str, Any] | None = None, env_ids: Any = None) -> None:
        """Reset lanes and return at once; :meth:`recv` returns their first observations.

        Args:
            seed: An int (lane ``i`` gets ``seed + i``) or one seed per lane (of all lanes).
            options: Passed to each lane's reset.
            env_ids: The lanes to reset; default every lane.

        Raises:
            AsyncStepError: A lane named is still in flight.
            ValueError: Bad ``env_ids``, or only some lanes of a vector endpoint.
        """
        self._stepper().async_reset(seed, options, env_ids)

    def send(self, actions: Any, env_ids: Any = None) -> None:
        """Send actions to lanes and return at once (EnvPool's ``send``).

        Args:
            actions: A batch of one action per lane of ``env_ids``, in that order.
            env_ids: The lanes; default the lanes the last :meth:`recv` returned (every lane
                before any). A vector endpoint's lanes go together: name all or none.

        Raises:
            AsyncStepError: A lane is already in flight (or, autoreset disabled, finished).
            ValueError: Bad ``env_ids`` or the wrong number of actions.
        """
        self._stepper().send(actions, env_ids)

    def recv(self) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """The first ``batch_size`` lanes to answer, batched in the order they answered.

        Returns:
            ``(obs, rewards, terminated, truncated, infos)``; ``infos["env_id"]`` is the
            int32 array of the lanes returned. With vector endpoints a whole endpoint answers
            at once, so a batch holds at least ``batch_size`` lanes (exactly ``batch_size``
            when it is a sum of endpoint sizes, as with equal endpoints and a multiple).

        Raises:
            AsyncStepError: Nothing sent, or fewer than ``batch_size`` lanes in flight.
        """
        return self._stepper().recv()

    def _stepper(self) -> AsyncStepper:
        if isinstance(self._fleet, LiveFleet):
            raise AsyncStepError("async stepping (send/recv) does not reconnect lost lanes: "
                                 "use step() with reconnect=True, or async stepping without it")
        if self._async is None:
            self._async = AsyncStepper(
                self._lane_units(), (self.single_observation_space, self.single_action_space),
                AutoresetMode(self.metadata.get("autoreset_mode") or AutoresetMode.NEXT_STEP),
                self._fleet.finished if isinstance(self._fleet, Fleet) else None,
                self._add_info, self.batch_size)
        return self._async

    def _lane_units(self) -> list[LaneUnit]:
        """The endpoints behind the lanes, in lane order."""
        if self._channel is not None:
            return [LaneUnit(self._channel, 0, self.num_envs, True)]
        fleet = self._fleet
        if isinstance(fleet, VectorFleet):
            return [LaneUnit(c, lo, hi, True)
                    for c, (lo, hi) in zip(fleet.channels, fleet.bounds, strict=True)]
        assert fleet is not None
        return [LaneUnit(c, i, i + 1, False) for i, c in enumerate(fleet.channels)]

    def _check_async_idle(self, what: str) -> None:
        """Refuse a synchronous call while sent lanes are in flight."""
        if self._async is not None:
            self._async.check_idle(what)

    def _close_async(self) -> None:
        if self._async is not None:
            self._async.close()
            self._async = None
