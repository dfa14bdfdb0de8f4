"""One served env of any id against the same env stepped in this process.

An ``rlmesh serve ENV_ID`` child serves the env; this process steps it over loopback TCP
without shared memory (``tcp``) and over the same-host link (``link``), in interleaved rounds
with the env stepped in this process (``local``), the order flipped every round. The ratio
is local / served time per step (1.0: serving costs nothing), its median over the rounds'
ratios, with their spread. The action is one fixed sample of the action space, so both arms
do the same work; an episode that ends is reset (in both arms alike).

It measures what an env's own types cost on the wire: Pendulum returns its reward as a NumPy
``float64``, CartPole as a Python float, and the fixed frames take both. ``--num-envs N``
serves Gymnasium's ``SyncVectorEnv`` of ``N`` copies instead (``gymnasium.make_vec``, the
same in this process; a vector env resets its own episodes). Run it against two trees
(``cd OTHER && uv run python THIS/benchmarks/bench_served.py``) to compare them::

    uv run python benchmarks/bench_served.py Pendulum-v1            # 7 rounds x 0.4 s
    uv run python benchmarks/bench_served.py CartPole-v1 --json served.json
    uv run python benchmarks/bench_served.py CartPole-v1 --num-envs 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym

import rlmesh
from rlmesh.client.options import ConnectOptions
from rlmesh.testing import spawn_server

TRANSPORTS = {"tcp": False, "link": True}
"""Each transport's ``same_host`` setting."""
BATCH = 200
"""Steps between two looks at the clock."""


def stepper(env: Any, action: Any) -> Callable[[], None]:
    """One step of ``env`` with ``action``, resetting an episode that ends."""
    step, reset = env.step, env.reset
    if isinstance(env, gym.vector.VectorEnv):
        def vector_step() -> None:
            step(action)  # (a vector env resets its own episodes)

        return vector_step

    def one() -> None:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            reset()

    return one


def trial(step: Callable[[], None], seconds: float) -> float:
    """Microseconds per step over about ``seconds`` of stepping."""
    steps, started = 0, time.perf_counter()
    end = started + seconds
    while True:
        for _ in range(BATCH):
            step()
        steps += BATCH
        now = time.perf_counter()
        if now >= end:
            return (now - started) / steps * 1e6


def measure(env_id: str, rounds: int, seconds: float, num_envs: int = 0) -> dict[str, Any]:
    """Interleaved rounds of each transport against the env in this process.

    ``num_envs`` > 0 serves (and steps here) a ``SyncVectorEnv`` of that many copies.
    """
    local: Any = gym.make(env_id) if not num_envs else gym.make_vec(
        env_id, num_envs, vectorization_mode="sync")
    local.reset(seed=0)
    local.action_space.seed(0)
    action = local.action_space.sample()
    target, kwargs = (env_id, None) if not num_envs else ("gymnasium:make_vec", {
        "id": env_id, "num_envs": num_envs, "vectorization_mode": "sync"})
    remote_class = rlmesh.numpy.RemoteVectorEnv if num_envs else rlmesh.numpy.RemoteEnv
    results: dict[str, Any] = {}
    with spawn_server(target, kwargs=kwargs) as server:
        for name, same_host in TRANSPORTS.items():
            options = ConnectOptions(same_host=same_host, timeout=10)
            with remote_class(server.address, options=options) as remote:
                linked = remote.contract.get("shm_link") is True  # (as asked, or not)
                remote.reset(seed=0)
                arms = {"served": stepper(remote, action), "local": stepper(local, action)}
                for step in arms.values():  # (warm-up)
                    trial(step, 0.1)
                times: dict[str, list[float]] = {arm: [] for arm in arms}
                for r in range(rounds):
                    for arm in (list(arms) if r % 2 == 0 else list(reversed(arms))):
                        times[arm].append(trial(arms[arm], seconds))
            ratios = sorted(mine / served for mine, served in zip(times["local"], times["served"],
                                                                   strict=True))
            results[name] = {"shm_link": linked,
                             "served_us": statistics.median(times["served"]),
                             "local_us": statistics.median(times["local"]),
                             "ratio": statistics.median(ratios), "ratio_min": ratios[0],
                             "ratio_max": ratios[-1], "trials_us": times}
    local.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env_id", nargs="?", default="Pendulum-v1")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.4, help="per trial")
    parser.add_argument("--num-envs", type=int, default=0,
                        help="serve a SyncVectorEnv of this many copies (default: one env)")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0 or args.num_envs < 0:
        parser.error("--rounds must be >= 1, --seconds > 0 and --num-envs >= 0")
    results = measure(args.env_id, args.rounds, args.seconds, args.num_envs)
    what = f"SyncVectorEnv({args.num_envs}) of {args.env_id}" if args.num_envs else args.env_id
    print(f"{what} served, against it in this process: {args.rounds} rounds x "
          f"{args.seconds} s")
    print("| transport | served µs | local µs | local / served (median, min-max) |")
    print("|---|---:|---:|---:|")
    for name, row in results.items():
        if row["shm_link"] != TRANSPORTS[name]:
            print(f"warning: {name} {'did not use' if TRANSPORTS[name] else 'used'} the "
                  "same-host link", file=sys.stderr)
        print(f"| {name} | {row['served_us']:.2f} | {row['local_us']:.2f} | "
              f"{row['ratio']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f}) |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"env_id": args.env_id, "num_envs": args.num_envs, "rounds": args.rounds,
                       "seconds": args.seconds, "transports": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
