"""What a resolved adapter adds to a step of the adapters example's tabletop env.

The env (``examples/python/adapters/env.py``: two 128x128 cameras rendered in NumPy, a
quaternion, a gripper, an instruction) is served by ``rlmesh serve`` in a child process on a
unix socket, with default settings, so the connection negotiates the same-host shared-memory
link. This process plays it with the example's scripted policy in two forms, each over its
own connection to that server:

* **raw** (the baseline): ``Model(predict_raw, spec=rlmesh.NO_ADAPTER)``; the policy reads the
  env's raw observation (128x128 HWC ``uint8``, ``w, x, y, z`` quaternion, opening in metres)
  and returns the env's 7-number action itself;
* **adapted**: ``Model(predict, spec=SPEC)``, the example model: the adapter is resolved from
  the served contract, and every step turns the observation into the model's payload (two
  96x96 CHW ``float32`` frames, a ``rot6d`` proprio vector) and its 10-number action back.

Method: ``--rounds`` interleaved rounds (the order flips every round); in each, one trial per
variant of ``--episodes`` seeded episodes through ``Model.run`` (the same seeds for both). A
variant's step time is wall time over steps; the overhead is the median over rounds of
``adapted / raw - 1``. Alongside, measured directly in this process: the adapter's own cost
(``transform_obs`` + ``transform_action`` on a recorded observation), the two predict
functions, and the env's own step (render included).

Run it from the repository root::

    uv run python benchmarks/bench_adapters.py             # 9 rounds of 12 episodes
    uv run python benchmarks/bench_adapters.py --quick     # 3 rounds of 4 episodes
    uv run python benchmarks/bench_adapters.py --pin split # client and server on two CPUs
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

try:
    from benchmarks import bench_core as core
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]

import rlmesh
import rlmesh.adapters as adapt
from rlmesh.numpy import Model, RemoteEnv
from rlmesh.testing import spawn_server

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "python" / "adapters"
sys.path.insert(0, str(EXAMPLE))
import env as example_env  # noqa: E402
import model as example_model  # noqa: E402


def predict_raw(obs: dict[str, Any]) -> np.ndarray:
    """The example policy written against the env's raw observation and action."""
    image = obs["agentview"]  # (128, 128, 3) uint8
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    cube = example_model.locate((red > 153) & (green < 89) & (blue < 89))
    goal = example_model.locate((green > 140) & (red < 102) & (blue < 102))
    eef = np.asarray(obs["eef_pos"], np.float64)
    opening = float(obs["gripper"][0]) / example_env.OPEN
    move, close = example_model.decide(cube, goal, eef, opening)
    w, x, y, z = (float(v) for v in obs["eef_quat"])
    yaw = float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))
    turn = example_model.yaw_turn(yaw)
    return np.array([*np.clip(move, -0.05, 0.05), 0.0, 0.0, turn, -1.0 if close else 1.0],
                    np.float32)


def per_call_us(fn: Callable[[], Any], repeats: int = 7, calls: int = 300) -> list[float]:
    """Microseconds per call of ``fn``, one figure per repeat."""
    fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - start) / calls * 1e6)
    return out


def in_process_costs() -> dict[str, list[float]]:
    """The env's step, the adapter's two transforms and the two policies, in this process."""
    env = example_env.TabletopEnv()
    adapter = adapt.resolve(example_env.TAGS, env.observation_space, env.action_space,
                            example_model.SPEC)
    obs, _ = env.reset(seed=0)
    payload = adapter.transform_obs(obs)
    model_action = example_model.predict(payload)
    hold = np.zeros(7, np.float32)

    def both() -> None:
        adapter.transform_obs(obs)
        adapter.transform_action(model_action)

    def env_step() -> None:
        if env.step(hold)[3]:
            env.reset(seed=0)

    return {
        "env step (render included)": per_call_us(env_step),
        "adapter transform_obs": per_call_us(lambda: adapter.transform_obs(obs)),
        "adapter transform_action": per_call_us(lambda: adapter.transform_action(model_action)),
        "adapter both": per_call_us(both),
        "predict (model format)": per_call_us(lambda: example_model.predict(payload)),
        "predict_raw (env format)": per_call_us(lambda: predict_raw(obs)),
        "resolve (once per run)": per_call_us(lambda: adapt.resolve(
            example_env.TAGS, env.observation_space, env.action_space, example_model.SPEC),
            calls=20),
    }


