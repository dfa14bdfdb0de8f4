"""A model that reads its predict context: which episode, which seed, which step.

    uv run python examples/python/quickstart/seeded_model.py

A predict function that takes a parameter named ``context`` is handed one on every call; a
local two-step env shows what it holds.
"""

from typing import Any

import gymnasium as gym
import numpy as np

from rlmesh.numpy import Model


class TwoSteps(gym.Env[np.ndarray, int]):
    """Ends after two steps; observes the step count."""

    observation_space = gym.spaces.Box(0, 2, shape=(1,), dtype=np.int64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        self.count = 0
        print(f"reset with seed {seed}")
        return np.array([0]), {}

    def step(self, action: int) -> Any:
        self.count += 1
        return np.array([self.count]), 1.0, self.count >= 2, False, {}


def predict(observation: np.ndarray, context: dict[str, Any]) -> int:
    """Say what the context holds, then act."""
    print(f"  step {context['step']} of the episode seeded {context['episode_seed']}: "
          f"observation {observation.tolist()}")
    return 0


def main() -> None:
    result = Model(predict).run(TwoSteps(), seeds=[7, 8])
    print("episode seeds:", [episode.seed for episode in result.episodes])


if __name__ == "__main__":
    main()
