"""What the compiled slot steps save: one link's step exchanges, both sides in this process.

Both ends of one same-host link live in this process (a socket pair and one region, as
``tests/transport/test_fastslots.py`` builds them), so nothing here waits for another CPU:
every exchange is the two sides' own work on a slot step, with the peer's half always done
first. An exchange is the server writing and announcing the reply, the client writing and
announcing its request and reading the reply, and the server reading the request. It runs
two ways, in interleaved rounds:

* **python**: ``SlotSteps`` and ``ShmLink`` (the pure-Python path);
* **compiled**: ``ClientSteps.step``, ``ServerSteps.put`` and ``ServerSteps.take``
  (``rlmesh.transport.fastslots``).

The layouts are the verdicts' (``benchmarks/verdicts.py``): one CartPole, and Gymnasium's
``SyncVectorEnv(8)`` of CartPole as ``rlmesh serve --num-envs 8`` serves it. The ratio is
python / compiled time per exchange (higher: the compiled steps save more)::

    uv run python benchmarks/bench_slots.py                  # 9 rounds x 0.3 s
    uv run python benchmarks/bench_slots.py --json slots.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlmesh.transport import fastslots, shm, shmlink
from rlmesh.transport.stream import Connection
from rlmesh.wire.fixed import step_frames
from rlmesh.wire.slots import SlotSteps

Exchange = Callable[[int], None]


class Pair:
    """A client and a server link over one region, with both slot layouts and both steps."""

    def __init__(self, observation: gym.Space[Any], action: gym.Space[Any],
                 num_envs: int | None) -> None:
        size = 1 << 20
        ours, theirs = socket.socketpair()
        region = shm.ShmRegion.create(size)
        assert region.fd is not None
        self.client = shmlink.ShmLink(Connection(ours, 1 << 24), region, "client")
        self.server = shmlink.ShmLink(
            Connection(theirs, 1 << 24), shm.ShmRegion(os.dup(region.fd), size), "server")
        frames = step_frames(observation, action, num_envs)
        assert frames is not None
        self.mine = SlotSteps(frames, *self.client.slot_views(), kind=shmlink.KIND_STEP)
        self.theirs = SlotSteps(frames, *self.server.slot_views(), kind=shmlink.KIND_STEP)
        self.fast_client = fastslots.client_steps(self.client, self.mine)
        self.fast_server = fastslots.server_steps(self.server, self.theirs)
        for link, slots, fast in ((self.client, self.mine, self.fast_client),
                                  (self.server, self.theirs, self.fast_server)):
            link.enable_steps(_release(slots, fast))

    def close(self) -> None:
        self.client.close()
        self.server.close()

    def python(self, action: Any, results: tuple[Any, ...]) -> Exchange:
        client, server, mine, theirs = self.client, self.server, self.mine, self.theirs

        def exchange(rid: int) -> None:
            theirs.write_result(rid, *results)
            server.send_written()
            mine.write_request(rid, action)
            client.send_written()
            client.recv()
            mine.read_reply(rid)
            server.recv()
            theirs.read_step()

        return exchange

    def compiled(self, action: Any, results: tuple[Any, ...]) -> Exchange:
        fast_client, fast_server = self.fast_client, self.fast_server
        assert fast_client is not None and fast_server is not None
        step, put, take = fast_client.step, fast_server.put, fast_server.take

        def exchange(rid: int) -> None:
            put(rid, *results)
            step(rid, action)
            take()

        return exchange


def _release(slots: SlotSteps, fast: Any) -> Callable[[], None]:
    def release() -> None:
        if fast is not None:
            fast.release()
        slots.release()

    return release


def _layouts() -> dict[str, tuple[Pair, Any, tuple[Any, ...]]]:
    one = gym.make("CartPole-v1")
    obs, _ = one.reset(seed=0)
    vector = gym.make_vec("CartPole-v1", 8, vectorization_mode="sync")
    batch, _ = vector.reset(seed=0)
    actions = np.zeros(8, np.int64)
    stepped = vector.step(actions)
    return {
        "cartpole": (Pair(one.observation_space, one.action_space, None), 1,
                     (obs, 1.0, False, False, {})),
        "sync_vector_8": (Pair(vector.observation_space, vector.action_space, 8), actions,
                          (batch, *stepped[1:4], {})),
    }


def _trial(exchange: Exchange, seconds: float, start: int) -> tuple[float, int]:
    """Nanoseconds per exchange over about ``seconds``; the next request id."""
    rid, count = start, 0
    began = time.perf_counter_ns()
    stop = began + int(seconds * 1e9)
    while True:
        for _ in range(200):
            exchange(rid)
            rid += 1
        count += 200
        now = time.perf_counter_ns()
        if now >= stop:
            return (now - began) / count, rid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.3, help="per trial")
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not fastslots.ACCELERATED:
        print(f"the compiled slot steps are not available: {fastslots.why_not()}",
              file=sys.stderr)
        return 2
    layouts = _layouts()
    report: dict[str, Any] = {"rounds": args.rounds, "seconds": args.seconds, "layouts": {}}
    print(f"slot-step exchanges in one process: {args.rounds} rounds x {args.seconds} s")
    print("| layout | python µs | compiled µs | python / compiled (median, min-max) |")
    print("|---|---:|---:|---:|")
    try:
        for name, (pair, action, results) in layouts.items():
            arms = {"python": pair.python(action, results),
                    "compiled": pair.compiled(action, results)}
            rid = 0
            for exchange in arms.values():  # (warm-up)
                _, rid = _trial(exchange, 0.1, rid)
            times: dict[str, list[float]] = {arm: [] for arm in arms}
            for r in range(args.rounds):
                for arm in (list(arms) if r % 2 == 0 else list(reversed(arms))):
                    ns, rid = _trial(arms[arm], args.seconds, rid)
                    times[arm].append(ns)
            ratios = sorted(p / c for p, c in zip(times["python"], times["compiled"],
                                                  strict=True))
            row = {arm: statistics.median(values) / 1000 for arm, values in times.items()}
            report["layouts"][name] = {**row, "ratio": statistics.median(ratios),
                                       "ratio_min": ratios[0], "ratio_max": ratios[-1],
                                       "trials_ns": times}
            print(f"| {name} | {row['python']:.2f} | {row['compiled']:.2f} | "
                  f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}) |")
    finally:
        for pair, _, _ in layouts.values():
            pair.close()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
