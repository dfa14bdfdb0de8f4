"""A/B of a server-side change: the same client steps servers of two source trees, in turns.

A change on the server's side of a step moves the step by a microsecond or less, while this
host drifts by more between two runs, and each process draws a speed of its own for its
life. So one client process (this tree's) steps servers of both trees, started side by side,
in interleaved blocks (every other round in reverse order), and each block's median step
latency is kept: the per-tree figure is the median of its blocks. What differs between the
two columns is the server's code, nothing else::

    git worktree add /tmp/base HEAD~1 && (cd /tmp/base && uv sync)   # the other tree, built
    uv run python benchmarks/ab_servers.py --base /tmp/base/src
    uv run python benchmarks/ab_servers.py --base /tmp/base/src --kinds vec_link --blocks 30

``--base`` is the other tree's ``src`` folder (its compiled extensions built in place); the
servers of each tree import rlmesh from their own. Kinds: ``one_link`` and ``one_tcp`` (one
CartPole), ``vec_link`` and ``vec_tcp`` (a served ``SyncVectorEnv(8)`` of CartPole); ``link``
is the same-host link, ``tcp`` loopback TCP without it.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    from benchmarks import bench_core as core
    from benchmarks import bench_vector as vector
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]
    import bench_vector as vector  # type: ignore[no-redef,import-not-found,unused-ignore]

KINDS = ("vec_link", "vec_tcp", "one_link", "one_tcp")
ENV_ID = vector.ENV_ID
HERE = str(Path(__file__).resolve().parent.parent / "src")
"""This tree's ``src`` folder (the ``head`` servers import rlmesh from it)."""


def start(stack: contextlib.ExitStack, kind: str, src: str) -> Any:
    """A server of ``kind`` importing rlmesh from ``src``, and this process's client of it."""
    same_host = kind.endswith("link")
    with core._environ("PYTHONPATH", src):  # (the children's import path; not this process's)
        if kind.startswith("vec"):
            env = vector.served_sync_vector(stack, core.NO_PINNING, same_host)[0]
        else:
            env = stack.enter_context(core.rlmesh_env(ENV_ID, same_host=same_host))[0]
    if env.contract.get("shm_link") is not same_host:
        raise RuntimeError(f"{kind}: unexpected transport (shm_link "
                           f"{env.contract.get('shm_link')})")
    env.reset(seed=1)
    return env


def block(env: Any, vector: bool, actions: list[Any]) -> float:
    """The median µs of one step over ``actions`` (one CartPole resets where it ends)."""
    now = time.perf_counter_ns
    step = env.step
    took = []
    for action in actions:
        t0 = now()
        result = step(action)
        took.append(now() - t0)
        if not vector and (result[2] or result[3]):
            env.reset()
    return statistics.median(took) / 1000


def run(trees: dict[str, str], kinds: Sequence[str], blocks: int, steps: int
        ) -> dict[str, dict[str, list[float]]]:
    """Per kind and tree, the median step latency (µs) of each block."""
    rng = np.random.default_rng(0)
    vector_actions = [rng.integers(0, 2, 8) for _ in range(steps)]
    one_actions = [int(a) for a in rng.integers(0, 2, steps)]
    with contextlib.ExitStack() as stack:
        envs = {(kind, tree): start(stack, kind, src)
                for kind in kinds for tree, src in trees.items()}
        out: dict[str, dict[str, list[float]]] = {k: {t: [] for t in trees} for k in kinds}
        order = list(envs.items())
        for b in range(blocks + 1):  # (the first round warms up, and is dropped)
            for (kind, tree), env in (order if b % 2 else order[::-1]):
                vector = kind.startswith("vec")
                median = block(env, vector, vector_actions if vector else one_actions)
                if b:
                    out[kind][tree].append(median)
    return out


def report(result: dict[str, dict[str, list[float]]]) -> str:
    """A Markdown table: per kind, each tree's median of block medians and their range."""
    trees = list(next(iter(result.values())))
    lines = ["| kind | " + " | ".join(f"{t} µs/step (blocks min-max)" for t in trees)
             + " | change |", "|---|" + "---:|" * (len(trees) + 1)]
    for kind, per_tree in result.items():
        medians = [statistics.median(per_tree[t]) for t in trees]
        cells = [f"{m:.2f} ({min(per_tree[t]):.2f}-{max(per_tree[t]):.2f})"
                 for m, t in zip(medians, trees, strict=True)]
        change = f"{(medians[-1] / medians[0] - 1) * 100:+.1f}%" if len(trees) == 2 else "-"
        lines.append(f"| {kind} | " + " | ".join(cells) + f" | {change} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Step servers of the ``--base`` tree and of this one in turns; print the table."""
    parser = argparse.ArgumentParser(prog="ab_servers", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, metavar="SRC",
                        help="the other tree's src folder (extensions built in place)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated, of {', '.join(KINDS)} (default: all)")
    parser.add_argument("--blocks", type=int, default=20, help="rounds of blocks (default 20)")
    parser.add_argument("--steps", type=int, default=2000, help="steps per block (default 2000)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    if not (Path(args.base) / "rlmesh" / "__init__.py").is_file():
        parser.error(f"{args.base} is not a source tree's src folder (no rlmesh package)")
    result = run({"base": args.base, "head": HERE}, kinds, args.blocks, args.steps)
    print(f"{args.blocks} rounds of {args.steps}-step blocks, one client, servers of "
          f"{args.base} (base) and {HERE} (head)\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
