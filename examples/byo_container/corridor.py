"""A small env to serve from your own container: walk a corridor to its far end.

``make_env(length=...)`` is the factory the entrypoint serves; its keywords arrive as JSON in
``RLMESH_MAKE_KWARGS``, so one image serves corridors of any length.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class Corridor(gym.Env[np.ndarray, np.int64]):
    """Start at cell 0; action 1 steps right, 0 steps left; reward 1 at the last cell."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, length: int = 8) -> None:
        if length < 2:
            raise ValueError("a corridor has at least 2 cells")
        self.length = length
        self.observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._cell = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self._cell] = 1.0
        return obs

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._cell = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        move = 1 if int(action) == 1 else -1
        self._cell = min(max(self._cell + move, 0), self.length - 1)
        done = self._cell == self.length - 1
        return self._obs(), float(done), done, False, {"cell": self._cell}


def make_env(length: int = 8) -> Corridor:
    """The factory the container serves (one env per client session)."""
    return Corridor(length)
