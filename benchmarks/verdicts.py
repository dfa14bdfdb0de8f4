"""The verdict set: every ratio the "close to the limit" goals are judged on, in one run.

One command measures, unpinned, with interleaved rounds (``bench_core.py``'s method: every
ratio is the median of its per-round ratios, the two halves of a pair back to back, odd
rounds in reverse order):

1. ``rlmesh.make_vec(8, local_envs=4)`` / in-process ``SyncVectorEnv(8)`` of CartPole (goal
   >= 1.0), and the same for a CartPole whose step costs 200 µs more CPU
   (``rlmesh.envs.CpuCost``; goal >= 1.8, the limit on 2 cores is 2.0): on two cores one
   worker steps half the sub-envs while the caller's core steps the other half. The default
   ``make_vec(8)`` (every sub-env in a worker) is measured beside them, as context;
2. a served ``SyncVectorEnv(8)`` over the same-host link / in-process (>= 0.9), and over
   loopback TCP without shared memory / in-process (>= 0.75);
3. one CartPole over the same-host link / in-process (>= 0.5);
4. 224x224x3 frames over TCP (sockets only) and over the same-host link / a raw TCP
   ping-pong of the same payload (>= 0.8 and >= 1.5).

The anchors of ``bench_anchors.py`` (EnvPool, Gymnasium's ``AsyncVectorEnv``) run in the same
rounds as context; EnvPool only when importable. The report (Markdown on stdout) is rendered
from the JSON payload, which ``--json`` saves; ``--from-json`` renders a saved one again, and
``tools/charts.py`` draws the verdict chart from either::

    uv run --with envpool python benchmarks/verdicts.py                 # 9 rounds x 0.3 s
    uv run --with envpool python benchmarks/verdicts.py --rounds 7 --json verdicts.json
    uv run python benchmarks/verdicts.py --from-json verdicts.json      # the report again
    uv run --with envpool python benchmarks/verdicts.py --builds 3      # 3 fresh builds

Each server process (and each in-process env) draws its own speed, a little faster or slower
for its whole life; ``--builds K`` shares the rounds among K builds of every variant, each
with fresh processes and envs, so that no one draw decides a ratio.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

try:
    from benchmarks import bench_anchors as anchors
    from benchmarks import bench_core as core
    from benchmarks import bench_vector as vector
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import bench_anchors as anchors  # type: ignore[no-redef,import-not-found,unused-ignore]
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]
    import bench_vector as vector  # type: ignore[no-redef,import-not-found,unused-ignore]

ENV_ID = anchors.ENV_ID
NUM_ENVS = anchors.NUM_ENVS
BUSY_US = 200.0
IMAGE_SHAPE = (224, 224, 3)
VERDICT_RUN = core.RunDefaults(rounds=9, quick_rounds=3, trial_seconds=0.3,
                               quick_trial_seconds=0.1)
MIN_ROUNDS = 7  # the goals are judged on at least this many rounds
LOCAL_ENVS = NUM_ENVS // 2
"""Sub-envs the caller steps itself in the goals' ``make_vec`` (``local_envs``)."""


def _busy_wrappers() -> list[Any]:
    from rlmesh.envs import CpuCost

    return [functools.partial(CpuCost, cost_us=BUSY_US)]


def busy_sync(build: anchors.Build) -> core.Variant:
    env = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="sync", wrappers=_busy_wrappers())
    build.stack.callback(env.close)
    return vector.vector_variant("busy_sync", f"in-process SyncVectorEnv({NUM_ENVS}), "
                                 f"CartPole + {BUSY_US:g} µs CPU", env, None,
                                 build.vector_actions())


def busy_make_vec(build: anchors.Build) -> core.Variant:
    return anchors.make_vec_variant(build, "busy_make_vec", 0, _busy_wrappers(),
                                    f", CartPole + {BUSY_US:g} µs CPU")


def busy_make_vec_local(build: anchors.Build) -> core.Variant:
    return anchors.make_vec_variant(build, "busy_make_vec_local", LOCAL_ENVS, _busy_wrappers(),
                                    f", CartPole + {BUSY_US:g} µs CPU")


def make_vec_local(build: anchors.Build) -> core.Variant:
    return anchors.make_vec_variant(build, "make_vec_local", LOCAL_ENVS)


