"""``rlmesh demo``: two local endpoints, one evaluator driving both at once.

The first thing a newcomer runs (README's first command): it starts ``CartPole-v1`` and the
custom ``rlmesh.envs:CounterEnv`` as two ``rlmesh serve`` child processes on free ports,
plays one random episode on each from two threads, and stops both.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor

__all__ = ["cmd_demo"]


def _evaluate(address: str, max_steps: int) -> str:
    from rlmesh.client.env import RemoteEnv

    env = RemoteEnv(address)
    try:
        lines = [f"{address}: connected"]
        env.reset(seed=0)
        env.action_space.seed(0)
        total = 0.0
        for step in range(1, max_steps + 1):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            if terminated or truncated:
                lines.append(f"{address}: episode complete after {step} steps, "
                             f"return {total:.1f}")
                break
        else:
            lines.append(f"{address}: stopped after {max_steps} steps, return {total:.1f}")
        return "\n".join(lines)
    finally:
        env.close()


def cmd_demo(args: argparse.Namespace) -> int:
    """Start two local endpoints and drive both from one evaluator."""
    from rlmesh.testing import spawn_server

    targets = ["CartPole-v1", "rlmesh.envs:CounterEnv"]
    print("starting endpoints: " + ", ".join(targets))
    with ThreadPoolExecutor(len(targets)) as pool:
        servers = list(pool.map(spawn_server, targets))
    try:
        for target, server in zip(targets, servers, strict=True):
            print(f"  {target} serving on {server.address} (pid {server.pid})")
        print("evaluating both concurrently, one thread per endpoint, random actions:")
        with ThreadPoolExecutor(len(servers)) as pool:
            futures = [pool.submit(_evaluate, s.address, args.max_steps) for s in servers]
            for future in futures:
                print(future.result())
    finally:
        for server in servers:
            server.stop()
    print("done: both endpoints stopped")
    return 0
