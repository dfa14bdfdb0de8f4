"""What a resolved adapter adds to a served step of the adapters example's tabletop env.

The env (``examples/python/adapters/env.py``: two square cameras rendered in NumPy on every
step, a ``w, x, y, z`` quaternion, a gripper opening, an instruction) is served by ``rlmesh
serve env:tagged_env`` in a child process on a unix socket, default settings (so the
connection negotiates the same-host shared-memory link). This process drives it over two
connections with two scripted players that produce **the same env trajectories**:

* **raw** (the baseline): ``Model(play_env, spec=rlmesh.NO_ADAPTER)`` returns, step after
  step, a seeded sequence of env actions (7 numbers: metres, an axis-angle turn, a gripper
  command in ``[-1, 1]``);
* **adapted**: ``Model(play_model, spec=SPEC)``, the example model's spec, returns the
  model-space actions (10 numbers: metres, a ``rot6d`` turn, a ``0/1`` close command) that the
  resolved adapter turns into exactly those env actions (checked, element for element, before
  timing). Its payload is built on every step: two camera frames (as the configuration
  asks), a ``rot6d`` proprio vector, the instruction.

Both players only touch one value of what they are given, so the model's own compute is not
counted as adapter cost; both replay the sequence from its start in every trial, with the same
episode seeds, so both runs take the same number of steps with the same rewards (checked every
round).

Three configurations (the env renders 128x128 cameras in all of them):

* ``native`` (the shipped example): the model takes the frames as the cameras give them
  (8-bit HWC); the adapter converts the proprio rotation, maps the gripper range, remaps the
  instruction and converts the action;
* ``normalized``: the model wants CHW ``float32`` in ``[0, 1]``: the adapter also converts
  ``uint8`` to ``float32 /255`` and ``hwc`` to ``chw`` per frame;
* ``resize``: the model wants 96x96 CHW ``float32``: the adapter also resizes (bilinear).

Method: per configuration, ``--rounds`` interleaved rounds (the order flips every round), each
one trial per variant of ``--episodes`` seeded episodes through ``Model.run``. A variant's step
time is wall time over steps; the overhead is the median over rounds of ``adapted / raw - 1``.
Measured directly in this process too: ``transform_obs`` and ``transform_action`` on a
recorded observation and action, the env's own step (render included), and resolve.

Run it from the repository root::

    uv run python benchmarks/bench_adapters.py             # 9 rounds of 12 episodes, both
    uv run python benchmarks/bench_adapters.py --config resize
    uv run python benchmarks/bench_adapters.py --quick     # 3 rounds of 3 episodes (smoke)
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
from rlmesh.adapters.rotations import convert
from rlmesh.numpy import Model, RemoteEnv
from rlmesh.testing import spawn_server

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "python" / "adapters"
sys.path.insert(0, str(EXAMPLE))
import env as example_env  # noqa: E402
import model as example_model  # noqa: E402


def _with_images(**image: Any) -> adapt.ModelSpec:
    """The example model's spec with other camera conventions (everything else the same)."""
    spec = example_model.SPEC
    inputs = dict(spec.input)
    inputs["image"] = adapt.Image(adapt.IMAGE_PRIMARY, **image)
    inputs["wrist_image"] = adapt.Image(adapt.IMAGE_WRIST, **image)
    return adapt.ModelSpec(inputs, spec.output)


CONFIGS: dict[str, tuple[int, adapt.ModelSpec, str]] = {
    "native": (example_env.SIZE, example_model.SPEC,
               "the shipped example: 128x128 uint8 HWC frames as the cameras give them"),
    "normalized": (example_env.SIZE,
                   _with_images(size=128, layout="chw", dtype="float32", normalize=True),
                   "128x128 CHW float32 in [0, 1]: dtype, normalize and layout per frame"),
    "resize": (example_env.SIZE,
               _with_images(size=96, layout="chw", dtype="float32", normalize=True),
               "96x96 CHW float32: a bilinear resize, then dtype, normalize and layout"),
}
"""Configuration name -> (the env's camera resolution, the model's spec, what it does)."""
SEQUENCE = 512  # actions in the replayed sequence (longer than any trial's episode)
SEQUENCE_SEED = 2026


