"""Small built-in envs for demos, tests and examples.

* :class:`CounterEnv`: the quickstart's custom env, a plain object (not a ``gymnasium.Env``).
* :class:`DictObsEnv`: Dict observations mixing Box, Discrete and MultiBinary.
* :class:`TupleObsEnv`: Tuple observations and a Box action.
* :class:`ImageEnv`: uint8 image observations of a chosen size, for benchmarks.
* :class:`SpaceEchoEnv`: observes whatever space it is given; for round-trip tests.
* :class:`CpuCost`: a wrapper that makes every step of an env cost a fixed amount of CPU, for
  benchmarks of envs heavier than CartPole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces  # plain Gymnasium spaces: a RemoteEnv rebuilds the same classes

__all__ = ["CounterEnv", "CpuCost", "DictObsEnv", "ImageEnv", "SpaceEchoEnv", "TupleObsEnv",
           "spin_cpu"]


class CounterEnv:
    """Counts steps: observation is the step count, reward 1.0, terminates after 3 steps.

    A plain Python object with the env surface rlmesh serves (spaces, ``reset``, ``step``,
    ``close``); it does not derive from ``gymnasium.Env``.
    """

    metadata: dict[str, Any] = {"render_modes": []}
    render_mode = None

    def __init__(self, episode_length: int = 3) -> None:
        self.observation_space = spaces.Discrete(5)
        self.action_space = spaces.Discrete(2)
        self.episode_length = episode_length
        self.count = 0

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        """Start counting from zero."""
        self.count = 0
        return self.count, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Count one step; the action is ignored."""
        self.count += 1
        terminated = self.count >= self.episode_length
        return min(self.count, 4), 1.0, terminated, False, {"count": self.count}

    def close(self) -> None:
        """Nothing to release."""


class DictObsEnv(gym.Env[dict[str, Any], np.int64]):
    """A random walk observed as a Dict of a Box position, a Discrete phase and flags."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = spaces.Dict({
            "position": spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float64),
            "phase": spaces.Discrete(4),
            "flags": spaces.MultiBinary(3),
        })
        self.action_space = spaces.Discrete(4)
        self._pos = np.zeros(2)
        self._t = 0

    def _obs(self) -> dict[str, Any]:
        return {
            "position": self._pos.copy(),
            "phase": np.int64(self._t % 4),
            "flags": (self.np_random.random(3) < 0.5).astype(np.int8),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start at a random position."""
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1.0, 1.0, size=2)
        self._t = 0
        return self._obs(), {"start": self._pos.copy()}

    def step(self, action: np.int64) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Move one unit in one of four directions, plus noise."""
        moves = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        self._pos = np.clip(self._pos + moves[int(action)] + self.np_random.normal(0, 0.1, 2),
                            -10.0, 10.0)
        self._t += 1
        distance = float(np.linalg.norm(self._pos))
        terminated = distance > 5.0
        truncated = self._t >= 50
        info = {"distance": np.float32(distance), "t": self._t, "nested": {"pos": self._pos}}
        return self._obs(), -distance, terminated, truncated, info

    def render(self) -> np.ndarray[Any, Any] | None:
        """A small rgb_array frame with a dot at the position."""
        if self.render_mode != "rgb_array":
            return None
        frame = np.zeros((21, 21, 3), dtype=np.uint8)
        x, y = (np.clip(self._pos, -10, 10) + 10).astype(int)
        frame[y, x] = 255
        return frame


class TupleObsEnv(gym.Env[tuple[Any, ...], np.ndarray[Any, Any]]):
    """Tuple observations (Box, Discrete) with a continuous Box action."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Tuple((
            spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
            spaces.Discrete(3, start=-1),
        ))
        self.action_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        self._state = np.zeros(3, dtype=np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Random start in the unit cube."""
        super().reset(seed=seed)
        self._state = self.np_random.uniform(-0.5, 0.5, 3).astype(np.float32)
        self._t = 0
        return (self._state.copy(), np.int64(np.sign(self._state[0]))), {}

    def step(self, action: np.ndarray[Any, Any]
             ) -> tuple[tuple[Any, ...], float, bool, bool, dict[str, Any]]:
        """Add a tenth of the action to the state."""
        self._state = np.clip(self._state + 0.1 * np.asarray(action, np.float32), -1, 1)
        self._t += 1
        obs = (self._state.copy(), np.int64(np.sign(self._state[0])))
        return obs, float(-np.abs(self._state).sum()), False, self._t >= 20, {}


class ImageEnv(gym.Env[np.ndarray[Any, Any], np.int64]):
    """Observes a fresh uint8 image of ``shape`` every step (default 84x84x3)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, height: int = 84, width: int = 84, channels: int = 3) -> None:
        shape = (height, width, channels)
        self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(4)
        self._frames = [np.full(shape, i, dtype=np.uint8) for i in range(4)]
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
        """Return the first frame."""
        super().reset(seed=seed)
        self._t = 0
        return self._frames[0], {}

    def step(self, action: np.int64
             ) -> tuple[np.ndarray[Any, Any], float, bool, bool, dict[str, Any]]:
        """Return one of four precomputed frames."""
        self._t += 1
        return self._frames[int(action)], 0.0, False, self._t >= 1000, {}


class SpaceEchoEnv(gym.Env[Any, Any]):
    """Observes samples of ``observation_space``; the info echoes the last action."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, observation_space: spaces.Space[Any],
                 action_space: spaces.Space[Any] | None = None) -> None:
        self.observation_space = observation_space
        self.action_space = action_space if action_space is not None else observation_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        """Seed the observation space and return a sample."""
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Return a new sample; the action comes back as ``info["action"]``."""
        return self.observation_space.sample(), 0.0, False, False, {"action": action}


def spin_cpu(seconds: float, clock: Callable[[], float] = time.thread_time) -> int:
    """Busy-wait until ``clock`` has advanced by at least ``seconds``; return the reads made.

    With the default clock (this thread's CPU time) the cost is CPU actually spent, so time
    the thread spends preempted does not count towards it.

    Args:
        seconds: CPU seconds to spend; 0 returns after one read.
        clock: A monotonic clock in seconds.

    Returns:
        How many times the loop read the clock after the start (at least 1).

    Raises:
        ValueError: If ``seconds`` is negative or not finite.
    """
    if not 0.0 <= seconds < float("inf"):
        raise ValueError(f"seconds must be finite and >= 0, got {seconds!r}")
    end = clock() + seconds
    reads = 1
    while clock() < end:
        reads += 1
    return reads


class CpuCost(gym.Wrapper[Any, Any, Any, Any]):
    """Makes every ``step`` of the wrapped env spend ``cost_us`` more microseconds of CPU.

    The env's own results are returned unchanged, so a wrapped CartPole follows the same
    trajectories as a plain one; only its step is slower, by CPU work rather than by sleeping
    (a sleeping env would leave its core free, a busy one does not).
    """

    def __init__(self, env: gym.Env[Any, Any], cost_us: float = 200.0) -> None:
        """Wrap ``env``.

        Args:
            env: The env to slow down.
            cost_us: CPU microseconds added to every step.

        Raises:
            ValueError: If ``cost_us`` is negative or not finite.
        """
        if not 0.0 <= cost_us < float("inf"):
            raise ValueError(f"cost_us must be finite and >= 0, got {cost_us!r}")
        super().__init__(env)
        self.cost_us = float(cost_us)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the env, then spend ``cost_us`` of CPU."""
        result = self.env.step(action)
        spin_cpu(self.cost_us * 1e-6)
        return result
