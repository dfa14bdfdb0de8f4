"""A CartPole that sleeps (or spends CPU) on every step, importable by ``rlmesh serve`` children.

Runs that must last long enough to kill a server mid-episode serve it:
``spawn_server(f"{SLOW_MODULE}:SlowCartPole", env=slow_env_environment(folder))``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.painted import PAINT_SOURCE

SLOW_MODULE = "rlmesh_test_slow_env"
"""The module the children import (written into a test's own folder)."""
SLOW_SOURCE = PAINT_SOURCE + '''
import time

import gymnasium as gym

from rlmesh.envs import CpuCost


class SlowCartPole(gym.Wrapper):
    """CartPole whose every step sleeps ``delay`` seconds; ``rgb_array`` frames are painted."""

    def __init__(self, delay=0.015, render_mode=None):
        super().__init__(gym.make("CartPole-v1"))
        self.delay = delay
        self._mode = render_mode

    @property
    def render_mode(self):
        return self._mode

    def render(self):
        return paint_cartpole(self.env.unwrapped.state) if self._mode == "rgb_array" else None

    def step(self, action):
        time.sleep(self.delay)
        return self.env.step(action)


def busy_cartpole(cost_us=200.0):
    """CartPole whose every step spends ``cost_us`` more microseconds of CPU."""
    return CpuCost(gym.make("CartPole-v1"), cost_us=cost_us)
'''


def slow_env_environment(folder: Path) -> dict[str, str]:
    """Write the slow env into ``folder``; the environment for children that import it."""
    (folder / f"{SLOW_MODULE}.py").write_text(SLOW_SOURCE)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}
