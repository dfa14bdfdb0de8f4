"""Several vector endpoints driven as one larger vector env.

``rlmesh.make_vec`` starts one worker process per core, each serving a Gymnasium
``SyncVectorEnv`` of a share of the sub-envs; this class joins them. Every endpoint runs its
own autoreset, so the joined env behaves exactly as one vector env with that mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector.utils import batch_space

from rlmesh import protocol as P
from rlmesh.client.channel import Channel
from rlmesh.client.gather import gather
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.batching import (
    ARRAY_SPACES,
    check_reset_mask,
    expand_seeds,
    join_batches,
    place_info,
    split_batch,
)
from rlmesh.wire.schema import schema_to_space

__all__ = ["VectorFleet"]


class VectorFleet:
    """The sessions behind a :class:`~rlmesh.RemoteVectorEnv` over several vector endpoints.

    Args:
        channels: Connected channels to vector endpoints with equal single spaces and
            autoreset modes.
    """

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channels = list(channels)
        first = self.channels[0].contract
        self.single_observation_space = schema_to_space(first["single_observation_space"])
        self.single_action_space = schema_to_space(first["single_action_space"])
        mode = (first.get("metadata") or {}).get("autoreset_mode")
        self.autoreset_mode = AutoresetMode(mode) if mode else AutoresetMode.NEXT_STEP
        self.sizes = [int(c.contract["num_envs"]) for c in self.channels]
        for channel in self.channels[1:]:
            c = channel.contract
            if (schema_to_space(c["single_observation_space"]) != self.single_observation_space
                    or schema_to_space(c["single_action_space"]) != self.single_action_space
                    or (c.get("metadata") or {}).get("autoreset_mode") != mode):
                raise ValueError(f"{channel.address} serves other spaces or another autoreset "
                                 f"mode than {self.channels[0].address}")
        self.num_envs = sum(self.sizes)
        starts = np.cumsum([0, *self.sizes])
        self.bounds = [(int(starts[i]), int(starts[i + 1])) for i in range(len(self.sizes))]
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._last_obs: list[Any] = [None] * len(self.channels)
        self._indices = range(len(self.channels))
        self._slices = [slice(lo, hi) for lo, hi in self.bounds]
        self._array_obs = isinstance(self.single_observation_space, ARRAY_SPACES)
        self._array_actions = isinstance(self.single_action_space, ARRAY_SPACES)

    def reset(self, seed: int | Sequence[int | None] | None,
              options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        """Reset all sub-envs (or those in ``options["reset_mask"]``)."""
        n = self.num_envs
        seeds = expand_seeds(seed, n)
        options = dict(options) if options is not None else None
        mask = None
        if options is not None and "reset_mask" in options:
            mask = check_reset_mask(options.pop("reset_mask"), n)
        targets = []
        for w, (lo, hi) in enumerate(self.bounds):
            if mask is not None and not mask[lo:hi].any():
                continue
            sub_options = options
            if mask is not None:
                sub_options = {**(options or {}), "reset_mask": mask[lo:hi].copy()}
            self.channels[w].submit(P.OP_RESET, seeds[lo:hi], sub_options)
            targets.append(w)
        infos: dict[str, Any] = {}
        for w, reply in zip(targets, gather(self.channels, targets), strict=True):
            self._last_obs[w] = reply[2]
            place_info(infos, reply[3], self.bounds[w][0], n)
        return join_batches(self.single_observation_space, self._last_obs), infos

    def step_async(self, actions: Any) -> None:
        """Send every endpoint its share of the actions."""
        if self._array_actions:  # (the step path: slices, as split_batch would cut them)
            actions = np.asarray(actions)
            for channel, part in zip(self.channels, self._slices, strict=True):
                channel.submit(P.OP_STEP, actions[part])
            return
        for w, part in enumerate(split_batch(self.single_action_space, actions, self.bounds)):
            self.channels[w].submit(P.OP_STEP, part)

    def step_wait(self) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Collect and join the endpoints' step results."""
        replies = gather(self.channels, self._indices)
        infos: dict[str, Any] = {}
        last = self._last_obs
        for w, reply in enumerate(replies):
            last[w] = reply[2]
            if reply[6]:
                place_info(infos, reply[6], self.bounds[w][0], self.num_envs)
        concatenate = np.concatenate
        return (
            concatenate(last) if self._array_obs
            else join_batches(self.single_observation_space, last),
            concatenate([r[3] for r in replies]),
            concatenate([r[4] for r in replies]),
            concatenate([r[5] for r in replies]),
            infos,
        )

    def render(self) -> tuple[Any, ...]:
        """All sub-envs' frames, in order."""
        for channel in self.channels:
            channel.submit(P.OP_RENDER)
        frames: tuple[Any, ...] = ()
        for reply in gather(self.channels, range(len(self.channels))):
            frames += tuple(reply[2]) if reply[2] is not None else ()
        return frames

    def close(self) -> None:
        """Close every session."""
        for channel in self.channels:
            channel.close()