@contextlib.contextmanager
def served_env(placement: core.Placement) -> Iterator[tuple[str, int]]:
    """``rlmesh serve env:tagged_env`` on a unix socket in a child; yield (address, pid)."""
    with tempfile.TemporaryDirectory(prefix="rlmesh-bench-adapters-") as tmp:
        address = "unix://" + os.path.join(tmp, "tabletop.sock")
        path = os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
        with placement.spawning():
            server = spawn_server("env:tagged_env", address=address,
                                  env={**os.environ, "PYTHONPATH": path,
                                       "RLMESH_SAME_HOST": "1"})
        try:
            yield server.address, server.pid
        finally:
            server.stop()


def trial(model: Model, env: Any, seeds: list[int]) -> float:
    """Microseconds per env step over one run of ``seeds``."""
    start = time.perf_counter()
    result = model.run(env, seeds=seeds)
    return (time.perf_counter() - start) / result.total_steps * 1e6


def served_rounds(placement: core.Placement, rounds: int,
                  episodes: int) -> tuple[dict[str, list[float]], list[float], bool]:
    """Interleaved rounds of both variants; (step µs per variant, per-round overheads, shm)."""
    seeds = list(range(1000, 1000 + episodes))
    models = {"raw": Model(predict_raw, spec=rlmesh.NO_ADAPTER, name="raw"),
              "adapted": Model(example_model.predict, spec=example_model.SPEC, name="adapted")}
    times: dict[str, list[float]] = {name: [] for name in models}
    overheads = []
    with served_env(placement) as (address, _), placement.client_side(), \
            RemoteEnv(address) as raw_env, RemoteEnv(address) as adapted_env:
        envs = {"raw": raw_env, "adapted": adapted_env}
        shm = all(getattr(e, "contract", {}).get("shm") is True for e in envs.values())
        for name in models:  # warm-up, untimed
            trial(models[name], envs[name], seeds[:1])
        for index in range(rounds):
            order = list(models) if index % 2 == 0 else list(reversed(models))
            for name in order:
                times[name].append(trial(models[name], envs[name], seeds))
            overheads.append(times["adapted"][-1] / times["raw"][-1] - 1.0)
            core.log(f"round {index + 1}/{rounds}: raw {times['raw'][-1]:.0f} µs/step, "
                     f"adapted {times['adapted'][-1]:.0f} µs/step, "
                     f"overhead {overheads[-1]:+.1%}")
    return times, overheads, shm


def spread(values: list[float]) -> str:
    q1, q3 = core._quartiles(values)
    return (f"median {statistics.median(values):.1f} (IQR {q1:.1f}-{q3:.1f}, "
            f"range {min(values):.1f}-{max(values):.1f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--episodes", type=int, default=12, help="episodes per trial")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 4 episodes")
    parser.add_argument("--pin", choices=core.PIN_MODES, default="none")
    args = parser.parse_args(argv)
    rounds, episodes = (3, 4) if args.quick else (args.rounds, args.episodes)
    placement = core.Placement.choose(args.pin)
    print(f"# adapter overhead on the tabletop example, {placement.describe()}, "
          f"{rounds} rounds of {episodes} episodes")
    print("## in this process (µs per call, 7 repeats)")
    for name, values in in_process_costs().items():
        print(f"{name}: {spread(values)}")
    times, overheads, shm = served_rounds(placement, rounds, episodes)
    print(f"## served, unix socket, same-host link {'on' if shm else 'NOT negotiated'}")
    for name, values in times.items():
        print(f"{name} step (µs): {spread(values)}")
    print(f"adapter overhead (adapted/raw - 1, per round, %): "
          f"{spread([100 * o for o in overheads])}")
    verdict = statistics.median(overheads) < 0.10
    print(f"goal: under 10% -> {'met' if verdict else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
