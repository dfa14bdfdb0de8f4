"""The floor of a Python step across processes: what no Python protocol can beat on this host.

Each floor is a pair of processes that do nothing a protocol does: no ids, no codec, no
checks, no errors, no wake-ups. The client writes the raw action bytes, the server steps the
env and writes the raw result bytes back, and each side polls for the other in a tight loop
(shared memory, or a non-blocking loopback TCP socket). The envs, seeds and actions are
the verdicts' (``benchmarks/verdicts.py``): one CartPole, and Gymnasium's
``SyncVectorEnv(8)`` of CartPole. Every ratio is floor / in-process, the median of
interleaved rounds, so it bounds the verdict ratio of the same name from above::

    uv run python benchmarks/python_floor.py              # 7 rounds x 0.3 s
    uv run python benchmarks/python_floor.py --json floor.json
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "CartPole-v1"
NUM_ENVS = 8
_REQ, _REP = 0, 16  # uint32 sequence words, a cache line apart
_STOP = -1


def _single_server(buf: mmap.mmap) -> None:
    """Step one CartPole for every announced action (shared memory, polling)."""
    ctl = memoryview(buf).cast("I")
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    seq = 0
    while True:
        seq += 1
        while ctl[_REQ] != seq:
            pass
        action = struct.unpack_from("<q", buf, 128)[0]
        if action == _STOP:
            return
        obs, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
        buf[256:272] = obs.tobytes()
        struct.pack_into("<d??", buf, 272, reward, terminated, truncated)
        ctl[_REP] = seq


def _vector_reply(env: Any, actions: np.ndarray[Any, Any]) -> bytes:
    obs, rewards, terminated, truncated, _ = env.step(actions)
    return b"".join((obs.tobytes(), rewards.tobytes(), terminated.tobytes(),
                     truncated.tobytes()))


def _vector_shm_server(buf: mmap.mmap) -> None:
    """Step a SyncVectorEnv(8) for every announced batch (shared memory, polling)."""
    ctl = memoryview(buf).cast("I")
    env = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="sync")
    env.reset(seed=0)
    actions = np.frombuffer(buf, np.int64, NUM_ENVS, 128)
    seq = 0
    while True:
        seq += 1
        while ctl[_REQ] != seq:
            pass
        if actions[0] == _STOP:
            return
        reply = _vector_reply(env, actions.copy())
        buf[256 : 256 + len(reply)] = reply
        ctl[_REP] = seq


def _vector_tcp_server(listener: socket.socket) -> None:
    """Step a SyncVectorEnv(8) for every batch received on a loopback TCP connection."""
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.setblocking(False)
    env = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="sync")
    env.reset(seed=0)
    request = bytearray(8 * NUM_ENVS)
    while True:
        _recv_exactly(conn, request)
        actions = np.frombuffer(request, np.int64).copy()
        if actions[0] == _STOP:
            return
        _send_all(conn, _vector_reply(env, actions))


def _recv_exactly(conn: socket.socket, into: bytearray) -> None:
    """Poll the non-blocking socket until ``into`` is full (no sleep, no wake-up)."""
    view, got = memoryview(into), 0
    while got < len(into):
        try:
            n = conn.recv_into(view[got:])
        except BlockingIOError:
            continue
        if not n:
            raise ConnectionError("the floor's server hung up")
        got += n


def _send_all(conn: socket.socket, data: bytes) -> None:
    """Send all of ``data`` on a non-blocking socket (a few hundred bytes: one call)."""
    view = memoryview(data)
    while view:
        try:
            view = view[conn.send(view):]
        except BlockingIOError:
            continue


def _fork(serve: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # the server child: serve, then leave without running the parent's exits
        code = 0
        try:
            serve()
        except BaseException:
            code = 1
        os._exit(code)
    return pid


class Floor:
    """One floor pair: ``step()`` one round trip, ``close()`` stops the child."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.seq = 0
        self.sock: socket.socket | None = None
        vector = kind != "single"
        self.reply = bytearray(NUM_ENVS * (16 + 8 + 2)) if vector else bytearray()
        if kind == "vector_tcp":
            listener = socket.create_server(("127.0.0.1", 0))
            self.pid = _fork(lambda: _vector_tcp_server(listener))
            self.sock = socket.create_connection(listener.getsockname(), timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.setblocking(False)
            listener.close()
            self.step = self._tcp_step
            return
        self.buf = mmap.mmap(-1, 4096)
        self.ctl = memoryview(self.buf).cast("I")
        buf = self.buf
        self.pid = _fork(lambda: (_vector_shm_server if vector else _single_server)(buf))
        self.step = self._vector_shm_step if vector else self._single_step

    def _announce(self) -> None:
        self.seq += 1
        self.ctl[_REQ] = self.seq
        while self.ctl[_REP] != self.seq:
            pass

    def _single_step(self) -> None:
        struct.pack_into("<q", self.buf, 128, 0)
        self._announce()
        np.frombuffer(self.buf, np.float32, 4, 256).copy()
        struct.unpack_from("<d??", self.buf, 272)

    def _vector_shm_step(self) -> None:
        self.buf[128 : 128 + 8 * NUM_ENVS] = bytes(8 * NUM_ENVS)
        self._announce()
        self._split(bytes(self.buf[256 : 256 + len(self.reply)]))

    def _tcp_step(self) -> None:
        assert self.sock is not None
        _send_all(self.sock, bytes(8 * NUM_ENVS))
        _recv_exactly(self.sock, self.reply)
        self._split(self.reply)

    @staticmethod
    def _split(data: bytes | bytearray) -> None:
        obs = np.frombuffer(data, np.float32, 4 * NUM_ENVS).reshape(NUM_ENVS, 4).copy()
        np.frombuffer(data, np.float64, NUM_ENVS, obs.nbytes).copy()
        np.frombuffer(data, np.bool_, 2 * NUM_ENVS, obs.nbytes + 8 * NUM_ENVS).copy()

    def close(self) -> None:
        stop = struct.pack("<q", _STOP) * NUM_ENVS
        if self.sock is not None:
            _send_all(self.sock, stop)
            self.sock.close()
        else:
            self.buf[128 : 128 + len(stop)] = stop
            self.seq += 1
            self.ctl[_REQ] = self.seq
        os.waitpid(self.pid, 0)


def _inprocess(kind: str) -> Callable[[], None]:
    if kind == "single":
        env = gym.make(ENV_ID)
        env.reset(seed=0)

        def step() -> None:
            _, _, terminated, truncated, _ = env.step(0)
            if terminated or truncated:
                env.reset()
        return step
    venv = gym.make_vec(ENV_ID, NUM_ENVS, vectorization_mode="sync")
    venv.reset(seed=0)
    actions = np.zeros(NUM_ENVS, dtype=np.int64)
    return lambda: venv.step(actions)


def _rate(step: Callable[[], None], seconds: float) -> float:
    """Steps per second of ``step``, over about ``seconds``."""
    for _ in range(200):
        step()
    count, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(100):
            step()
        count += 100
        now = time.perf_counter()
        if now >= end:
            return count / (now - start)


LABELS = {"single": "one CartPole, shared-memory floor / in-process",
          "vector_shm": f"SyncVectorEnv({NUM_ENVS}), shared-memory floor / in-process",
          "vector_tcp": f"SyncVectorEnv({NUM_ENVS}), loopback TCP floor / in-process"}


def measure(rounds: int, seconds: float) -> dict[str, Any]:
    """Interleaved rounds of each floor against its in-process baseline."""
    results: dict[str, Any] = {}
    for kind, label in LABELS.items():
        floor, local = Floor(kind), _inprocess(kind)
        ratios, floor_us, local_us = [], [], []
        try:
            for r in range(rounds):
                pair = [("local", local), ("floor", floor.step)]
                rates = dict((name, _rate(fn, seconds)) for name, fn in
                             (pair if r % 2 == 0 else pair[::-1]))
                ratios.append(rates["floor"] / rates["local"])
                floor_us.append(1e6 / rates["floor"])
                local_us.append(1e6 / rates["local"])
        finally:
            floor.close()
        ratios.sort()
        results[kind] = {"label": label, "median": statistics.median(ratios),
                         "min": ratios[0], "max": ratios[-1], "rounds": rounds,
                         "floor_us": statistics.median(floor_us),
                         "inprocess_us": statistics.median(local_us)}
    return results


def table(results: dict[str, Any]) -> str:
    lines = ["| floor / in-process (median of interleaved rounds) | median | min-max | "
             "floor µs/step | in-process µs/step |", "|---|---:|---:|---:|---:|"]
    for r in results.values():
        lines.append(f"| {r['label']} | {r['median']:.3f} | {r['min']:.3f}-{r['max']:.3f} | "
                     f"{r['floor_us']:.2f} | {r['inprocess_us']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3, help="seconds per trial")
    parser.add_argument("--json", metavar="PATH", default=None)
    args = parser.parse_args(argv)
    if not hasattr(os, "fork"):
        print("the floor needs os.fork (Linux, macOS)", file=sys.stderr)
        return 2
    results = measure(args.rounds, args.seconds)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}, unpinned, {os.cpu_count()} CPUs, "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s trials")
    print()
    print(table(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
