"""Env factories the authoring tests serve, in this process and in child processes.

``make()`` records every construction in the file ``RLMESH_TEST_BUILT`` names (when set),
so a test in another process can tell whether a constructor ran.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

import rlmesh


def _record(event: str) -> None:
    path = os.environ.get("RLMESH_TEST_BUILT")
    if path:
        with open(path, "a") as handle:
            handle.write(event + "\n")


class Cart(rlmesh.EnvFactory):
    """CartPole with a declared episode cap; counts its prepares, builds and closes."""

    tags = {"robot": "cart", "arms": 0}
    params = rlmesh.ParamSpec(
        rlmesh.Param("max_steps", int, choices=(5, 10, 500), description="episode cap",
                     group="episode"),
        rlmesh.Param("gravity", "float", description="m/s^2"),
    )

    def __init__(self) -> None:
        self.prepared = 0
        self.built = 0
        self.closed = 0

    def prepare(self) -> None:
        self.prepared += 1
        _record("prepare")

    def make(self, *, max_steps: int = 500, gravity: float = 9.8) -> Any:
        self.built += 1
        _record(f"make max_steps={max_steps} gravity={gravity}")
        env = gym.make("CartPole-v1", max_episode_steps=max_steps)
        env.unwrapped.gravity = gravity
        return env

    def close(self) -> None:
        self.closed += 1
        _record("close")

    @classmethod
    def enumerate_variants(cls) -> Any:
        for steps in (5, 10):
            yield rlmesh.Variant(f"cart/{steps}", {"max_steps": steps}, name=f"{steps} steps")


class Needy(rlmesh.EnvFactory):
    """A factory whose ``make()`` has a required keyword."""

    params = rlmesh.ParamSpec(rlmesh.Param("task", "enum", choices=("a", "b")))

    def make(self, *, task: str) -> Any:
        _record(f"make task={task}")
        return gym.make("CartPole-v1")


class Broken(rlmesh.EnvFactory):
    """A factory whose ``make()`` always fails (its describe carries an error badge)."""

    def make(self) -> Any:
        raise RuntimeError("no GPU here")


def cartpole(length: float = 0.5) -> Any:
    """A plain env factory callable."""
    env = gym.make("CartPole-v1")
    env.unwrapped.length = length
    return env


class Greedy(rlmesh.Model):
    """A model with a declared parameter: always pushes one way."""

    params = rlmesh.ParamSpec(rlmesh.Param("action", int, choices=(0, 1)))

    def __init__(self, action: int = 1) -> None:
        super().__init__()
        self.action = action

    def predict(self, observation: Any) -> Any:
        return self.action
