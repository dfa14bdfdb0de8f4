"""Fixtures of the transport tests: children that serve envs of odd replies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ODD_SOURCE = '''
import gymnasium as gym


class InfoEveryThird(gym.Wrapper):
    """CartPole whose info is not empty on every third step (those replies are frames)."""

    def __init__(self):
        super().__init__(gym.make("CartPole-v1"))
        self.steps = 0

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, (
            {"every_third": self.steps} if self.steps % 3 == 0 else {})


class RaisesOnTenth(gym.Wrapper):
    """CartPole whose tenth step raises (the error's reply is a frame)."""

    def __init__(self):
        super().__init__(gym.make("CartPole-v1"))
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps == 10:
            raise RuntimeError("the tenth step fails")
        return self.env.step(action)
'''


@pytest.fixture
def odd_envs(tmp_path: Path) -> dict[str, str]:
    """The environment of children that can import ``rlmesh_test_odd_envs``."""
    (tmp_path / "rlmesh_test_odd_envs.py").write_text(ODD_SOURCE)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}
