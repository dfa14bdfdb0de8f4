"""What the compiled steps save: step exchanges with both sides in this process, then end to end.

Both ends of one connection live in this process, so nothing here waits for another CPU:
every exchange is the two sides' own work on a step, with the peer's half always done
first. An exchange is the server answering, the client sending its request and reading the
reply, and the server reading the request. Two transports:

* **link**: a same-host link's slot steps (a socket pair and one region, as
  ``tests/transport/test_fastslots.py`` builds them);
* **tcp**: fixed frames over a loopback TCP connection (``tests/transport/test_fastframes.py``).

Each runs two ways, in interleaved rounds:

* **python**: the pure-Python path (``SlotSteps`` and ``ShmLink``; ``StepFrames`` and
  ``Connection``);
* **compiled**: one call per side and step (``rlmesh.transport.fastslots``,
  ``rlmesh.transport.fastframes``).

The layouts are the verdicts' (``benchmarks/verdicts.py``): one CartPole, and Gymnasium's
``SyncVectorEnv(8)`` of CartPole as ``rlmesh serve --num-envs 8`` serves it. The ratio is
python / compiled time per exchange (higher: the compiled steps save more).

Then, end to end (``--end-to-end``, on by default), one client process steps two
``rlmesh serve`` children of each layout over each transport, in interleaved rounds with the
env stepped in this process: one child and this client's steps compiled, the other child
started with ``RLMESH_PURE_PYTHON=1`` and this client's steps on the Python path::

    uv run python benchmarks/bench_compiled.py                  # 9 rounds x 0.3 s
    uv run python benchmarks/bench_compiled.py --json compiled.json
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

from rlmesh.transport import fastframes, fastslots, shm, shmlink
from rlmesh.transport.stream import Connection
from rlmesh.wire.fixed import StepFrames, step_frames
from rlmesh.wire.slots import SlotSteps

Exchange = Callable[[int], None]


def _compiled(client: Any, server: Any, action: Any, results: tuple[Any, ...]) -> Exchange:
    """An exchange of the compiled steps: the server's put, the client's step, then take."""
    assert client is not None and server is not None
    step, put, take = client.step, server.put, server.take

    def exchange(rid: int) -> None:
        put(rid, *results)
        step(rid, action)
        take()

    return exchange


class Pair:
    """A client and a server link over one region, with both slot layouts and both steps."""

    transport = "link"

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
            link.enable_steps(*(() if fast is None else (fast.release,)), slots.release)

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
        return _compiled(self.fast_client, self.fast_server, action, results)


class FramePair:
    """A client and a server connection over loopback TCP, with both fixed-frame steps."""

    transport = "tcp"

    def __init__(self, observation: gym.Space[Any], action: gym.Space[Any],
                 num_envs: int | None) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            ours = socket.create_connection(listener.getsockname())
            theirs, _ = listener.accept()
        for sock in (ours, theirs):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client, self.server = Connection(ours, 1 << 24), Connection(theirs, 1 << 24)
        frames = step_frames(observation, action, num_envs)
        assert frames is not None
        self.frames: StepFrames = frames
        self.fast_client = fastframes.client_frames(self.client, frames, 1 << 24)
        self.fast_server = fastframes.server_frames(self.server, frames)

    def close(self) -> None:
        self.client.close()
        self.server.close()

    def python(self, action: Any, results: tuple[Any, ...]) -> Exchange:
        client, server, frames = self.client, self.server, self.frames

        def exchange(rid: int) -> None:
            server.send(*(frames.encode_reply([0, rid, *results]) or (b"", [], 0)))
            client.send(frames.encode_request(rid, action) or b"", [], 0, True)
            header, body = client.recv()
            frames.decode_reply(header, body)
            header, _ = server.recv()
            frames.decode_request(header)

        return exchange

    def compiled(self, action: Any, results: tuple[Any, ...]) -> Exchange:
        return _compiled(self.fast_client, self.fast_server, action, results)


def _layouts() -> dict[str, tuple[Pair | FramePair, Any, tuple[Any, ...]]]:
    """Each transport's pair for each layout (``"link cartpole"``...), an action, results."""
    one = gym.make("CartPole-v1")
    obs, _ = one.reset(seed=0)
    vector = gym.make_vec("CartPole-v1", 8, vectorization_mode="sync")
    batch, _ = vector.reset(seed=0)
    actions = np.zeros(8, np.int64)
    stepped = vector.step(actions)
    made: dict[str, tuple[Pair | FramePair, Any, tuple[Any, ...]]] = {}
    for kind in (Pair, FramePair):
        made[f"{kind.transport} cartpole"] = (
            kind(one.observation_space, one.action_space, None), 1, (obs, 1.0, False, False, {}))
        made[f"{kind.transport} sync_vector_8"] = (
            kind(vector.observation_space, vector.action_space, 8), actions,
            (batch, *stepped[1:4], {}))
    return made


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


