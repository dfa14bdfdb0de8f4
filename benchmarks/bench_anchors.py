"""Anchor benchmark: CartPole x8 through EnvPool, rlmesh and Gymnasium, side by side in one run.

The physical anchors of a vector env of cheap envs are the envs stepped in this process
(Gymnasium's ``SyncVectorEnv``) and EnvPool (C++ envs stepped by a thread pool). This
benchmark measures, in one run with interleaved rounds (the method of ``bench_core.py``):

* ``envpool.make_gymnasium("CartPole-v1", num_envs=8)``, stepped synchronously;
* the same with ``batch_size=4``, stepped asynchronously with ``send``/``recv`` (each
  ``recv`` returns the first 4 envs that finished, which are then sent their next actions);
* ``rlmesh.make_vec("CartPole-v1", 8)`` with its defaults;
* Gymnasium's ``SyncVectorEnv(8)`` (in-process) and ``AsyncVectorEnv(8)``;
* one CartPole in this process, and one over the same-host link (``rlmesh serve`` child on a
  unix socket, shared memory negotiated).

Rates are env-steps/s. EnvPool is not a dependency of rlmesh; it is found when importable::

    uv run --with envpool python benchmarks/bench_anchors.py              # 9 rounds x 0.3 s
    uv run --with envpool python benchmarks/bench_anchors.py --quick --json anchors.json

EnvPool's wheel installs next to this project's numpy and Gymnasium, so it runs in this
process. Without it (``uv run python benchmarks/bench_anchors.py``) the EnvPool rows are left
out, the report says why, and the rest still runs. Unpinned by default, like
``bench_vector.py`` (``--pin same|split`` are available).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from benchmarks import bench_core as core
    from benchmarks import bench_vector as vector
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]
    import bench_vector as vector  # type: ignore[no-redef,import-not-found,unused-ignore]

ENV_ID = vector.ENV_ID
NUM_ENVS = vector.NUM_ENVS
ENVPOOL_BATCH = 4
ANCHOR_RUN = core.RunDefaults(rounds=9, quick_rounds=3, trial_seconds=0.3,
                              quick_trial_seconds=0.1)
ENVPOOL_HINT = "uv run --with envpool python benchmarks/<script>.py"


class Unavailable(RuntimeError):
    """A variant that cannot be built on this machine (its reason is the message)."""


def load_envpool() -> Any:
    """The ``envpool`` module; raises :class:`Unavailable` when it cannot be imported."""
    try:
        import envpool  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise Unavailable(f"EnvPool is not importable ({exc}); run with `{ENVPOOL_HINT}`"
                          ) from None
    return envpool


class EnvPoolAsyncStepper:
    """Steps an EnvPool made with ``batch_size < num_envs`` through ``send``/``recv``.

    ``run(n)`` makes ``n`` env steps: ``n // batch_size`` rounds of ``recv`` (the next
    ``batch_size`` envs to finish) and ``send`` (their next actions).
    """

    def __init__(self, pool: Any, batch_size: int, actions: list[np.ndarray]) -> None:
        if core.BATCH % batch_size:
            raise ValueError(f"a batch of {batch_size} does not divide {core.BATCH} env steps")
        self.pool = pool
        self.batch_size = batch_size
        self.actions = [np.ascontiguousarray(a[:batch_size]) for a in actions]
        self.index = 0
        pool.async_reset()

    def __call__(self, n: int) -> None:
        recv = self.pool.recv
        send = self.pool.send
        actions = self.actions
        i = self.index
        for _ in range(n // self.batch_size):
            info = recv()[4]
            send(actions[i], info["env_id"])
            i = (i + 1) & core.ACTION_MASK
        self.index = i


class _EnvPoolSync:
    """An EnvPool with the ``num_envs``, ``reset(seed=)`` and ``step`` of a vector env."""

    def __init__(self, pool: Any, num_envs: int) -> None:
        self.pool = pool
        self.num_envs = num_envs
        self.step = pool.step

    def reset(self, seed: int | None = None) -> Any:
        return self.pool.reset()


@dataclasses.dataclass
class Build:
    """What the variant builders share: the exit stack, the placement and the action lists."""

    stack: contextlib.ExitStack
    placement: core.Placement
    sock_dir: str
    _actions: dict[str, list[Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    @contextlib.contextmanager
    def open(cls, placement: core.Placement) -> Iterator[Build]:
        """A build whose servers, workers and sockets are all closed on exit."""
        with contextlib.ExitStack() as stack:
            sock_dir = tempfile.mkdtemp(prefix="rlmesh-bench-")
            stack.callback(shutil.rmtree, sock_dir, ignore_errors=True)
            yield cls(stack, placement, sock_dir)

    def actions(self, space: gym.spaces.Space[Any], name: str) -> list[Any]:
        """The seeded action list of ``space`` (drawn once per name)."""
        if name not in self._actions:
            self._actions[name] = core.make_actions(space)
        return self._actions[name]

    def vector_actions(self) -> list[Any]:
        """Batches of 8 CartPole actions (the same sequence as ``bench_vector.py``'s)."""
        space = gym.vector.utils.batch_space(gym.spaces.Discrete(2), NUM_ENVS)
        return self.actions(space, "cartpole x8")

    def single_actions(self) -> list[Any]:
        """CartPole actions (the same sequence as ``bench_core.py``'s)."""
        return self.actions(gym.spaces.Discrete(2), "cartpole")

    def address(self, name: str) -> str:
        """A unix-socket address in this build's private directory."""
        return "unix://" + os.path.join(self.sock_dir, f"{name}.sock")


Builder = Callable[[Build], core.Variant]


def sync_inprocess(build: Build) -> core.Variant:
    env = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="sync")
    build.stack.callback(env.close)
    return vector.vector_variant("sync_inprocess", f"in-process SyncVectorEnv({NUM_ENVS})", env,
                                 None, build.vector_actions())


