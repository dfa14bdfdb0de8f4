"""Core rlmesh benchmark: remote env steps against in-process and raw-socket floors.

Every server runs in its own child process; the client runs in this process.

rlmesh variants come in two kinds:

* **sockets only** ("CartPole rlmesh TCP (sockets only)", "Image HxWxC rlmesh TCP (sockets
  only)"): loopback TCP with ``RLMESH_SAME_HOST=0`` set for the server child and around the
  client's connect, so every reply body crosses the socket. The socket goals (>= 0.85 of the
  raw ping-pong + CartPole floor, >= 0.80 of the raw payload floor) are judged on these.
* **same-host path** ("CartPole rlmesh same-host path", "Image 224x224x3 rlmesh same-host
  path", both over a unix socket): default settings, so the connection negotiates the
  shared-memory region of docs/protocol.md section 10. The same-host goals (>= 1.5x the raw TCP
  ping-pong with the same work or payload) are judged on these.
* Context, no target: "CartPole rlmesh unix (sockets only)" (the same unix socket without
  shared memory: the transport's share of the gain) and "Image 224x224x3 rlmesh same-host path,
  loopback TCP" (shared memory over TCP: against the TCP sockets-only variant, the region's own
  share).

The benchmark checks each variant's contract and marks a variant whose shared memory was (not)
negotiated as expected.

Method (interleaved paired trials). Every ratio compares an rlmesh variant with its raw
floor (a plain Python TCP ping-pong carrying the same work or payload). All servers are
started once per CPU placement and stay up; then, for ``--rounds`` rounds, each pair runs a
short trial (``--trial-seconds``) of the floor and one of the variant back to back, and the
order flips every round (the whole round's sequence is reversed). Per variant the report
gives the median ops/s over its trials; per ratio, the median of the per-round ratios and
their spread (interquartile and min-max range). Slow drift (CPU frequency, cross-CPU wakeup
latency, other load on the host) hits both halves of a pair about equally and cancels in the
per-round ratio, while a ratio of two separately timed medians would not cancel it.

Run it as a script::

    uv run python benchmarks/bench_core.py            # 15 rounds x 0.3 s trials, ~2.5 min
    uv run python benchmarks/bench_core.py --quick    # 5 rounds x 0.1 s trials
    uv run python benchmarks/bench_core.py --pin split --json results.json

or call ``main(["--quick"])`` from Python (meant for an ``rlmesh bench`` command).

The raw-socket floors are implemented in this file too: ``bench_core.py --raw-server MODE``
starts a one-connection server on ``127.0.0.1`` port 0 and prints the bound port on stdout.

CPU placement (``--pin``): by default the benchmark runs twice, first with the client on one
CPU and every server child on another (``split``: the two-core regime in which the targets
were set), then with client and servers sharing one CPU (``same``: every round trip costs two
context switches instead of a cross-CPU wakeup, so wall time per op is close to the CPU cost
of both sides). ``--pin split``, ``--pin same`` or ``--pin none`` (no pinning) runs only one.
rlmesh turns its poll-before-block receives (``RLMESH_SPIN``, ``RLMESH_SERVER_SPIN``) off in a
process pinned to one CPU, so ``split`` and ``same`` both measure blocking receives; only
``none`` lets the polling run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

SCRIPT = os.path.abspath(__file__)
REQUEST_BYTES = 64
REPLY_BYTES = 64
N_ACTIONS = 4096  # a power of two, so the action index wraps with a mask
ACTION_MASK = N_ACTIONS - 1
ACTION_SEED = 12345
BATCH = 32  # operations between two clock reads
TRIAL_WARMUP_BATCHES = 2  # untimed batches before every trial
IMAGE_SIZES: tuple[tuple[int, int, int], ...] = ((84, 84, 3), (224, 224, 3))

RAW_ECHO = "echo"
RAW_CARTPOLE = "cartpole"
RAW_PAYLOAD = "payload"
RAW_MODES = (RAW_ECHO, RAW_CARTPOLE, RAW_PAYLOAD)
PIN_MODES = ("split", "same", "none")
PIN_CHOICES = ("both", *PIN_MODES)
PIN_TITLES = {
    "split": "two cores (split)",
    "same": "one core (same): CPU cost view",
    "none": "unpinned (none)",
}
PIN_NOTES = {
    "split": "the regime the targets are judged on",
    "same": "wall time per op is close to client + server CPU per op",
    "none": "placement left to the scheduler, which can switch regimes mid-run",
}

# Variant keys, in the order of the result tables.
VARIANT_ORDER: tuple[str, ...] = (
    "cartpole_inprocess",
    "raw_tcp_echo",
    "raw_tcp_cartpole",
    "cartpole_rlmesh_tcp",
    "cartpole_rlmesh_samehost",
    "cartpole_rlmesh_unix",
    "raw_tcp_payload84",
    "image84_rlmesh_tcp",
    "raw_tcp_payload224",
    "image224_rlmesh_tcp",
    "image224_rlmesh_samehost",
    "image224_rlmesh_samehost_tcp",
)

# One round runs these blocks in this order (the reverse order on odd rounds). A block of
# two is a (floor, variant) pair whose trials run back to back; single blocks are context.
ROUND_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("cartpole_inprocess",),
    ("raw_tcp_echo",),
    ("raw_tcp_cartpole", "cartpole_rlmesh_tcp"),
    ("raw_tcp_cartpole", "cartpole_rlmesh_samehost"),
    ("raw_tcp_cartpole", "cartpole_rlmesh_unix"),
    ("raw_tcp_payload84", "image84_rlmesh_tcp"),
    ("raw_tcp_payload224", "image224_rlmesh_tcp"),
    ("raw_tcp_payload224", "image224_rlmesh_samehost"),
    ("raw_tcp_payload224", "image224_rlmesh_samehost_tcp"),
)

# (numerator, denominator, target or None, label). A ratio whose two keys share a block is
# taken within that block; otherwise between the first trials of the two keys in the round.
RATIOS: tuple[tuple[str, str, float | None, str], ...] = (
    ("cartpole_rlmesh_tcp", "raw_tcp_cartpole", 0.85,
     "CartPole rlmesh TCP (sockets only) / raw ping-pong + CartPole"),
    ("image84_rlmesh_tcp", "raw_tcp_payload84", 0.80,
     "Image 84x84x3 rlmesh TCP (sockets only) / raw 84x84x3 payload"),
    ("image224_rlmesh_tcp", "raw_tcp_payload224", 0.80,
     "Image 224x224x3 rlmesh TCP (sockets only) / raw 224x224x3 payload"),
    ("cartpole_rlmesh_samehost", "raw_tcp_cartpole", 1.5,
     "CartPole rlmesh same-host path / raw ping-pong + CartPole"),
    ("image224_rlmesh_samehost", "raw_tcp_payload224", 1.5,
     "Image 224x224x3 rlmesh same-host path / raw 224x224x3 payload"),
    ("raw_tcp_cartpole", "raw_tcp_echo", None,
     "raw ping-pong + CartPole / raw ping-pong 64B"),
    ("cartpole_rlmesh_tcp", "cartpole_inprocess", None,
     "CartPole rlmesh TCP (sockets only) / CartPole in-process"),
    ("cartpole_rlmesh_unix", "raw_tcp_cartpole", None,
     "CartPole rlmesh unix (sockets only) / raw ping-pong + CartPole"),
    ("image224_rlmesh_samehost_tcp", "raw_tcp_payload224", None,
     "Image 224x224x3 rlmesh same-host path, loopback TCP / raw 224x224x3 payload"),
    ("image224_rlmesh_samehost_tcp", "image224_rlmesh_tcp", None,
     "Image 224x224x3 same-host path, loopback TCP / TCP (sockets only)"),
)


# -- results ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Trial:
    """One timed trial: ``ops`` operations in ``seconds`` of wall time."""

    round: int
    ops: int
    seconds: float
    client_cpu: float
    server_cpu: float | None = None

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (both equal to the value when there is only one)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


@dataclasses.dataclass
class Result:
    """Every trial of one variant in one placement."""

    key: str
    name: str
    trials: list[Trial] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def rates(self) -> list[float]:
        return [t.ops_per_s for t in self.trials]

    @property
    def ops_per_s(self) -> float:
        """Median ops/s over the trials."""
        return statistics.median(self.rates) if self.trials else math.nan

    @property
    def us_per_op(self) -> float:
        rate = self.ops_per_s
        return 1e6 / rate if rate > 0 else math.nan

    @property
    def ops(self) -> int:
        return sum(t.ops for t in self.trials)

    @property
    def client_cpu_us(self) -> float:
        """Client CPU µs per op, pooled over all trials."""
        ops = self.ops
        return 1e6 * sum(t.client_cpu for t in self.trials) / ops if ops else math.nan

    @property
    def server_cpu_us(self) -> float | None:
        """Server CPU µs per op, pooled over all trials (None without a server)."""
        ops = self.ops
        if not ops or any(t.server_cpu is None for t in self.trials):
            return None
        return 1e6 * sum(t.server_cpu or 0.0 for t in self.trials) / ops

    def to_json(self) -> dict[str, Any]:
        q1, q3 = _quartiles(self.rates)
        return {
            "key": self.key,
            "name": self.name,
            "trials": len(self.trials),
            "ops": self.ops,
            "ops_per_s_median": self.ops_per_s,
            "ops_per_s_q1": q1,
            "ops_per_s_q3": q3,
            "ops_per_s_trials": self.rates,
            "us_per_op": self.us_per_op,
            "client_cpu_us_per_op": self.client_cpu_us,
            "server_cpu_us_per_op": self.server_cpu_us,
            **self.extra,
        }


def _proc_cpu_seconds(pid: int | Sequence[int] | None) -> float | None:
    """User + system CPU seconds of a live process (all threads), from /proc.

    With a sequence of pids: their sum (None if any of them cannot be read).
    """
    if pid is None:
        return None
    if not isinstance(pid, int):
        seconds = [_proc_cpu_seconds(p) for p in pid]
        return None if None in seconds else sum(s or 0.0 for s in seconds)
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        fields = data[data.rindex(b")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def warm_up(run: Callable[[int], None], seconds: float) -> None:
    """Call ``run(BATCH)`` for ``seconds`` of wall time (at least once)."""
    clock = time.perf_counter
    end = clock() + seconds
    run(BATCH)
    while clock() < end:
        run(BATCH)


def time_trial(run: Callable[[int], None], seconds: float, round_index: int,
               server_pid: int | Sequence[int] | None = None) -> Trial:
    """A few untimed batches, then ``run(BATCH)`` repeatedly for ``seconds`` of wall time."""
    for _ in range(TRIAL_WARMUP_BATCHES):
        run(BATCH)
    clock = time.perf_counter
    ops = 0
    server_cpu0 = _proc_cpu_seconds(server_pid)
    cpu0 = time.process_time()
    start = clock()
    end = start + seconds
    now = start
    while now < end:
        run(BATCH)
        ops += BATCH
        now = clock()
    cpu = time.process_time() - cpu0
    server_cpu1 = _proc_cpu_seconds(server_pid)
    server_cpu = (None if server_cpu0 is None or server_cpu1 is None
                  else server_cpu1 - server_cpu0)
    return Trial(round_index, ops, now - start, cpu, server_cpu)


# -- shared workload --------------------------------------------------------------------------


def make_actions(space: gym.spaces.Space[Any], n: int = N_ACTIONS) -> list[Any]:
    """``n`` samples of ``space``, drawn once with a fixed seed, outside any timed loop."""
    space.seed(ACTION_SEED)
    return [space.sample() for _ in range(n)]


class EnvStepper:
    """Steps any Gymnasium env through a fixed action list, resetting when an episode ends."""

    def __init__(self, env: gym.Env[Any, Any], actions: list[Any]) -> None:
        self.env = env
        self.actions = actions
        self.index = 0
        self.resets = 0
        env.reset(seed=0)

    def __call__(self, n: int) -> None:
        step = self.env.step
        actions = self.actions
        i = self.index
        for _ in range(n):
            _, _, terminated, truncated, _ = step(actions[i])
            i = (i + 1) & ACTION_MASK
            if terminated or truncated:
                self.env.reset()
                self.resets += 1
        self.index = i


class RawClient:
    """Raw TCP ping-pong: send a 64-byte request, receive a fixed-size reply."""

    def __init__(self, port: int, requests: list[bytes], reply_bytes: int,
                 image_shape: tuple[int, ...] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests = requests
        self.reply_bytes = reply_bytes
        self.image_shape = image_shape
        self.buf = bytearray(reply_bytes)
        self.view = memoryview(self.buf)
        self.index = 0
        self.last: Any = None

    def small(self, n: int) -> None:
        """``n`` round trips receiving into one reused buffer (64-byte replies)."""
        sendall = self.sock.sendall
        recv_into = self.sock.recv_into
        requests = self.requests
        view = self.view
        size = self.reply_bytes
        i = self.index
        for _ in range(n):
            sendall(requests[i])
            i = (i + 1) & ACTION_MASK
            got = recv_into(view, size)
            while got < size:
                k = recv_into(view[got:], size - got)
                if not k:
                    raise ConnectionError("raw server closed the connection")
                got += k
        self.index = i

    def image(self, n: int) -> None:
        """``n`` round trips, each reply received into a fresh buffer and wrapped by numpy."""
        sendall = self.sock.sendall
        recv_into = self.sock.recv_into
        requests = self.requests
        size = self.reply_bytes
        shape = self.image_shape
        frombuffer = np.frombuffer
        uint8 = np.uint8
        i = self.index
        obs: Any = None
        for _ in range(n):
            sendall(requests[i])
            i = (i + 1) & ACTION_MASK
            buf = bytearray(size)
            view = memoryview(buf)
            got = 0
            while got < size:
                k = recv_into(view[got:], size - got)
                if not k:
                    raise ConnectionError("raw server closed the connection")
                got += k
            obs = frombuffer(buf, dtype=uint8).reshape(shape)
        self.last = obs
        self.index = i

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def action_requests(actions: list[Any]) -> list[bytes]:
    """One 64-byte request per action; the first byte carries the (small int) action."""
    pad = bytes(REQUEST_BYTES - 1)
    return [bytes([int(a) & 0xFF]) + pad for a in actions]


# -- CPU placement ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Placement:
    """CPU sets for this process (the client) and for the server children (None: no pinning).

    Children inherit the affinity of the process that starts them, so every thread of a
    server (the rlmesh session threads included) stays on ``server``.
    """

    mode: str
    client: frozenset[int] | None = None
    server: frozenset[int] | None = None

    @classmethod
    def choose(cls, mode: str) -> Placement:
        """``split``: client and servers on two different CPUs; ``same``: both on one CPU."""
        if mode == "none" or not hasattr(os, "sched_setaffinity"):
            return cls("none")
        cpus = sorted(os.sched_getaffinity(0))
        if mode == "split" and len(cpus) < 2:
            return cls("same", frozenset(cpus[:1]), frozenset(cpus[:1]))
        server = cpus[1] if mode == "split" else cpus[0]
        return cls(mode, frozenset({cpus[0]}), frozenset({server}))

    def describe(self) -> str:
        if self.client is None or self.server is None:
            return "unpinned"
        return (f"client on CPU {_cpus(self.client)}, servers on CPU {_cpus(self.server)}")

    @contextlib.contextmanager
    def client_side(self) -> Iterator[None]:
        """Run the block with this process on the client CPUs (restored afterwards)."""
        if self.client is None:
            yield
            return
        previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.client)
        try:
            yield
        finally:
            os.sched_setaffinity(0, previous)

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Start children inside this block so that they inherit the server CPUs."""
        if self.server is None or self.client is None:
            yield
            return
        os.sched_setaffinity(0, self.server)
        try:
            yield
        finally:
            os.sched_setaffinity(0, self.client)


