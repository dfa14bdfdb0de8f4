"""Episodes played with Gymnasium directly: what remote runs are compared against."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium import spaces as gs


def action_sampler(space: gs.Space[Any], seed: int) -> gs.Space[Any]:
    """A seeded copy of ``space`` to draw actions from (the env's own space is left alone)."""
    sampler = copy.deepcopy(space)
    sampler.seed(seed)
    return sampler


Outcome = tuple[int, float, bool, bool]
"""``(steps, reward, terminated, truncated)`` of one episode."""


def hand_loop(seeds: Sequence[int], choose: Callable[[Any, Any], Any], *,
              max_steps: int | None = None,
              make: Callable[[], gym.Env[Any, Any]] | None = None) -> list[Outcome]:
    """Episodes played with Gymnasium directly; ``choose(observation, sampler) -> action``.

    ``sampler`` is a copy of the action space seeded with the episode seed, as the random
    baseline does.
    """
    env = make() if make is not None else gym.make("CartPole-v1")
    outcomes = []
    try:
        for seed in seeds:
            observation, _ = env.reset(seed=seed)
            sampler = action_sampler(env.action_space, seed)
            steps, total = 0, 0.0
            while True:
                observation, reward, terminated, truncated, _ = env.step(
                    choose(observation, sampler))
                steps += 1
                total += float(reward)
                if terminated or truncated:
                    break
                if max_steps is not None and steps >= max_steps:
                    truncated = True
                    break
            outcomes.append((steps, total, bool(terminated), bool(truncated)))
    finally:
        env.close()
    return outcomes
