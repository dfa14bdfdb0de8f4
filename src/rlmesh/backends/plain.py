"""The plain backend: remote envs that return built-in Python values.

``rlmesh.RemoteEnv`` converts every numpy array to (nested) lists and every numpy scalar to
the matching Python ``int``, ``float``, ``bool`` or ``complex``; dicts, tuples and graph
instances keep their container type with converted contents. Actions may be given as plain
values too: they are converted to the action space's dtype before they are sent. Render
frames stay numpy arrays, as Gymnasium's tools (``RecordVideo``, ``check_env``) expect them.
Use :mod:`rlmesh.numpy` to get numpy values unchanged.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from gymnasium import spaces as gs

from rlmesh.client.channel import DEFAULT, Default
from rlmesh.client.env import NumpyRemoteEnv

__all__ = ["RemoteEnv", "from_plain", "to_plain"]


def to_plain(value: Any) -> Any:
    """Convert numpy values inside ``value`` to built-in Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, gs.GraphInstance):
        return gs.GraphInstance(*(to_plain(v) for v in value))
    if isinstance(value, tuple):
        return tuple(to_plain(v) for v in value)
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def from_plain(space: gs.Space[Any], value: Any) -> Any:
    """Convert a plain action to the representation ``space`` uses."""
    if isinstance(space, (gs.Box, gs.MultiDiscrete, gs.MultiBinary)):
        if isinstance(value, (list, tuple, int, float, bool)):
            return np.asarray(value, dtype=space.dtype)
        return value
    if isinstance(space, gs.Dict) and isinstance(value, dict):
        return {k: from_plain(space.spaces[k], v) if k in space.spaces else v
                for k, v in value.items()}
    if isinstance(space, gs.Tuple) and isinstance(value, (list, tuple)):
        if len(value) != len(space.spaces):
            return tuple(value)
        return tuple(from_plain(s, v) for s, v in zip(space.spaces, value, strict=True))
    if isinstance(space, gs.Sequence) and not space.stack and isinstance(value, (list, tuple)):
        return tuple(from_plain(space.feature_space, v) for v in value)
    if isinstance(space, gs.OneOf) and isinstance(value, (list, tuple)) and len(value) == 2:
        index = int(value[0])
        if 0 <= index < len(space.spaces):
            return (index, from_plain(space.spaces[index], value[1]))
    return value


class RemoteEnv(NumpyRemoteEnv):
    """A ``gymnasium.Env`` served by an rlmesh endpoint, with built-in Python values.

    Same arguments and behaviour as :class:`rlmesh.numpy.RemoteEnv`, except that values are
    converted as the :mod:`rlmesh.backends.plain` module describes.
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None,
        timeout: float | Default | None = DEFAULT,
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the remote env; returns plain ``(observation, info)``."""
        obs, info = super().reset(seed=seed, options=options, timeout=timeout)
        return to_plain(obs), to_plain(info)

    def step(self, action: Any, *, timeout: float | Default | None = DEFAULT
             ) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the remote env; accepts and returns plain values."""
        obs, reward, terminated, truncated, info = super().step(
            from_plain(self.action_space, action), timeout=timeout)
        return (to_plain(obs), to_plain(reward), bool(terminated), bool(truncated),
                to_plain(info))

    def _attribute_value(self, value: Any) -> Any:
        """Remote attributes and method results arrive as plain values too."""
        return to_plain(value)