def async_gym(build: Build) -> core.Variant:
    # Gymnasium forks its workers: build this one before anything starts rlmesh threads.
    with build.placement.spawning():
        env: Any = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="async")
    build.stack.callback(env.close)
    return vector.vector_variant("async_gym", f"Gymnasium AsyncVectorEnv({NUM_ENVS})", env,
                                 [p.pid for p in env.processes], build.vector_actions())


def make_vec_variant(build: Build, key: str, local_envs: int = 0,
                     wrappers: list[Any] | None = None, what: str = "") -> core.Variant:
    """``rlmesh.make_vec(ENV_ID, NUM_ENVS, ...)`` with its default workers."""
    import rlmesh

    with build.placement.spawning():
        env = rlmesh.make_vec(ENV_ID, NUM_ENVS, wrappers=wrappers, local_envs=local_envs)
    build.stack.callback(env.close)
    pids = list(env.workers.pids)  # type: ignore[attr-defined]
    local = f", local_envs={local_envs}" if local_envs else ""
    return vector.vector_variant(
        key, f"rlmesh.make_vec({NUM_ENVS}{local}){what}: {len(pids)} worker"
             f"{'s' if len(pids) > 1 else ''}", env, pids, build.vector_actions())


def make_vec(build: Build) -> core.Variant:
    return make_vec_variant(build, "make_vec")


def envpool_sync(build: Build) -> core.Variant:
    envpool = load_envpool()
    pool = envpool.make_gymnasium(ENV_ID, num_envs=NUM_ENVS, seed=0)
    build.stack.callback(pool.close)
    variant = vector.vector_variant(
        "envpool_sync", f"EnvPool CartPole x{NUM_ENVS}, step()", _EnvPoolSync(pool, NUM_ENVS),
        None, build.vector_actions())
    variant.extra.update(envpool=envpool.__version__,
                         num_threads=int(pool.config.get("num_threads", 0)))
    return variant


def envpool_async(build: Build) -> core.Variant:
    envpool = load_envpool()
    pool = envpool.make_gymnasium(ENV_ID, num_envs=NUM_ENVS, batch_size=ENVPOOL_BATCH, seed=0)
    build.stack.callback(pool.close)
    stepper = EnvPoolAsyncStepper(pool, ENVPOOL_BATCH, build.vector_actions())
    return core.Variant(
        "envpool_async", f"EnvPool CartPole x{NUM_ENVS}, send/recv batch_size={ENVPOOL_BATCH}",
        stepper, None, extra={"num_envs": NUM_ENVS, "server_processes": 0, "op": "env step",
                              "envpool": envpool.__version__,
                              "num_threads": int(pool.config.get("num_threads", 0))})


def cartpole_inprocess(build: Build) -> core.Variant:
    env = gym.make(ENV_ID)
    build.stack.callback(env.close)
    stepper = core.EnvStepper(env, build.single_actions())
    return core.Variant("cartpole_inprocess", "CartPole in-process", stepper, stepper=stepper,
                        extra={"num_envs": 1, "server_processes": 0, "op": "env step"})


def cartpole_link(build: Build) -> core.Variant:
    variant = core.rlmesh_variant(
        build.stack, build.placement, "cartpole_link", "CartPole rlmesh same-host link (unix)",
        ENV_ID, build.single_actions(), same_host=True, address=build.address("cartpole"))
    variant.extra.update(num_envs=1, server_processes=1, op="env step")
    return variant


ANCHOR_BUILDERS: dict[str, Builder] = {
    # Built in this order: the forking AsyncVectorEnv first.
    "async_gym": async_gym,
    "sync_inprocess": sync_inprocess,
    "make_vec": make_vec,
    "envpool_sync": envpool_sync,
    "envpool_async": envpool_async,
    "cartpole_inprocess": cartpole_inprocess,
    "cartpole_link": cartpole_link,
}

ANCHOR_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("sync_inprocess", "envpool_sync"),
    ("make_vec", "envpool_async"),
    ("async_gym",),
    ("cartpole_inprocess", "cartpole_link"),
)