def lean_inprocess(build: anchors.Build) -> core.Variant:
    """rlmesh's shorter ``SyncVectorEnv`` loop in this process (what make_vec's workers run)."""
    from rlmesh.server.sync_vector import LeanSyncVectorEnv

    env = LeanSyncVectorEnv([functools.partial(gym.make, ENV_ID)] * NUM_ENVS)
    build.stack.callback(env.close)
    return vector.vector_variant("lean_inprocess", f"in-process LeanSyncVectorEnv({NUM_ENVS})",
                                 env, None, build.vector_actions())


def busy_inprocess(build: anchors.Build) -> core.Variant:
    """One busy CartPole in this process: its row is the env's own cost per step."""
    env = _busy_wrappers()[0](gym.make(ENV_ID))
    build.stack.callback(env.close)
    stepper = core.EnvStepper(env, build.single_actions())
    return core.Variant("busy_inprocess", f"CartPole + {BUSY_US:g} µs CPU, in-process",
                        stepper, stepper=stepper,
                        extra={"num_envs": 1, "server_processes": 0, "op": "env step"})


def _served(build: anchors.Build, same_host: bool, key: str, label: str) -> core.Variant:
    env, pid = vector.served_sync_vector(build.stack, build.placement, same_host)
    return vector.vector_variant(key, f"served SyncVectorEnv({NUM_ENVS}), {label}", env, pid,
                                 build.vector_actions())


def served_link(build: anchors.Build) -> core.Variant:
    return _served(build, True, "served_link", "TCP address (same-host link)")


def served_sockets(build: anchors.Build) -> core.Variant:
    return _served(build, False, "served_sockets", "TCP sockets only")


def _image_actions(build: anchors.Build) -> list[Any]:
    return build.actions(gym.spaces.Discrete(4), "image")


def raw_payload(build: anchors.Build) -> core.Variant:
    variant = core.raw_payload_variant(build.stack, build.placement, IMAGE_SHAPE,
                                       _image_actions(build))
    variant.key = "raw_payload"
    return variant


def _image(build: anchors.Build, same_host: bool, key: str, label: str) -> core.Variant:
    height, width, channels = IMAGE_SHAPE
    return core.rlmesh_variant(
        build.stack, build.placement, key, f"Image {height}x{width}x{channels} rlmesh {label}",
        "rlmesh.envs:ImageEnv", _image_actions(build), same_host=same_host,
        address=build.address(key) if same_host else "127.0.0.1:0",
        kwargs={"height": height, "width": width, "channels": channels},
        extra={"payload_bytes": height * width * channels})


def image_tcp(build: anchors.Build) -> core.Variant:
    return _image(build, False, "image_tcp", "TCP (sockets only)")


def image_link(build: anchors.Build) -> core.Variant:
    return _image(build, True, "image_link", "same-host link (unix)")


BUILDERS: dict[str, anchors.Builder] = {
    **anchors.ANCHOR_BUILDERS,  # the forking AsyncVectorEnv first
    "busy_sync": busy_sync,
    "busy_make_vec": busy_make_vec,
    "make_vec_local": make_vec_local,
    "lean_inprocess": lean_inprocess,
    "busy_make_vec_local": busy_make_vec_local,
    "busy_inprocess": busy_inprocess,
    "served_link": served_link,
    "served_sockets": served_sockets,
    "raw_payload": raw_payload,
    "image_tcp": image_tcp,
    "image_link": image_link,
}

ROUND_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("sync_inprocess", "make_vec_local"),
    ("lean_inprocess", "make_vec_local"),
    ("sync_inprocess", "lean_inprocess"),
    ("busy_sync", "busy_make_vec_local"),
    ("sync_inprocess", "make_vec"),
    ("busy_sync", "busy_make_vec"),
    ("sync_inprocess", "served_link"),
    ("sync_inprocess", "served_sockets"),
    ("cartpole_inprocess", "cartpole_link"),
    ("raw_payload", "image_tcp"),
    ("raw_payload", "image_link"),
    ("busy_inprocess",),
    ("envpool_sync", "envpool_async"),
    ("async_gym",),
)

