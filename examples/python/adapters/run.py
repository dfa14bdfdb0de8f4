"""Connect to a served tabletop env, show the resolved adapter, then play a few episodes.

    uv run python examples/python/adapters/run.py [ADDRESS] [EPISODES]

The model never sees the env's own conventions: ``Model(predict, spec=SPEC)`` resolves the
adapter from the tags the env publishes, and applies it on every step.
"""

from __future__ import annotations

import sys
from typing import Any

from model import SPEC, predict

import rlmesh.adapters as adapt
from rlmesh.numpy import Model, RemoteEnv


def report(result: Any) -> None:
    """Print one line per episode, then the run's summary."""
    for episode in result.episodes:
        outcome = "success" if episode.succeeded else "no success"
        print(f"episode {episode.index}: {episode.steps} steps, return {episode.reward:.2f}, "
              f"{outcome}")
    summary = result.summary()
    print(f"summary: {summary['num_episodes']} episodes, mean return "
          f"{summary['mean_reward']:.2f}, success rate {summary['success_rate']:.2f}, "
          f"{summary['total_steps']} steps")


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:5555"
    episodes = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with RemoteEnv(address) as env:
        adapter = adapt.resolve_from_contract(env.env_contract, SPEC)
        print("resolved adapter:")
        print(adapter.explain())
        result = Model(predict, spec=SPEC).run(env, seeds=list(range(episodes)))
    report(result)


if __name__ == "__main__":
    main()