def _stepper(env: Any, action: Any, vector: bool) -> Callable[[float], float]:
    """A trial of ``env``: steps per second over about ``seconds`` (resets where one ends)."""

    def trial(seconds: float) -> float:
        count, began = 0, time.perf_counter()
        while True:
            for _ in range(100):
                result = env.step(action)
                if not vector and (result[2] or result[3]):
                    env.reset()
            count += 100
            now = time.perf_counter()
            if now - began >= seconds:
                return count / (now - began)

    return trial


def end_to_end(rounds: int, seconds: float) -> dict[str, Any]:
    """Both sides compiled against both on the Python path, across processes (see above)."""
    from rlmesh.client.options import ConnectOptions
    from rlmesh.numpy import RemoteEnv, RemoteVectorEnv
    from rlmesh.testing import spawn_server

    report: dict[str, Any] = {}
    print("\nend to end: steps per second (median), ratios per round")
    print("| layout | in-process | compiled | python | compiled / python | "
          "compiled / in-process | python / in-process |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, num_envs, tcp in (("link cartpole", 0, False), ("link sync_vector_8", 8, False),
                                ("tcp cartpole", 0, True), ("tcp sync_vector_8", 8, True)):
        extra = ["--num-envs", str(num_envs)] if num_envs else []
        pure = {**os.environ, "RLMESH_PURE_PYTHON": "1"}
        servers = [spawn_server("CartPole-v1", extra_args=extra),
                   spawn_server("CartPole-v1", extra_args=extra, env=pure)]
        fast = "_fast_frames" if tcp else "_fast"  # (the channel's compiled step)
        envs: list[Any] = []
        try:
            make = RemoteVectorEnv if num_envs else RemoteEnv
            envs = [make(server.address, options=ConnectOptions(same_host=not tcp, timeout=10))
                    for server in servers]
            if getattr(envs[0]._channel, fast) is None:
                raise SystemExit(f"the compiled client step did not start ({name})")
            setattr(envs[1]._channel, fast, None)  # (this client's Python path)
            local: Any = (gym.make_vec("CartPole-v1", num_envs, vectorization_mode="sync")
                          if num_envs else gym.make("CartPole-v1"))
            action: Any = np.zeros(num_envs, np.int64) if num_envs else 1
            for env in (*envs, local):
                env.reset(seed=0)
            arms = {"in-process": _stepper(local, action, bool(num_envs)),
                    "compiled": _stepper(envs[0], action, bool(num_envs)),
                    "python": _stepper(envs[1], action, bool(num_envs))}
            for trial in arms.values():
                trial(0.1)
            rates: dict[str, list[float]] = {arm: [] for arm in arms}
            for r in range(rounds):
                for arm in (list(arms) if r % 2 == 0 else list(reversed(arms))):
                    rates[arm].append(arms[arm](seconds))
            local.close()
        finally:
            for env in envs:
                env.close()
            for server in servers:
                server.stop()

        report[name] = {arm: statistics.median(values) for arm, values in rates.items()}
        cells = []
        for top, bottom in (("compiled", "python"), ("compiled", "in-process"),
                            ("python", "in-process")):
            values = sorted(a / b for a, b in zip(rates[top], rates[bottom], strict=True))
            report[name][f"{top}/{bottom}"] = statistics.median(values)
            cells.append(f"{statistics.median(values):.3f} ({values[0]:.2f}-{values[-1]:.2f})")
        print(f"| {name} | " + " | ".join(f"{report[name][arm]:,.0f}" for arm in arms)
              + " | " + " | ".join(cells) + " |")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.3, help="per trial")
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--no-end-to-end", dest="end_to_end", action="store_false",
                        help="only the exchanges in this process")
    args = parser.parse_args(argv)
    for face in (fastslots, fastframes):
        if not face.ACCELERATED:
            print(f"the compiled steps of {face.__name__} are not available: "
                  f"{face.why_not()}", file=sys.stderr)
            return 2
    layouts = _layouts()
    report: dict[str, Any] = {"rounds": args.rounds, "seconds": args.seconds, "layouts": {}}
    print(f"step exchanges in one process: {args.rounds} rounds x {args.seconds} s")
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
    if args.end_to_end:
        report["end_to_end"] = end_to_end(args.rounds, args.seconds)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
