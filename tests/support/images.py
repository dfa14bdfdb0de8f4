"""An image env whose every frame differs: what the fast paths carry in a reply's body."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class NoisyImages(gym.Env[np.ndarray[Any, Any], np.int64]):
    """Observes a fresh uint8 image of ``shape`` each step, drawn from the env's seeded RNG.

    The reward is a float of the same draw; an episode ends after ``length`` steps, one in
    three by termination (the rest truncated).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, shape: tuple[int, ...] = (96, 96, 3), length: int = 40) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.length = length
        self._rng = np.random.default_rng(0)
        self._t = 0

    def _frame(self, action: int) -> np.ndarray[Any, Any]:
        frame = self._rng.integers(0, 256, self.observation_space.shape, np.uint8)
        frame.flat[0] = action
        return frame

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._rng = self.np_random  # (a reset without a seed goes on from the last draw)
        self._t = 0
        return self._frame(0), {}

    def step(self, action: Any) -> tuple[np.ndarray[Any, Any], float, bool, bool,
                                         dict[str, Any]]:
        self._t += 1
        done = self._t >= self.length
        return (self._frame(int(action)), float(self._rng.normal()),
                done and self._t % 3 == 0, done and self._t % 3 != 0, {})
