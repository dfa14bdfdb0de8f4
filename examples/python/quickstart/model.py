"""Play episodes on an endpoint with a tiny model (always action 0), then print the returns.

    uv run python examples/python/quickstart/model.py --address 127.0.0.1:5555 --episodes 2
"""

import argparse

from rlmesh.numpy import Model


def always_zero(observation: object) -> int:
    """The whole policy: push left, whatever the observation."""
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:5555")
    parser.add_argument("--episodes", type=int, default=1)
    args = parser.parse_args()

    result = Model(always_zero).run(args.address, max_episodes=args.episodes)
    for episode in result.episodes:
        print(f"episode {episode.index}: {episode.steps} steps, return {episode.reward:.3f}")


if __name__ == "__main__":
    main()