NO_PINNING = Placement("none")


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


# -- child processes --------------------------------------------------------------------------


@contextlib.contextmanager
def raw_server(mode: str, payload_bytes: int = REPLY_BYTES,
               placement: Placement = NO_PINNING) -> Iterator[tuple[int, int]]:
    """Start ``bench_core.py --raw-server MODE`` in a child; yield ``(port, pid)``."""
    cmd = [sys.executable, SCRIPT, "--raw-server", mode, "--payload-bytes", str(payload_bytes)]
    with placement.spawning():
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line:
            proc.wait(10)
            raise RuntimeError(f"raw server {mode!r} exited with {proc.returncode}")
        yield int(line), proc.pid
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """Set ``os.environ[name]`` for the block (restored afterwards)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def rlmesh_env(target: str, address: str = "127.0.0.1:0",
               kwargs: dict[str, Any] | None = None,
               placement: Placement = NO_PINNING,
               same_host: bool = True) -> Iterator[tuple[Any, int]]:
    """Spawn ``rlmesh serve TARGET`` and connect a numpy ``RemoteEnv``; yield ``(env, pid)``.

    ``same_host=False`` sets ``RLMESH_SAME_HOST=0`` in the child's environment and around
    the client's connect (both sides read it per connection), so every reply body crosses
    the socket. ``same_host=True`` sets it to ``1`` (the default) on both sides, whatever
    this process's environment says, so the connection may negotiate shared memory.
    """
    from rlmesh.numpy import RemoteEnv
    from rlmesh.testing import spawn_server

    flag = "1" if same_host else "0"
    with placement.spawning():
        server = spawn_server(target, address=address, kwargs=kwargs,
                              env={**os.environ, "RLMESH_SAME_HOST": flag})
    env: Any = None
    try:
        with _environ("RLMESH_SAME_HOST", flag):
            env = RemoteEnv(server.address)
        yield env, server.pid
    finally:
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()
        server.stop()


def _uses_shm(env: Any) -> bool:
    """Whether the connection negotiated the same-host shared-memory path."""
    return getattr(env, "contract", {}).get("shm") is True


def _recv_exact(conn: socket.socket, view: memoryview, size: int) -> bool:
    got = 0
    while got < size:
        k = conn.recv_into(view[got:], size - got)
        if not k:
            return False
        got += k
    return True


def serve_raw(mode: str, payload_bytes: int) -> int:
    """Child side of the raw floors: one connection, one reply per 64-byte request."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    env: gym.Env[Any, Any] | None = None
    if mode == RAW_CARTPOLE:
        env = gym.make("CartPole-v1")
        env.reset(seed=0)
    reply = bytes(payload_bytes if mode == RAW_PAYLOAD else REPLY_BYTES)
    buf = bytearray(REQUEST_BYTES)
    view = memoryview(buf)
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    listener.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    recv_into = conn.recv_into
    sendall = conn.sendall
    try:
        if env is not None:
            step = env.step
            reset = env.reset
            while True:
                got = recv_into(view, REQUEST_BYTES)
                if got < REQUEST_BYTES and not (
                        got and _recv_exact(conn, view[got:], REQUEST_BYTES - got)):
                    break
                _, _, terminated, truncated, _ = step(buf[0])
                if terminated or truncated:
                    reset()
                sendall(reply)
        else:
            while True:
                got = recv_into(view, REQUEST_BYTES)
                if got < REQUEST_BYTES and not (
                        got and _recv_exact(conn, view[got:], REQUEST_BYTES - got)):
                    break
                sendall(reply)
    except (ConnectionError, KeyboardInterrupt):
        pass
    finally:
        conn.close()
        if env is not None:
            env.close()
    return 0