VERDICTS: tuple[core.RatioSpec, ...] = (
    ("make_vec_local", "sync_inprocess", 1.0,
     f"rlmesh.make_vec(8, local_envs={LOCAL_ENVS}) / in-process SyncVectorEnv(8), CartPole"),
    ("busy_make_vec_local", "busy_sync", 1.8,
     f"rlmesh.make_vec(8, local_envs={LOCAL_ENVS}) / in-process SyncVectorEnv(8), "
     f"CartPole + {BUSY_US:g} µs"),
    ("served_link", "sync_inprocess", 0.9,
     "served SyncVectorEnv(8), same-host link / in-process"),
    ("served_sockets", "sync_inprocess", 0.75,
     "served SyncVectorEnv(8), TCP sockets only / in-process"),
    ("cartpole_link", "cartpole_inprocess", 0.5,
     "one CartPole, same-host link / in-process"),
    ("image_tcp", "raw_payload", 0.8,
     "224x224x3, TCP (sockets only) / raw TCP ping-pong 224x224x3"),
    ("image_link", "raw_payload", 1.5,
     "224x224x3, same-host link / raw TCP ping-pong 224x224x3"),
)

CONTEXT: tuple[core.RatioSpec, ...] = (
    *(spec for spec in anchors.ANCHOR_RATIOS if spec[:2] not in {v[:2] for v in VERDICTS}),
    ("busy_make_vec", "busy_sync", None,
     f"rlmesh.make_vec(8) / in-process SyncVectorEnv(8), CartPole + {BUSY_US:g} µs"),
    ("make_vec_local", "lean_inprocess", None,
     f"rlmesh.make_vec(8, local_envs={LOCAL_ENVS}) / in-process LeanSyncVectorEnv(8)"),
    ("lean_inprocess", "sync_inprocess", None,
     "in-process LeanSyncVectorEnv(8) / in-process SyncVectorEnv(8)"),
)


# -- the report, rendered from the JSON payload alone -------------------------------------------


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def verdict_status(ratio: dict[str, Any], min_rounds: int = MIN_ROUNDS) -> str:
    """``meets goal``, ``below goal``, ``info`` (no goal) or ``too few rounds``."""
    if ratio.get("target") is None:
        return "info"
    if int(ratio["rounds"]) < min_rounds:
        return "too few rounds"
    return "meets goal" if ratio["ratio"] >= ratio["target"] else "below goal"