class Player:
    """Replays a fixed action sequence, one action per call, touching one input value.

    Args:
        actions: ``(n, dim)`` actions, replayed in order and wrapped around.
        touch: Reads one value of the observation or payload (the model's whole "compute").
    """

    def __init__(self, actions: np.ndarray, touch: Callable[[Any], Any]) -> None:
        self.actions, self.touch, self.index = actions, touch, 0

    def rewind(self) -> None:
        self.index = 0

    def __call__(self, observation: Any) -> np.ndarray:
        self.touch(observation)
        action = self.actions[self.index % len(self.actions)]
        self.index += 1
        return action


def action_sequences(adapter: adapt.Adapter) -> tuple[np.ndarray, np.ndarray]:
    """(env actions, model actions): the adapter maps each model action onto its env action.

    The env actions are a seeded sequence (moves within 4 cm, turns within 0.2 rad per axis,
    the gripper closing about a third of the time); the model actions are the same moves and
    turns in the model's encoding. Each env action is then taken as the adapter gives it for
    its model action, after checking it is the seeded one up to float32 rounding.
    """
    rng = np.random.default_rng(SEQUENCE_SEED)
    move = rng.uniform(-0.04, 0.04, (SEQUENCE, 3))
    turn = rng.uniform(-0.2, 0.2, (SEQUENCE, 3))
    close = rng.random(SEQUENCE) < 0.35
    wanted = np.column_stack([move, turn, np.where(close, -1.0, 1.0)]).astype(np.float32)
    model = np.column_stack([move, convert(turn, "axis_angle", "rot6d"),
                             close.astype(np.float64)]).astype(np.float32)
    env = np.stack([adapter.transform_action(row) for row in model])
    assert env.dtype == np.float32 and env.shape == wanted.shape
    np.testing.assert_allclose(env, wanted, rtol=0, atol=1e-6)
    return env, model


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


def in_process_costs(camera: int, spec: adapt.ModelSpec) -> dict[str, list[float]]:
    """The env's step, the adapter's two transforms and resolve, in this process."""
    env = example_env.TabletopEnv(camera=camera)
    adapter = adapt.resolve(example_env.TAGS, env.observation_space, env.action_space,
                            spec)
    env_actions, model_actions = action_sequences(adapter)
    obs, _ = env.reset(seed=0)
    model_action = model_actions[0]
    steps = iter(range(1 << 62))

    def env_step() -> None:
        if any(env.step(env_actions[next(steps) % SEQUENCE])[2:4]):
            env.reset(seed=0)

    def both() -> None:
        adapter.transform_obs(obs)
        adapter.transform_action(model_action)

    return {
        "env step (render included)": per_call_us(env_step),
        "adapter transform_obs": per_call_us(lambda: adapter.transform_obs(obs)),
        "adapter transform_action": per_call_us(lambda: adapter.transform_action(model_action)),
        "adapter both": per_call_us(both),
        "resolve (once per run)": per_call_us(lambda: adapt.resolve(
            example_env.TAGS, env.observation_space, env.action_space, spec),
            calls=20),
    }


@contextlib.contextmanager
def served_env(placement: core.Placement, camera: int) -> Iterator[str]:
    """``rlmesh serve env:tagged_env`` on a unix socket in a child; yield its address."""
    with tempfile.TemporaryDirectory(prefix="rlmesh-bench-adapters-") as tmp:
        address = "unix://" + os.path.join(tmp, "tabletop.sock")
        path = os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
        with placement.spawning():
            server = spawn_server("env:tagged_env", address=address, kwargs={"camera": camera},
                                  env={**os.environ, "PYTHONPATH": path,
                                       "RLMESH_SAME_HOST": "1"})
        try:
            yield server.address
        finally:
            server.stop()


def trial(model: Model, player: Player, env: Any,
          seeds: list[int]) -> tuple[float, list[tuple[int, float]]]:
    """(µs per env step, (steps, return) per episode) of one run of ``seeds``."""
    player.rewind()
    start = time.perf_counter()
    result = model.run(env, seeds=seeds)
    elapsed = time.perf_counter() - start
    return elapsed / result.total_steps * 1e6, [(e.steps, e.reward) for e in result.episodes]


