"""Serve a small custom environment: a plain Python object, no Gymnasium subclass needed.

    uv run python examples/python/quickstart/serve.py --address 127.0.0.1:5556
"""

import argparse

import rlmesh
from rlmesh import spaces


class CounterEnv:
    """Observation is the step count; reward 1.0 per step; the episode ends after 3 steps."""

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(5)
        self.action_space = spaces.Discrete(2)
        self.count = 0

    def reset(self, seed=None, options=None):
        self.count = 0
        return self.count, {}

    def step(self, action):
        self.count += 1
        terminated = self.count >= 3
        return self.count, 1.0, terminated, False, {}

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:5556")
    args = parser.parse_args()

    server = rlmesh.EnvServer(CounterEnv(), args.address)
    server.serve()


if __name__ == "__main__":
    main()