ANCHOR_RATIOS: tuple[core.RatioSpec, ...] = (
    ("envpool_sync", "sync_inprocess", None,
     "EnvPool x8 step() / in-process SyncVectorEnv(8)"),
    ("envpool_async", "sync_inprocess", None,
     "EnvPool x8 send/recv / in-process SyncVectorEnv(8)"),
    ("make_vec", "sync_inprocess", None, "rlmesh.make_vec(8) / in-process SyncVectorEnv(8)"),
    ("make_vec", "envpool_sync", None, "rlmesh.make_vec(8) / EnvPool x8 step()"),
    ("async_gym", "sync_inprocess", None,
     "Gymnasium AsyncVectorEnv(8) / in-process SyncVectorEnv(8)"),
    ("cartpole_link", "cartpole_inprocess", None,
     "CartPole over the same-host link / CartPole in-process"),
)


def build_variants(build: Build, builders: dict[str, Builder], log: Callable[[str], None]
                   ) -> tuple[dict[str, core.Variant], dict[str, str]]:
    """Run every builder; returns the variants built and, per key left out, the reason."""
    variants: dict[str, core.Variant] = {}
    missing: dict[str, str] = {}
    for key, builder in builders.items():
        try:
            variants[key] = builder(build)
        except Unavailable as exc:
            missing[key] = str(exc)
            log(f"  {key}: left out: {exc}")
    return variants, missing


def runnable(blocks: Sequence[tuple[str, ...]], ratios: Sequence[core.RatioSpec],
             variants: dict[str, core.Variant]
             ) -> tuple[list[tuple[str, ...]], list[core.RatioSpec]]:
    """The blocks and ratios whose every key was built (blocks lose missing keys)."""
    kept = [tuple(k for k in block if k in variants) for block in blocks]
    return ([b for b in kept if b],
            [r for r in ratios if r[0] in variants and r[1] in variants])


def results_table(results: list[core.Result]) -> str:
    """Markdown: one row per variant, in env-steps/s, with µs and CPU µs per env step."""
    lines = ["| benchmark | envs | median env-steps/s | IQR env-steps/s | µs/env step "
             "| client CPU µs/env step | server CPU µs/env step |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        q1, q3 = core._quartiles(r.rates)
        server = "-" if r.server_cpu_us is None else f"{r.server_cpu_us:.2f}"
        lines.append(f"| {r.name} | {r.extra.get('num_envs', 1)} | {r.ops_per_s:,.0f} "
                     f"| {q1:,.0f}-{q3:,.0f} | {r.us_per_op:.2f} | {r.client_cpu_us:.2f} "
                     f"| {server} |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_anchors",
        description="CartPole x8 through EnvPool, rlmesh.make_vec and Gymnasium's vector envs, "
                    "plus one CartPole in-process and over the same-host link, as interleaved "
                    "rounds in one run; rates are env-steps/s.")
    core.add_run_arguments(parser, ANCHOR_RUN)
    parser.add_argument("--pin", choices=vector.PIN_CHOICES, default="none",
                        help="CPU placement (default none: left to the scheduler)")
    core.add_json_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the anchor benchmark; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if not core.resolve_run_arguments(args, ANCHOR_RUN, "bench_anchors"):
        return 2
    placement = core.Placement.choose(args.pin)
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    core.log(f"anchor benchmark: {args.rounds} rounds of {args.trial_seconds:g} s trials, "
             f"{os.cpu_count()} CPUs, {placement.describe()}")
    with placement.client_side(), Build.open(placement) as build:
        variants, missing = build_variants(build, ANCHOR_BUILDERS, core.log)
        blocks, ratio_specs = runnable(ANCHOR_BLOCKS, ANCHOR_RATIOS, variants)
        order = [k for k in ANCHOR_BUILDERS if k in variants]
        by_key, rounds = core.run_rounds(variants, args.rounds, args.trial_seconds,
                                         args.warmup, core.log, order=order,
                                         round_blocks=blocks, ratios=ratio_specs)
    results = [by_key[k] for k in order]
    ratios = core.compute_ratios(rounds, ratio_specs)
    elapsed = time.perf_counter() - started
    notes = "".join(f"\n\n{key} left out: {why}" for key, why in missing.items())
    print(f"### Anchors: CartPole x{NUM_ENVS}, {core.PIN_TITLES[placement.mode]}\n\n"
          f"{args.rounds} rounds of {args.trial_seconds:g} s trials.{notes}\n\n"
          f"{results_table(results)}\n\n{core.format_ratio_table(ratios)}")
    core.log(f"done in {elapsed:.1f} s")
    if args.json:
        core.write_json(args.json, {
            "meta": {**core._meta(args, argv, started_at, elapsed), "env_id": ENV_ID},
            "placement": core._placement_meta(placement), "missing": missing,
            "results": [r.to_json() for r in results], "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