def players(camera: int, spec: adapt.ModelSpec) -> dict[str, tuple[Model, Player]]:
    """The two variants: the raw model and the adapted one, on the same trajectories."""
    env = example_env.TabletopEnv(camera=camera)
    adapter = adapt.resolve(example_env.TAGS, env.observation_space, env.action_space,
                            spec)
    env_actions, model_actions = action_sequences(adapter)
    raw = Player(env_actions, lambda obs: obs["agentview"][0, 0, 0])
    adapted = Player(model_actions, lambda payload: payload["image"][0, 0, 0])
    return {"raw": (Model(raw, spec=rlmesh.NO_ADAPTER, name="raw"), raw),
            "adapted": (Model(adapted, spec=spec, name="adapted"), adapted)}


def served_rounds(placement: core.Placement, camera: int, spec: adapt.ModelSpec, rounds: int,
                  episodes: int) -> tuple[dict[str, list[float]], list[float], bool, int]:
    """Interleaved rounds of both variants: (step µs per variant, overheads, shm, steps)."""
    seeds = list(range(1000, 1000 + episodes))
    variants = players(camera, spec)
    times: dict[str, list[float]] = {name: [] for name in variants}
    overheads, total = [], 0
    with served_env(placement, camera) as address, placement.client_side(), \
            RemoteEnv(address) as raw_env, RemoteEnv(address) as adapted_env:
        envs = {"raw": raw_env, "adapted": adapted_env}
        shm = all(getattr(e, "contract", {}).get("shm") is True for e in envs.values())
        for name, (model, player) in variants.items():  # warm-up, untimed
            trial(model, player, envs[name], seeds[:1])
        for index in range(rounds):
            order = list(variants) if index % 2 == 0 else list(reversed(variants))
            runs = {}
            for name in order:
                model, player = variants[name]
                step_us, runs[name] = trial(model, player, envs[name], seeds)
                times[name].append(step_us)
            if runs["raw"] != runs["adapted"]:
                raise AssertionError(f"the two variants' trajectories differ: {runs}")
            total = sum(steps for steps, _ in runs["raw"])
            overheads.append(times["adapted"][-1] / times["raw"][-1] - 1.0)
            core.log(f"camera {camera}, round {index + 1}/{rounds}: raw "
                     f"{times['raw'][-1]:.0f} µs/step, adapted {times['adapted'][-1]:.0f} "
                     f"µs/step, overhead {overheads[-1]:+.1%} ({total} steps each)")
    return times, overheads, shm, total


def spread(values: list[float]) -> str:
    q1, q3 = core._quartiles(values)
    return (f"median {statistics.median(values):.1f} (IQR {q1:.1f}-{q3:.1f}, "
            f"range {min(values):.1f}-{max(values):.1f})")


def report(name: str, placement: core.Placement, rounds: int, episodes: int) -> bool:
    """Measure one configuration and print it; whether it met the 10% bar."""
    camera, spec, what = CONFIGS[name]
    print(f"\n# {name}: env cameras {camera}x{camera}; the model wants {what}")
    print("## in this process (µs per call, 7 repeats)")
    for label, values in in_process_costs(camera, spec).items():
        print(f"{label}: {spread(values)}")
    times, overheads, shm, total = served_rounds(placement, camera, spec, rounds, episodes)
    print(f"## served, unix socket, same-host link {'on' if shm else 'NOT negotiated'}, "
          f"{total} steps per trial, identical trajectories")
    for label, values in times.items():
        print(f"{label} step (µs): {spread(values)}")
    print(f"adapter overhead (adapted/raw - 1, per round, %): "
          f"{spread([100 * o for o in overheads])}")
    met = statistics.median(overheads) < 0.10
    print(f"goal: under 10% -> {'met' if met else 'NOT met'}")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--episodes", type=int, default=12, help="episodes per trial")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 episodes")
    parser.add_argument("--config", choices=[*CONFIGS, "both"], default="both")
    parser.add_argument("--pin", choices=core.PIN_MODES, default="none")
    args = parser.parse_args(argv)
    rounds, episodes = (3, 3) if args.quick else (args.rounds, args.episodes)
    placement = core.Placement.choose(args.pin)
    print(f"# adapter overhead on the tabletop example, {placement.describe()}, "
          f"{rounds} rounds of {episodes} episodes per configuration")
    names = list(CONFIGS) if args.config == "both" else [args.config]
    for name in names:
        report(name, placement, rounds, episodes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
