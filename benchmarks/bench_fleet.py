"""Ray-hosted fleets (``rlmesh.ray``) against plain ``rlmesh serve`` subprocesses.

Measured on a local Ray cluster (2 CPUs, no dashboard, loopback only):

* **start**: seconds until ``rlmesh.ray.serve(CartPole-v1, N)`` returns with every server
  listening, per server, for N = 1, 2, 4 (a subprocess start of N servers beside it);
* **memory per server**: proportional set size (PSS) of each actor process and of each
  ``rlmesh serve`` child;
* **env steps/s**: ``RemoteVectorEnv`` over N Ray-hosted servers vs N subprocess servers, both
  up at once, in interleaved rounds (median and the per-round ratio);
* **evaluator CPU per env step** (``time.process_time`` of this process) for a
  ``RemoteVectorEnv`` over 8, 64 and 256 sessions spread over the fleet's servers (a fleet of
  256 actors does not fit on 2 cores: sessions share servers, every session its own env).

Run it as a script::

    uv run python benchmarks/bench_fleet.py            # 5 rounds, ~2 min
    uv run python benchmarks/bench_fleet.py --quick    # 2 rounds
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

import rlmesh
import rlmesh.ray
from rlmesh.testing import spawn_server

SMALL = {"CPU": 0.25}


def pss_mib(pid: int) -> float:
    """The process's proportional set size, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def steps_per_s(envs: Any, seconds: float) -> float:
    actions = np.zeros(envs.num_envs, dtype=np.int64)
    envs.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(actions)
        steps += envs.num_envs
    return steps / (time.perf_counter() - start)


def cpu_per_step(envs: Any, steps: int) -> float:
    actions = np.zeros(envs.num_envs, dtype=np.int64)
    envs.reset(seed=0)
    cpu = time.process_time()
    for _ in range(steps):
        envs.step(actions)
    return (time.process_time() - cpu) / (steps * envs.num_envs) * 1e6


def starts(sizes: list[int]) -> None:
    print("## start (s), per server in brackets; memory per server (PSS MiB)")
    for n in sizes:
        began = time.perf_counter()
        fleet = rlmesh.ray.serve("CartPole-v1", n, resources=SMALL, start_timeout=300)
        ray_s = time.perf_counter() - began
        ray_pss = [pss_mib(row["pid"]) for row in fleet.status()]
        fleet.close()
        began = time.perf_counter()
        procs = [spawn_server("CartPole-v1") for _ in range(n)]
        sub_s = time.perf_counter() - began
        sub_pss = [pss_mib(p.process.pid) for p in procs]
        for proc in procs:
            proc.stop()
        print(f"N={n}: ray {ray_s:.2f} ({ray_s / n:.2f}) vs subprocess {sub_s:.2f} "
              f"({sub_s / n:.2f}); PSS ray {statistics.median(ray_pss):.0f} vs subprocess "
              f"{statistics.median(sub_pss):.0f}")


def throughput(n: int, rounds: int, seconds: float) -> None:
    print(f"## env steps/s, RemoteVectorEnv over {n} servers, interleaved")
    fleet = rlmesh.ray.serve("CartPole-v1", n, resources=SMALL, token=None)
    procs = [spawn_server("CartPole-v1") for _ in range(n)]
    ray_env = fleet.vector_env()
    sub_env = rlmesh.RemoteVectorEnv([p.address for p in procs])
    ratios, ray_rates, sub_rates = [], [], []
    for _ in range(rounds):
        ray_rates.append(steps_per_s(ray_env, seconds))
        sub_rates.append(steps_per_s(sub_env, seconds))
        ratios.append(ray_rates[-1] / sub_rates[-1])
    print(f"ray {statistics.median(ray_rates):.0f} vs subprocess "
          f"{statistics.median(sub_rates):.0f}; ratio median {statistics.median(ratios):.2f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})")
    ray_env.close()
    sub_env.close()
    fleet.close()
    for proc in procs:
        proc.stop()


def evaluator_cpu(servers: int, sessions: list[int], steps: int) -> None:
    print(f"## evaluator CPU per env step (us), sessions over {servers} Ray-hosted servers")
    with rlmesh.ray.serve("CartPole-v1", servers, resources=SMALL, token=None) as fleet:
        addresses = fleet.wait_ready(60)
        for n in sessions:
            envs = rlmesh.RemoteVectorEnv([addresses[k % servers] for k in range(n)])
            try:
                print(f"{n} sessions: {cpu_per_step(envs, steps):.1f} us")
            finally:
                envs.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import ray

    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - began:.1f} s")
    try:
        starts([1, 2] if args.quick else [1, 2, 4])
        throughput(4, 2 if args.quick else 5, 1.0)
        evaluator_cpu(8, [8, 64, 256], 50 if args.quick else 200)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