def verdict_table(ratios: Sequence[dict[str, Any]], min_rounds: int = MIN_ROUNDS) -> str:
    """Markdown: one row per ratio (``core.compute_ratios`` dicts), goal and spread."""
    lines = ["| ratio (median of per-round ratios) | goal | median | IQR | min-max "
             "| rounds >= goal | verdict |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for q in ratios:
        goal = "-" if q.get("target") is None else f">= {q['target']:.2f}"
        at = "-" if q.get("rounds_at_target") is None \
            else f"{q['rounds_at_target']}/{q['rounds']}"
        status = verdict_status(q, min_rounds)
        shown = f"**{status}**" if status in ("meets goal", "below goal") else status
        lines.append(f"| {q['label']} | {goal} | {_fmt(q['ratio'])} | {_fmt(q['q1'])}-"
                     f"{_fmt(q['q3'])} | {_fmt(q['min'])}-{_fmt(q['max'])} | {at} | {shown} |")
    return "\n".join(lines)


def variants_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per variant (``core.Result.to_json`` dicts) in env-steps/s."""
    lines = ["| benchmark | envs | median steps/s | IQR steps/s | µs/step | client CPU µs/step "
             "| server CPU µs/step |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        server = r.get("server_cpu_us_per_op")
        lines.append(f"| {r['name']} | {r.get('num_envs', 1)} | {r['ops_per_s_median']:,.0f} "
                     f"| {r['ops_per_s_q1']:,.0f}-{r['ops_per_s_q3']:,.0f} "
                     f"| {r['us_per_op']:.2f} | {_fmt(r['client_cpu_us_per_op'], 2)} "
                     f"| {_fmt(server, 2)} |")
    return "\n".join(lines)


def _load(meta: dict[str, Any]) -> str:
    load = meta.get("load_average")
    return "" if not load else f" (1-minute load average {load[0]:.2f} before, {load[1]:.2f} after)"


HOST_LOOP_NS = 40.0
"""A bare Python loop's ns per iteration on the host the goals were set on (runs 4-15)."""
HOST_LOOP_PYTHON = "3.11"
"""The Python that reading was taken with (another version runs the loop at its own speed)."""
DEGRADED = 1.5
"""A host whose bare loop reads this many times :data:`HOST_LOOP_NS` or more is degraded."""


_LOOP = compile("s = 0\nfor i in range(n):\n    s += i\n", "<bare loop>", "exec")
"""The loop at a module's top level (its names in a dict), as the reference was read."""


def bare_loop_ns(iterations: int = 1_000_000, repeat: int = 5) -> float:
    """The host's speed at Python: ns per iteration of ``s += i`` (the best of ``repeat``)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        exec(_LOOP, {"n": iterations})  # (this module's own constant code)
        best = min(best, (time.perf_counter_ns() - started) / iterations)
    return round(best, 1)


def _host_speed(meta: dict[str, Any]) -> str:
    """The report's sentence on the host's speed (none for payloads that did not record it)."""
    loop = meta.get("bare_loop_ns")
    if not loop:
        return ""
    python = str(meta.get("python", HOST_LOOP_PYTHON))
    said = (f" A bare Python loop (`s += i`) took {loop[0]:g} ns per iteration before the run "
            f"and {loop[1]:g} after (Python {python})")
    if python.split(".")[:2] != HOST_LOOP_PYTHON.split("."):
        return said + f"; the reference reading was taken with Python {HOST_LOOP_PYTHON}."
    said += f", against about {HOST_LOOP_NS:g} on the host the goals were set on"
    if min(loop) >= DEGRADED * HOST_LOOP_NS:
        return said + ": **a degraded host, so these ratios are readings, not verdicts.**"
    return said + "."


def _builds(meta: dict[str, Any]) -> str:
    builds = int(meta.get("builds", 1))
    return (f" shared among {builds} builds (fresh server processes, workers and envs each)"
            if builds > 1 else "")


def _congestion(meta: dict[str, Any]) -> str:
    name = meta.get("tcp_congestion_control")
    return "" if not name else f"host TCP congestion control {name}, "


def shown_command(command: str) -> str:
    """The command line with file paths cut to their names (no machine paths in reports)."""
    return " ".join(os.path.basename(word) if os.sep in word and not word.startswith("benchmarks")
                    else word for word in command.split())


def render(payload: dict[str, Any]) -> str:
    """The Markdown report of a verdict run, from its JSON payload alone."""
    meta = payload["meta"]
    verdicts = payload["verdicts"]
    met = sum(verdict_status(q) == "meets goal" for q in verdicts)
    parts = [
        f"{meta['date']}, {meta['placement']}, {meta['cpu_count']} CPUs"
        f"{_load(meta)}, {_congestion(meta)}"
        f"{meta['rounds']} interleaved rounds of {meta['trial_seconds']:g} s trials"
        f"{_builds(meta)} "
        f"(`{shown_command(meta['command'])}`). Each ratio: the median of its per-round "
        f"ratios, with their IQR and min-max; a goal needs >= {MIN_ROUNDS} rounds. "
        f"**{met} of {len(verdicts)} goals met.**{_host_speed(meta)}",
        verdict_table(verdicts),
        "Context (no goal):",
        verdict_table(payload["context"]),
        "Variants (rates in env-steps/s; CPU per env step, server CPU summed over its "
        "processes):",
        variants_table(payload["results"]),
    ]
    parts += [f"Left out: `{key}`: {why}" for key, why in payload.get("missing", {}).items()]
    return "\n\n".join(parts)


def load(path: str) -> dict[str, Any]:
    """A payload written by ``--json``; ``ValueError`` when it is not one."""
    with open(path) as handle:
        payload = json.load(handle)
    if not isinstance(payload, dict) or not {"meta", "verdicts", "context",
                                             "results"} <= payload.keys():
        raise ValueError(f"{path}: not a verdicts.py JSON payload")
    return payload


# -- the run -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verdicts", description="Run the verdict set (vector envs, served envs, one env, "
                                     "224x224x3 frames against their anchors), unpinned, as "
                                     "interleaved rounds; print the Markdown report.")
    core.add_run_arguments(parser, VERDICT_RUN)
    core.add_json_argument(parser)
    parser.add_argument("--builds", type=int, default=1, metavar="K",
                        help="share the rounds among K fresh builds of every variant (new "
                             "server processes, workers and envs each; default 1)")
    parser.add_argument("--from-json", metavar="PATH", default=None,
                        help="print the report of a saved --json payload and exit")
    return parser


def split_rounds(rounds: int, builds: int) -> list[int]:
    """Rounds per build: ``rounds`` shared as evenly as they go, the first builds one more."""
    builds = max(1, min(builds, rounds))
    return [rounds // builds + (b < rounds % builds) for b in range(builds)]


def _measure_build(placement: core.Placement, args: argparse.Namespace, rounds: int,
                   first_round: int
                   ) -> tuple[dict[str, core.Result], core.RoundTrials, list[core.RatioSpec],
                              dict[str, str], list[str]]:
    """Build every variant afresh (new servers, workers and envs), run ``rounds`` rounds."""
    started = time.perf_counter()
    with anchors.Build.open(placement) as build:
        variants, missing = anchors.build_variants(build, BUILDERS, core.log)
        blocks, specs = anchors.runnable(ROUND_BLOCKS, VERDICTS + CONTEXT, variants)
        order = [key for key in BUILDERS if key in variants]
        core.log(f"  started in {time.perf_counter() - started:.1f} s")
        by_key, trials = core.run_rounds(variants, rounds, args.trial_seconds, args.warmup,
                                         core.log, order=order, round_blocks=blocks,
                                         ratios=specs, first_round=first_round,
                                         total_rounds=args.rounds)
    return by_key, trials, specs, missing, order


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """Build every variant, run the rounds; returns the JSON payload.

    With ``--builds K`` the rounds are shared among K builds, each with its own server
    processes, workers and in-process envs, so no one process's draw of speed decides them.
    """
    placement = core.Placement.choose("none")
    load_before = os.getloadavg()[0]
    loop_before = bare_loop_ns()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    shares = split_rounds(args.rounds, args.builds)
    core.log(f"verdicts: {args.rounds} rounds of {args.trial_seconds:g} s trials"
             f"{f' over {len(shares)} builds' if len(shares) > 1 else ''}, "
             f"{os.cpu_count()} CPUs, {placement.describe()}")
    by_key: dict[str, core.Result] = {}
    rounds: core.RoundTrials = []
    specs: list[core.RatioSpec] = []
    missing: dict[str, str] = {}
    order: list[str] = []
    with placement.client_side():
        for share in shares:
            built, trials, specs, missing, order = _measure_build(placement, args, share,
                                                                  len(rounds))
            for key, result in built.items():
                if key in by_key:
                    by_key[key].trials.extend(result.trials)
                else:
                    by_key[key] = result
            rounds.extend(trials)
    ratios = core.compute_ratios(rounds, specs)
    goals = {spec[:2] for spec in VERDICTS}
    elapsed = time.perf_counter() - started
    runner = "uv run python" if "envpool_sync" in missing else "uv run --with envpool python"
    command = f"{runner} benchmarks/verdicts.py " + " ".join(argv)
    return {
        "meta": {**core._meta(args, argv, started_at, elapsed), "env_id": ENV_ID,
                 "busy_us": BUSY_US, "placement": placement.describe(),
                 "builds": len(shares), "command": command.strip(),
                 "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                 "bare_loop_ns": [loop_before, bare_loop_ns()],
                 "python": platform.python_version()},
        "verdicts": [q for q in ratios if (q["numerator"], q["denominator"]) in goals],
        "context": [q for q in ratios if (q["numerator"], q["denominator"]) not in goals],
        "results": [by_key[key].to_json() for key in order if key in by_key],
        "missing": missing,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verdict set (or render a saved one); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.from_json:
        print(render(load(args.from_json)))
        return 0
    if not core.resolve_run_arguments(args, VERDICT_RUN, "verdicts"):
        return 2
    if args.builds < 1:
        print("verdicts: --builds must be >= 1", file=sys.stderr)
        return 2
    payload = run(args, argv)
    print(render(payload))
    core.log(f"done in {payload['meta']['elapsed_seconds']:.1f} s")
    if args.json:
        core.write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