# -- the benchmarks ---------------------------------------------------------------------------


@dataclasses.dataclass
class Variant:
    """One thing to time: ``run(n)`` performs ``n`` operations against a live server."""

    key: str
    name: str
    run: Callable[[int], None]
    server_pid: int | Sequence[int] | None = None  # several: their CPU time is summed
    stepper: EnvStepper | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def rlmesh_variant(stack: contextlib.ExitStack, placement: Placement, key: str, name: str,
                   target: str, actions: list[Any] | None, *, same_host: bool,
                   address: str = "127.0.0.1:0", kwargs: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> Variant:
    """Serve ``target`` in a child (stopped by ``stack``) and a variant stepping one env of it.

    ``actions`` None draws them from the env's action space (``variant.stepper.actions``).
    A variant whose shared memory is not in the state ``same_host`` asks for gets a marker
    appended to its name, and a warning goes to stderr.
    """
    env, pid = stack.enter_context(rlmesh_env(target, address=address, kwargs=kwargs,
                                              placement=placement, same_host=same_host))
    shm = _uses_shm(env)
    if shm != same_host:  # the label would be wrong: say so in the table
        name += " [shared memory ON]" if shm else " [shared memory NOT negotiated]"
        print(f"bench_core: warning: {key}: shared memory {'on' if shm else 'off'}, "
              f"expected {'on' if same_host else 'off'}", file=sys.stderr, flush=True)
    if actions is None:
        actions = make_actions(env.action_space)
    stepper = EnvStepper(env, actions)
    transport = address.split("://")[0] if "://" in address else "tcp"
    return Variant(key, name, stepper, pid, stepper,
                   {**(extra or {}), "transport": transport, "same_host_shm": shm})


def raw_payload_variant(stack: contextlib.ExitStack, placement: Placement,
                        shape: tuple[int, int, int], actions: list[Any]) -> Variant:
    """The raw TCP ping-pong floor whose replies are ``shape`` uint8 images."""
    nbytes = int(np.prod(shape))
    height, width, _ = shape
    tag = f"{height}" if height == width else f"{height}x{width}"
    port, pid = stack.enter_context(raw_server(RAW_PAYLOAD, nbytes, placement))
    raw = RawClient(port, action_requests(actions), nbytes, shape)
    stack.callback(raw.close)
    return Variant(f"raw_tcp_payload{tag}", f"raw TCP ping-pong {'x'.join(map(str, shape))}",
                   raw.image, pid, extra={"payload_bytes": nbytes})


@contextlib.contextmanager
def start_variants(placement: Placement) -> Iterator[dict[str, Variant]]:
    """Start every server child (once) and connect a client to each; yield them by key."""
    variants: dict[str, Variant] = {}

    def add(variant: Variant) -> None:
        variants[variant.key] = variant

    def add_rlmesh(key: str, name: str, target: str, actions: list[Any] | None, *,
                   same_host: bool, address: str = "127.0.0.1:0",
                   kwargs: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> list[Any]:
        """Serve ``target`` in a child, add the variant stepping it; return its actions."""
        variant = rlmesh_variant(stack, placement, key, name, target, actions,
                                 same_host=same_host, address=address, kwargs=kwargs,
                                 extra=extra)
        add(variant)
        assert variant.stepper is not None
        return variant.stepper.actions

    with contextlib.ExitStack() as stack:
        cartpole = gym.make("CartPole-v1")
        stack.callback(cartpole.close)
        cart_actions = make_actions(cartpole.action_space)
        cart_requests = action_requests(cart_actions)
        stepper = EnvStepper(cartpole, cart_actions)
        add(Variant("cartpole_inprocess", "CartPole in-process", stepper, stepper=stepper))

        for key, name, mode in (("raw_tcp_echo", "raw TCP ping-pong 64B", RAW_ECHO),
                                ("raw_tcp_cartpole", "raw TCP ping-pong + CartPole",
                                 RAW_CARTPOLE)):
            port, pid = stack.enter_context(raw_server(mode, placement=placement))
            raw = RawClient(port, cart_requests, REPLY_BYTES)
            stack.callback(raw.close)
            add(Variant(key, name, raw.small, pid))

        add_rlmesh("cartpole_rlmesh_tcp", "CartPole rlmesh TCP (sockets only)", "CartPole-v1",
                   cart_actions, same_host=False)
        sock_dir = tempfile.mkdtemp(prefix="rlmesh-bench-")
        stack.callback(shutil.rmtree, sock_dir, ignore_errors=True)
        add_rlmesh("cartpole_rlmesh_samehost", "CartPole rlmesh same-host path", "CartPole-v1",
                   cart_actions, same_host=True,
                   address="unix://" + os.path.join(sock_dir, "cartpole.sock"))
        # Context for the CartPole same-host ratio: the same unix socket without shared
        # memory, to tell the transport's share of the gain from the region's.
        add_rlmesh("cartpole_rlmesh_unix", "CartPole rlmesh unix (sockets only)", "CartPole-v1",
                   cart_actions, same_host=False,
                   address="unix://" + os.path.join(sock_dir, "cartpole-sockets.sock"))

        for shape in IMAGE_SIZES:
            height, width, channels = shape
            nbytes = height * width * channels
            tag = f"{height}" if height == width else f"{height}x{width}"
            label = "x".join(str(d) for d in shape)
            kwargs = {"height": height, "width": width, "channels": channels}
            extra = {"payload_bytes": nbytes}
            image_actions = add_rlmesh(
                f"image{tag}_rlmesh_tcp", f"Image {label} rlmesh TCP (sockets only)",
                "rlmesh.envs:ImageEnv", None, same_host=False, kwargs=kwargs, extra=extra)
            if f"image{tag}_rlmesh_samehost" in VARIANT_ORDER:
                add_rlmesh(f"image{tag}_rlmesh_samehost", f"Image {label} rlmesh same-host path",
                           "rlmesh.envs:ImageEnv", image_actions, same_host=True,
                           kwargs=kwargs, extra=extra,
                           address="unix://" + os.path.join(sock_dir, f"image{tag}.sock"))
            if f"image{tag}_rlmesh_samehost_tcp" in VARIANT_ORDER:
                # Context: the same path over loopback TCP, which also negotiates shared
                # memory; against the sockets-only TCP variant it shows the region's own gain.
                add_rlmesh(f"image{tag}_rlmesh_samehost_tcp",
                           f"Image {label} rlmesh same-host path, loopback TCP",
                           "rlmesh.envs:ImageEnv", image_actions, same_host=True,
                           kwargs=kwargs, extra=extra)
            add(raw_payload_variant(stack, placement, shape, image_actions))
        yield variants


RoundTrials = list[list[dict[str, Trial]]]
"""Per round, per block (in ``ROUND_BLOCKS`` order), the trial of each key in the block."""


RatioSpec = tuple[str, str, float | None, str]
"""(numerator key, denominator key, target or None, label), as in ``RATIOS``."""


def run_rounds(variants: dict[str, Variant], rounds: int, trial_seconds: float,
               warmup: float, log: Callable[[str], None], *,
               order: Sequence[str] = VARIANT_ORDER,
               round_blocks: Sequence[tuple[str, ...]] = ROUND_BLOCKS,
               ratios: Sequence[RatioSpec] = RATIOS, first_round: int = 0,
               total_rounds: int | None = None,
               ) -> tuple[dict[str, Result], RoundTrials]:
    """Warm every variant up, then run ``rounds`` rounds of interleaved trials.

    ``order``, ``round_blocks`` and ``ratios`` default to this benchmark's tables; other
    benchmarks (``bench_vector.py``) pass their own. A run split over several builds of its
    variants (``verdicts.py --builds``) numbers its rounds on from ``first_round`` out of
    ``total_rounds``, so the forward and backward rounds keep alternating across builds.
    """
    total = rounds if total_rounds is None else total_rounds
    for variant in variants.values():
        warm_up(variant.run, warmup)
    results = {key: Result(key, variants[key].name, extra=dict(variants[key].extra))
               for key in order if key in variants}
    all_rounds: RoundTrials = []
    for r in range(first_round, first_round + rounds):
        # Odd rounds run the whole sequence backwards, so within every pair the floor and
        # the variant take turns going first.
        sequence = [(b, key) for b, block in enumerate(round_blocks) for key in block]
        if r % 2:
            sequence.reverse()
        blocks: list[dict[str, Trial]] = [{} for _ in round_blocks]
        for b, key in sequence:
            variant = variants[key]
            trial = time_trial(variant.run, trial_seconds, r, variant.server_pid)
            blocks[b][key] = trial
            results[key].trials.append(trial)
        all_rounds.append(blocks)
        shown = []
        for num, den, target, _ in ratios:
            value = _round_ratio(blocks, num, den)
            if target is not None and value is not None:
                shown.append(f"{num.replace('_rlmesh', '')} {value:.3f}")
        log(f"  round {r + 1:>2}/{total}: " + ", ".join(shown))
    for key, result in results.items():
        stepper = variants[key].stepper
        if stepper is not None:
            result.extra["resets"] = stepper.resets
    return results, all_rounds


def _round_ratio(blocks: list[dict[str, Trial]], num: str, den: str) -> float | None:
    """The ratio num/den of ops/s in one round (within one block when they share one)."""
    for block in blocks:
        if num in block and den in block:
            pair = block[num], block[den]
            break
    else:
        first_num = next((blk[num] for blk in blocks if num in blk), None)
        first_den = next((blk[den] for blk in blocks if den in blk), None)
        if first_num is None or first_den is None:
            return None
        pair = first_num, first_den
    rate = pair[1].ops_per_s
    return pair[0].ops_per_s / rate if rate > 0 else None


def compute_ratios(all_rounds: RoundTrials,
                   specs: Sequence[RatioSpec] = RATIOS) -> list[dict[str, Any]]:
    """Per ratio: the median of the per-round ratios, their quartiles and range."""
    ratios: list[dict[str, Any]] = []
    for num, den, target, label in specs:
        values = [v for blocks in all_rounds
                  if (v := _round_ratio(blocks, num, den)) is not None]
        if not values:
            continue
        median = statistics.median(values)
        q1, q3 = _quartiles(values)
        status = None if target is None else ("meets goal" if median >= target
                                              else "below goal")
        at_target = None if target is None else sum(v >= target for v in values)
        ratios.append({"label": label, "numerator": num, "denominator": den,
                       "ratio": median, "q1": q1, "q3": q3,
                       "min": min(values), "max": max(values), "rounds": len(values),
                       "rounds_at_target": at_target, "per_round": values,
                       "target": target, "status": status})
    return ratios


def format_tables(title: str, note: str, results: list[Result],
                  ratios: list[dict[str, Any]]) -> str:
    """A Markdown heading and note, a table of the variants, then one of the ratios."""
    lines = [
        f"### {title}",
        "",
        note,
        "",
        "| benchmark | median ops/s | IQR ops/s | µs/op | client CPU µs/op | server CPU µs/op |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        q1, q3 = _quartiles(r.rates)
        server = "-" if r.server_cpu_us is None else f"{r.server_cpu_us:.1f}"
        lines.append(f"| {r.name} | {r.ops_per_s:,.0f} | {q1:,.0f}-{q3:,.0f} | "
                     f"{r.us_per_op:.2f} | {r.client_cpu_us:.1f} | {server} |")
    return "\n".join([*lines, "", format_ratio_table(ratios)])


def format_ratio_table(ratios: list[dict[str, Any]]) -> str:
    """The Markdown table of ``compute_ratios`` results."""
    lines = [
        "| ratio (median of per-round ratios) | median | IQR | min-max | rounds >= goal "
        "| goal | status |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for q in ratios:
        target = "-" if q["target"] is None else f">= {q['target']:.2f}"
        at = "-" if q["rounds_at_target"] is None else f"{q['rounds_at_target']}/{q['rounds']}"
        lines.append(f"| {q['label']} | {q['ratio']:.3f} | {q['q1']:.3f}-{q['q3']:.3f} | "
                     f"{q['min']:.3f}-{q['max']:.3f} | {at} | {target} | "
                     f"{q['status'] or 'info'} |")
    return "\n".join(lines)


def _placement_meta(placement: Placement) -> dict[str, Any]:
    return {
        "pin": placement.mode,
        "title": PIN_TITLES[placement.mode],
        "client_cpus": None if placement.client is None else sorted(placement.client),
        "server_cpus": None if placement.server is None else sorted(placement.server),
    }


def _meta(args: argparse.Namespace, argv: Sequence[str], started: datetime.datetime,
          elapsed: float) -> dict[str, Any]:
    import rlmesh

    return {
        "date": started.isoformat(timespec="seconds"),
        "rlmesh_path": os.path.dirname(os.path.abspath(rlmesh.__file__)),
        "argv": list(argv),
        "rounds": args.rounds,
        "trial_seconds": args.trial_seconds,
        "warmup": args.warmup,
        "elapsed_seconds": elapsed,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "tcp_congestion_control": _host_congestion_control(),
    }


def _host_congestion_control() -> str | None:
    """The host's default TCP congestion control (the raw ping-pongs use it; rlmesh's
    connections within the machine switch a pacing one, BBR, to CUBIC or Reno)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as file:
            return file.read().strip()
    except OSError:
        return None


@dataclasses.dataclass(frozen=True)
class RunDefaults:
    """Defaults of a benchmark's ``--rounds``, ``--trial-seconds`` and ``--warmup``."""

    rounds: int
    quick_rounds: int
    trial_seconds: float
    quick_trial_seconds: float
    warmup: float = 0.2
    quick_warmup: float = 0.05


CORE_RUN = RunDefaults(rounds=15, quick_rounds=5, trial_seconds=0.3, quick_trial_seconds=0.1)


def add_run_arguments(parser: argparse.ArgumentParser, defaults: RunDefaults,
                      rounds_scope: str = "") -> None:
    """``--rounds``, ``--trial-seconds``, ``--warmup`` and ``--quick`` (defaults left None)."""
    d = defaults
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"rounds of interleaved trials{rounds_scope} (default {d.rounds}, "
                             f"or {d.quick_rounds} with --quick)")
    parser.add_argument("--trial-seconds", type=float, default=None,
                        help=f"timed wall seconds per trial (default {d.trial_seconds:g}, or "
                             f"{d.quick_trial_seconds:g} with --quick)")
    parser.add_argument("--warmup", type=float, default=None,
                        help=f"warmup seconds per variant before the first round (default "
                             f"{d.warmup:g}, or {d.quick_warmup:g} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"short run: {d.quick_rounds} rounds of "
                             f"{d.quick_trial_seconds:g} s trials")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the results as JSON to PATH")


def resolve_run_arguments(args: argparse.Namespace, defaults: RunDefaults, prog: str) -> bool:
    """Fill the defaults left None (quick or not); False, with a message, if a value is bad."""
    d = defaults
    if args.rounds is None:
        args.rounds = d.quick_rounds if args.quick else d.rounds
    if args.trial_seconds is None:
        args.trial_seconds = d.quick_trial_seconds if args.quick else d.trial_seconds
    if args.warmup is None:
        args.warmup = d.quick_warmup if args.quick else d.warmup
    if args.rounds < 1 or args.trial_seconds <= 0 or args.warmup < 0:
        print(f"{prog}: --rounds must be >= 1, --trial-seconds > 0 and --warmup >= 0",
              file=sys.stderr)
        return False
    return True


def log(text: str) -> None:
    """Progress to stderr (the tables go to stdout)."""
    print(text, file=sys.stderr, flush=True)


def write_json(path: str, payload: dict[str, Any]) -> None:
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_core",
        description="Benchmark rlmesh remote env steps against in-process and raw-socket "
                    "floors (servers in child processes), as interleaved paired trials.",
    )
    add_run_arguments(parser, CORE_RUN, " per placement")
    parser.add_argument("--pin", choices=PIN_CHOICES, default="both",
                        help="CPU placement: 'both' (default) runs 'split' (client on one "
                             "CPU, servers on another: the regime the targets refer to) and "
                             "then 'same' (client and servers on one CPU: the CPU cost view); "
                             "'split', 'same' or 'none' (no pinning) runs only that one")
    add_json_argument(parser)
    parser.add_argument("--raw-server", choices=RAW_MODES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--payload-bytes", type=int, default=REPLY_BYTES,
                        help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--raw-server``, be one of its raw child servers)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.raw_server is not None:
        return serve_raw(args.raw_server, args.payload_bytes)
    if not resolve_run_arguments(args, CORE_RUN, "bench_core"):
        return 2

    placements: list[Placement] = []
    for mode in (("split", "same") if args.pin == "both" else (args.pin,)):
        placement = Placement.choose(mode)
        if placement.mode not in [p.mode for p in placements]:
            placements.append(placement)

    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.perf_counter()
    log(f"rlmesh core benchmark: {args.rounds} rounds of {args.trial_seconds:g} s trials, "
        f"{os.cpu_count()} CPUs, placements: {', '.join(p.mode for p in placements)}")
    sections: list[dict[str, Any]] = []
    tables: list[str] = []
    for placement in placements:
        log(f"{PIN_TITLES[placement.mode]}: {placement.describe()}")
        with placement.client_side(), start_variants(placement) as variants:
            by_key, all_rounds = run_rounds(variants, args.rounds, args.trial_seconds,
                                            args.warmup, log)
        results = list(by_key.values())
        ratios = compute_ratios(all_rounds)
        note = (f"{placement.describe()}; {PIN_NOTES[placement.mode]}. {args.rounds} rounds "
                f"of {args.trial_seconds:g} s trials.")
        tables.append(format_tables(PIN_TITLES[placement.mode], note, results, ratios))
        sections.append({**_placement_meta(placement),
                         "results": [r.to_json() for r in results], "ratios": ratios})
    elapsed = time.perf_counter() - started
    print("\n\n".join(tables))
    log(f"done in {elapsed:.1f} s")
    if args.json:
        write_json(args.json, {"meta": _meta(args, argv, started_at, elapsed),
                               "placements": sections})
    return 0


if __name__ == "__main__":
    sys.exit(main())
