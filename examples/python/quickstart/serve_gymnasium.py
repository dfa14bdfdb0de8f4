"""Serve a registered Gymnasium environment (CartPole-v1 by default).

    uv run python examples/python/quickstart/serve_gymnasium.py --address 127.0.0.1:5555
"""

import argparse

import gymnasium as gym

from rlmesh import EnvServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-id", default="CartPole-v1")
    parser.add_argument("--address", default="127.0.0.1:5555")
    args = parser.parse_args()

    env = gym.make(args.env_id)
    server = EnvServer(env, args.address)
    server.serve()  # prints "rlmesh: serving CartPole-v1 ... on ADDRESS; Ctrl+C stops"


if __name__ == "__main__":
    main()
