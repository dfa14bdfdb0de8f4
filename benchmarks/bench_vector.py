"""Vector-env benchmark: rlmesh vector envs against Gymnasium's Sync and Async vector envs.

Every variant steps CartPole-v1 sub-envs through the same pregenerated, seeded batches of
random actions (8 per batch; the 4-env fleet uses the first 4 of each batch) and lets the
vector env autoreset. Rates are **env-steps/s** (batch steps/s times the number of sub-envs).

Variants (every server in its own child process, the client in this process):

* ``gymnasium.make_vec("CartPole-v1", 8, vectorization_mode="sync")``, in-process;
* ``gymnasium.make_vec(..., vectorization_mode="async")``: Gymnasium's ``AsyncVectorEnv``,
  one worker process per sub-env;
* ``rlmesh.make_vec("CartPole-v1", 8)`` (default worker count) and with ``num_workers=2``;
* a ``SyncVectorEnv(8)`` served by ``rlmesh serve gymnasium:make_vec`` and driven through
  ``rlmesh.numpy.RemoteVectorEnv(address)`` at a loopback TCP address, with default settings
  (so the same-host shared-memory link is negotiated), and again with ``RLMESH_SAME_HOST=0``
  on both sides (every frame crosses the TCP socket);
* 4 single-env CartPole-v1 endpoints (4 ``rlmesh serve`` children) driven as one
  ``RemoteVectorEnv([a1, ..., a4])`` over TCP (4 envs).

Method: the interleaved paired trials of ``bench_core.py`` (same helpers). All servers start
once and stay up; each round runs a short trial of every variant, the two halves of each
target pair back to back, and odd rounds run the sequence backwards. A ratio is the median of
its per-round ratios.

Run it as a script::

    uv run python benchmarks/bench_vector.py            # 10 rounds x 0.5 s trials
    uv run python benchmarks/bench_vector.py --quick    # 3 rounds x 0.2 s trials
    uv run python benchmarks/bench_vector.py --pin same --json results.json

or call ``main(["--quick"])`` from Python.

CPU placement (``--pin``): ``none`` (the default) leaves every process to the scheduler. Most
variants here are several processes that are meant to run in parallel (8 Async workers, 2
make_vec workers, 4 fleet endpoints, plus the client), so squeezing all servers onto one CPU
(``split``) or everything onto one CPU (``same``) would measure a placement no user runs.
Both remain available, through ``bench_core``'s placement machinery.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from benchmarks import bench_core as core
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]

ENV_ID = "CartPole-v1"
NUM_ENVS = 8
FLEET_ENVS = 4
PIN_CHOICES = ("none", "same", "split")
VECTOR_RUN = core.RunDefaults(rounds=10, quick_rounds=3, trial_seconds=0.5,
                              quick_trial_seconds=0.2)

VARIANT_ORDER: tuple[str, ...] = (
    "sync_inprocess",
    "async_gym",
    "make_vec",
    "make_vec_w2",
    "served_sync_tcp",
    "served_sync_sockets",
    "fleet4_tcp",
)

# One round runs these blocks in this order (reversed on odd rounds); a block of two is a
# target pair whose trials run back to back.
ROUND_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("sync_inprocess", "served_sync_tcp"),
    ("async_gym", "make_vec"),
    ("make_vec_w2",),
    ("served_sync_sockets",),
    ("fleet4_tcp",),
)

# Ratios of env-steps/s. Pairs sharing a block are taken within it; the others between the
# first trials of the two keys in the round.
RATIOS: tuple[core.RatioSpec, ...] = (
    ("make_vec", "async_gym", 3.0,
     "rlmesh.make_vec(8) / Gymnasium AsyncVectorEnv(8)"),
    ("served_sync_tcp", "sync_inprocess", 0.70,
     "served SyncVectorEnv(8) over TCP / in-process SyncVectorEnv(8)"),
    ("served_sync_sockets", "sync_inprocess", None,
     "served SyncVectorEnv(8), TCP sockets only / in-process SyncVectorEnv(8)"),
    ("make_vec", "sync_inprocess", None,
     "rlmesh.make_vec(8) / in-process SyncVectorEnv(8)"),
    ("make_vec_w2", "async_gym", None,
     "rlmesh.make_vec(8, num_workers=2) / Gymnasium AsyncVectorEnv(8)"),
    ("fleet4_tcp", "sync_inprocess", None,
     "4-endpoint fleet (4 envs) / in-process SyncVectorEnv(8)"),
)


class VectorStepper:
    """Steps a vector env through fixed action batches; ``run(n)`` makes ``n`` env steps.

    ``n`` must be a multiple of ``num_envs``: ``run(n)`` is ``n // num_envs`` batch steps, so
    the ops counted by ``bench_core.time_trial`` are env steps.
    """

    def __init__(self, env: Any, actions: list[np.ndarray]) -> None:
        self.env = env
        self.num_envs = int(env.num_envs)
        if core.BATCH % self.num_envs:
            raise ValueError(f"{self.num_envs} sub-envs do not divide a batch of "
                             f"{core.BATCH} env steps")
        self.actions = [np.ascontiguousarray(a[: self.num_envs]) for a in actions]
        self.index = 0
        env.reset(seed=0)

    def __call__(self, n: int) -> None:
        step = self.env.step
        actions = self.actions
        i = self.index
        for _ in range(n // self.num_envs):
            step(actions[i])
            i = (i + 1) & core.ACTION_MASK
        self.index = i


def vector_variant(key: str, name: str, env: Any, pids: int | list[int] | None,
                   actions: list[np.ndarray]) -> core.Variant:
    """A variant stepping vector env ``env`` (its server processes ``pids``) in env steps."""
    processes = 0 if pids is None else 1 if isinstance(pids, int) else len(pids)
    return core.Variant(key, name, VectorStepper(env, actions), pids,
                        extra={"num_envs": int(env.num_envs), "server_processes": processes,
                               "op": "env step"})


def served_sync_vector(stack: contextlib.ExitStack, placement: core.Placement, same_host: bool,
                       env_id: str = ENV_ID, num_envs: int = NUM_ENVS) -> tuple[Any, int]:
    """Serve a ``SyncVectorEnv`` in an ``rlmesh serve`` child; connect a ``RemoteVectorEnv``.

    ``same_host`` False sets ``RLMESH_SAME_HOST=0`` on both sides (every frame crosses the
    socket). Both are closed by ``stack``. Returns the client and the server's pid.
    """
    from rlmesh.numpy import RemoteVectorEnv
    from rlmesh.testing import spawn_server

    flag = "1" if same_host else "0"
    with placement.spawning():
        server = spawn_server("gymnasium:make_vec", kwargs={
            "id": env_id, "num_envs": num_envs, "vectorization_mode": "sync"},
            env={**os.environ, "RLMESH_SAME_HOST": flag})
    stack.callback(server.stop)
    with core._environ("RLMESH_SAME_HOST", flag):
        served = RemoteVectorEnv(server.address)
    stack.callback(served.close)
    if served.contract.get("shm_link") is not same_host:
        raise RuntimeError(f"served SyncVectorEnv: unexpected transport "
                           f"{served.contract.get('shm')}")
    return served, server.pid


@contextlib.contextmanager
def start_variants(placement: core.Placement) -> Iterator[dict[str, core.Variant]]:
    """Build every vector env (servers and workers in child processes); yield them by key."""
    import rlmesh
    from rlmesh.numpy import RemoteVectorEnv
    from rlmesh.testing import spawn_server

    variants: dict[str, core.Variant] = {}
    with contextlib.ExitStack() as stack:
        sync_env = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="sync")
        stack.callback(sync_env.close)
        actions: list[np.ndarray] = core.make_actions(sync_env.action_space)

        def add(key: str, name: str, env: Any, pids: int | list[int] | None) -> None:
            variants[key] = vector_variant(key, name, env, pids, actions)

        add("sync_inprocess", f"in-process SyncVectorEnv({NUM_ENVS})", sync_env, None)

        # Gymnasium forks its workers: start them before this process has any rlmesh state.
        with placement.spawning():
            async_env: Any = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="async")
        stack.callback(async_env.close)
        add("async_gym", f"Gymnasium AsyncVectorEnv({NUM_ENVS})", async_env,
            [p.pid for p in async_env.processes])

        for key, workers in (("make_vec", None), ("make_vec_w2", 2)):
            with placement.spawning():
                vec: Any = rlmesh.make_vec(ENV_ID, NUM_ENVS, num_workers=workers)
            stack.callback(vec.close)
            pids = list(vec.workers.pids)
            arg = "" if workers is None else f", num_workers={workers}"
            add(key, f"rlmesh.make_vec({NUM_ENVS}{arg}): {len(pids)} worker"
                     f"{'s' if len(pids) > 1 else ''}", vec, pids)

        for key, same_host, label in (
                ("served_sync_tcp", True, "TCP address (same-host link)"),
                ("served_sync_sockets", False, "TCP sockets only")):
            served, pid = served_sync_vector(stack, placement, same_host)
            add(key, f"served SyncVectorEnv({NUM_ENVS}), {label}", served, pid)

        servers = []
        for _ in range(FLEET_ENVS):
            with placement.spawning():
                servers.append(spawn_server(ENV_ID))
            stack.callback(servers[-1].stop)
        fleet = RemoteVectorEnv([s.address for s in servers])
        stack.callback(fleet.close)
        add("fleet4_tcp", f"{FLEET_ENVS} CartPole endpoints, RemoteVectorEnv TCP", fleet,
            [s.pid for s in servers])
        yield variants


def format_tables(title: str, note: str, results: list[core.Result],
                  ratios: list[dict[str, Any]]) -> str:
    """A Markdown heading and note, a table of the variants, then one of the ratios."""
    lines = [
        f"### {title}",
        "",
        note,
        "",
        "| benchmark | envs | server procs | median env-steps/s | IQR env-steps/s "
        "| batch steps/s | µs/batch step | client CPU µs/batch | server CPU µs/batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        n = int(r.extra["num_envs"])
        q1, q3 = core._quartiles(r.rates)
        server_us = r.server_cpu_us
        server = "-" if server_us is None else f"{server_us * n:.1f}"
        lines.append(f"| {r.name} | {n} | {r.extra['server_processes']} | {r.ops_per_s:,.0f} "
                     f"| {q1:,.0f}-{q3:,.0f} | {r.ops_per_s / n:,.0f} | {r.us_per_op * n:.1f} "
                     f"| {r.client_cpu_us * n:.1f} | {server} |")
    return "\n".join([*lines, "", core.format_ratio_table(ratios)])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_vector",
        description="Benchmark rlmesh vector envs (make_vec, a served SyncVectorEnv, a fleet "
                    "of single-env endpoints) against Gymnasium's Sync and Async vector envs, "
                    "as interleaved paired trials; rates are env-steps/s.",
    )
    core.add_run_arguments(parser, VECTOR_RUN)
    parser.add_argument("--pin", choices=PIN_CHOICES, default="none",
                        help="CPU placement: 'none' (default: the scheduler places the client "
                             "and the many server processes), 'same' (everything on one CPU) "
                             "or 'split' (client on one CPU, every server process on another)")
    core.add_json_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the vector benchmark; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if not core.resolve_run_arguments(args, VECTOR_RUN, "bench_vector"):
        return 2
    log = core.log
    placement = core.Placement.choose(args.pin)
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    log(f"rlmesh vector benchmark: {args.rounds} rounds of {args.trial_seconds:g} s trials, "
        f"{os.cpu_count()} CPUs, {core.PIN_TITLES[placement.mode]}: {placement.describe()}")
    with placement.client_side(), start_variants(placement) as variants:
        log(f"  started in {time.perf_counter() - started:.1f} s")
        by_key, all_rounds = core.run_rounds(
            variants, args.rounds, args.trial_seconds, args.warmup, log,
            order=VARIANT_ORDER, round_blocks=ROUND_BLOCKS, ratios=RATIOS)
    results = list(by_key.values())
    ratios = core.compute_ratios(all_rounds, RATIOS)
    note = (f"{placement.describe()}; {core.PIN_NOTES[placement.mode]}. {args.rounds} rounds "
            f"of {args.trial_seconds:g} s trials. Rates in env-steps/s (batch steps/s x envs); "
            f"CPU per batch step, server CPU summed over the server processes.")
    table = format_tables(f"Vector envs, {core.PIN_TITLES[placement.mode]}", note, results,
                          ratios)
    elapsed = time.perf_counter() - started
    print(table)
    log(f"done in {elapsed:.1f} s")
    if args.json:
        payload = {"meta": {**core._meta(args, argv, started_at, elapsed), "env_id": ENV_ID,
                            "op": "env step"},
                   "placements": [{**core._placement_meta(placement),
                                   "results": [r.to_json() for r in results],
                                   "ratios": ratios}]}
        core.write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
