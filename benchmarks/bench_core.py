"""Core rlmesh benchmark: remote env steps against in-process and raw-socket floors.

Every server runs in its own child process; the client runs in this process. Each
measurement runs for a fixed wall time after a warmup and reports operations per second.

Run it as a script::

    uv run python benchmarks/bench_core.py            # ~3 s per measurement
    uv run python benchmarks/bench_core.py --quick    # ~0.5 s per measurement
    uv run python benchmarks/bench_core.py --json results.json

or call ``main(["--quick"])`` from Python (meant for an ``rlmesh bench`` command).

The raw-socket floors are implemented in this file too: ``bench_core.py --raw-server MODE``
starts a one-connection server on ``127.0.0.1`` port 0 and prints the bound port on stdout.

CPU placement (``--pin``): by default the client and every server child are pinned to the
same CPU. On small VMs a ping-pong between two CPUs is dominated by cross-CPU wakeup latency
that varies by 2x or more from run to run (and flips mid-run when the scheduler migrates a
process), which drowns the per-step cost being measured; on one CPU the numbers repeat within
a few percent. ``--pin split`` measures the two-CPU case, ``--pin none`` leaves it to the OS.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import socket
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
IMAGE_SIZES: tuple[tuple[int, int, int], ...] = ((84, 84, 3), (224, 224, 3))

RAW_ECHO = "echo"
RAW_CARTPOLE = "cartpole"
RAW_PAYLOAD = "payload"
RAW_MODES = (RAW_ECHO, RAW_CARTPOLE, RAW_PAYLOAD)
PIN_MODES = ("split", "same", "none")

# (numerator, denominator, target or None, label)
RATIOS: tuple[tuple[str, str, float | None, str], ...] = (
    ("cartpole_rlmesh_tcp", "raw_tcp_cartpole", 0.85,
     "CartPole rlmesh TCP / raw ping-pong + CartPole"),
    ("cartpole_rlmesh_unix", "raw_tcp_cartpole", 0.85,
     "CartPole rlmesh unix / raw ping-pong + CartPole"),
    ("image84_rlmesh_tcp", "raw_tcp_payload84", 0.80,
     "Image 84x84x3 rlmesh TCP / raw 84x84x3 payload"),
    ("image224_rlmesh_tcp", "raw_tcp_payload224", 0.80,
     "Image 224x224x3 rlmesh TCP / raw 224x224x3 payload"),
    ("cartpole_rlmesh_tcp", "cartpole_inprocess", None,
     "CartPole rlmesh TCP / CartPole in-process"),
)


# -- results ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """One measurement: ``ops`` operations in ``seconds`` of wall time."""

    key: str
    name: str
    ops: int
    seconds: float
    client_cpu: float
    server_cpu: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def us_per_op(self) -> float:
        return 1e6 * self.seconds / self.ops if self.ops else float("nan")

    @property
    def client_cpu_us(self) -> float:
        return 1e6 * self.client_cpu / self.ops if self.ops else float("nan")

    @property
    def server_cpu_us(self) -> float | None:
        if self.server_cpu is None or not self.ops:
            return None
        return 1e6 * self.server_cpu / self.ops

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_s": self.ops_per_s,
            "us_per_op": self.us_per_op,
            "client_cpu_us_per_op": self.client_cpu_us,
            "server_cpu_us_per_op": self.server_cpu_us,
            **self.extra,
        }


def _proc_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a live process, from /proc (None where unavailable)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
        fields = data[data.rindex(b")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def measure(key: str, name: str, run: Callable[[int], None], seconds: float, warmup: float,
            server_pid: int | None = None) -> Result:
    """Call ``run(BATCH)`` for ``warmup`` seconds, then for ``seconds`` more while timing."""
    clock = time.perf_counter
    end = clock() + warmup
    while clock() < end:
        run(BATCH)
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
    return Result(key, name, ops, now - start, cpu, server_cpu)


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
        return (f"client on CPU {sorted(self.client)}, servers on CPU {sorted(self.server)}")

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
def rlmesh_env(target: str, address: str = "127.0.0.1:0",
               kwargs: dict[str, Any] | None = None,
               placement: Placement = NO_PINNING) -> Iterator[tuple[Any, int]]:
    """Spawn ``rlmesh serve TARGET`` and connect a numpy ``RemoteEnv``; yield ``(env, pid)``."""
    from rlmesh.numpy import RemoteEnv
    from rlmesh.testing import spawn_server

    with placement.spawning():
        server = spawn_server(target, address=address, kwargs=kwargs)
    env: Any = None
    try:
        env = RemoteEnv(server.address)
        yield env, server.pid
    finally:
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()
        server.stop()


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


def bench_all(seconds: float, warmup: float, log: Callable[[str], None],
              placement: Placement = NO_PINNING) -> list[Result]:
    """Run every measurement once, in order, and return the results."""
    with placement.client_side():
        return _bench_all(seconds, warmup, log, placement)


def _bench_all(seconds: float, warmup: float, log: Callable[[str], None],
               placement: Placement) -> list[Result]:
    results: list[Result] = []

    def record(result: Result) -> None:
        results.append(result)
        log(f"  {result.name:<40} {result.ops_per_s:>12,.0f} ops/s "
            f"{result.us_per_op:>9.2f} us/op")

    cartpole = gym.make("CartPole-v1")
    cart_actions = make_actions(cartpole.action_space)
    cart_requests = action_requests(cart_actions)

    # 1. CartPole in-process.
    stepper = EnvStepper(cartpole, cart_actions)
    result = measure("cartpole_inprocess", "CartPole in-process", stepper, seconds, warmup)
    result.extra["resets"] = stepper.resets
    record(result)
    cartpole.close()

    # 2. Raw TCP ping-pong, 64 B -> 64 B.
    with raw_server(RAW_ECHO, placement=placement) as (port, pid):
        raw = RawClient(port, cart_requests, REPLY_BYTES)
        try:
            record(measure("raw_tcp_echo", "raw TCP ping-pong 64B", raw.small, seconds,
                           warmup, pid))
        finally:
            raw.close()

    # 3. Raw TCP ping-pong, server steps CartPole per request.
    with raw_server(RAW_CARTPOLE, placement=placement) as (port, pid):
        raw = RawClient(port, cart_requests, REPLY_BYTES)
        try:
            record(measure("raw_tcp_cartpole", "raw TCP ping-pong + CartPole", raw.small,
                           seconds, warmup, pid))
        finally:
            raw.close()

    # 4. CartPole over rlmesh, TCP.
    with rlmesh_env("CartPole-v1", placement=placement) as (env, pid):
        stepper = EnvStepper(env, cart_actions)
        result = measure("cartpole_rlmesh_tcp", "CartPole rlmesh TCP", stepper, seconds,
                         warmup, pid)
        result.extra["resets"] = stepper.resets
        record(result)

    # 5. CartPole over rlmesh, unix socket.
    sock_dir = tempfile.mkdtemp(prefix="rlmesh-bench-")
    try:
        address = "unix://" + os.path.join(sock_dir, "cartpole.sock")
        with rlmesh_env("CartPole-v1", address=address, placement=placement) as (env, pid):
            stepper = EnvStepper(env, cart_actions)
            result = measure("cartpole_rlmesh_unix", "CartPole rlmesh unix", stepper,
                             seconds, warmup, pid)
            result.extra["resets"] = stepper.resets
            record(result)
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)

    # 6. Image envs over rlmesh TCP, each beside a raw TCP floor of the same payload size.
    for shape in IMAGE_SIZES:
        height, width, channels = shape
        nbytes = height * width * channels
        tag = f"{height}" if height == width else f"{height}x{width}"
        label = "x".join(str(d) for d in shape)
        kwargs = {"height": height, "width": width, "channels": channels}
        with rlmesh_env("rlmesh.envs:ImageEnv", kwargs=kwargs,
                        placement=placement) as (env, pid):
            image_actions = make_actions(env.action_space)
            stepper = EnvStepper(env, image_actions)
            result = measure(f"image{tag}_rlmesh_tcp", f"Image {label} rlmesh TCP", stepper,
                             seconds, warmup, pid)
            result.extra["resets"] = stepper.resets
            result.extra["payload_bytes"] = nbytes
            record(result)
        with raw_server(RAW_PAYLOAD, nbytes, placement) as (port, pid):
            raw = RawClient(port, action_requests(image_actions), nbytes, shape)
            try:
                result = measure(f"raw_tcp_payload{tag}", f"raw TCP ping-pong {label}",
                                 raw.image, seconds, warmup, pid)
                result.extra["payload_bytes"] = nbytes
                record(result)
            finally:
                raw.close()
    return results


def compute_ratios(results: list[Result]) -> list[dict[str, Any]]:
    """The headline ratios (ops/s over ops/s) with their targets."""
    by_key = {r.key: r for r in results}
    ratios: list[dict[str, Any]] = []
    for num, den, target, label in RATIOS:
        if num not in by_key or den not in by_key or by_key[den].ops_per_s == 0:
            continue
        value = by_key[num].ops_per_s / by_key[den].ops_per_s
        status = None if target is None else ("PASS" if value >= target else "MISS")
        ratios.append({"label": label, "numerator": num, "denominator": den,
                       "ratio": value, "target": target, "status": status})
    return ratios


def format_table(results: list[Result], ratios: list[dict[str, Any]]) -> str:
    """A Markdown table of the results, then one of the ratios."""
    lines = [
        "| benchmark | ops/s | µs/op | client CPU µs/op | server CPU µs/op |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        server = "-" if r.server_cpu_us is None else f"{r.server_cpu_us:.1f}"
        lines.append(f"| {r.name} | {r.ops_per_s:,.0f} | {r.us_per_op:.2f} | "
                     f"{r.client_cpu_us:.1f} | {server} |")
    lines += ["", "| ratio | value | target | status |", "|---|---:|---:|---|"]
    for q in ratios:
        target = "-" if q["target"] is None else f">= {q['target']:.2f}"
        status = q["status"] or "info"
        lines.append(f"| {q['label']} | {q['ratio']:.3f} | {target} | {status} |")
    return "\n".join(lines)


def _meta(args: argparse.Namespace, argv: Sequence[str], placement: Placement
          ) -> dict[str, Any]:
    return {
        "pin": placement.mode,
        "client_cpus": None if placement.client is None else sorted(placement.client),
        "server_cpus": None if placement.server is None else sorted(placement.server),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench_core",
        description="Benchmark rlmesh remote env steps against in-process and raw-socket "
                    "floors (servers in child processes).",
    )
    parser.add_argument("--seconds", type=float, default=None,
                        help="timed wall seconds per measurement (default 3, or 0.5 with "
                             "--quick)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="warmup seconds before each measurement (default 0.5, or 0.1 "
                             "with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="short run: 0.5 s per measurement")
    parser.add_argument("--pin", choices=PIN_MODES, default="same",
                        help="CPU placement: 'same' (default) runs the client and the "
                             "servers on one CPU, so a round trip costs CPU work and not "
                             "cross-CPU wakeup latency (reproducible); 'split' puts them on "
                             "two different CPUs; 'none' leaves placement to the scheduler")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the results as JSON to PATH")
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
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 3.0
    if args.warmup is None:
        args.warmup = 0.1 if args.quick else 0.5
    if args.seconds <= 0 or args.warmup < 0:
        print("bench_core: --seconds must be > 0 and --warmup >= 0", file=sys.stderr)
        return 2

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    placement = Placement.choose(args.pin)
    log(f"rlmesh core benchmark: {args.seconds:g} s per measurement after "
        f"{args.warmup:g} s warmup, {os.cpu_count()} CPUs, {placement.describe()}")
    results = bench_all(args.seconds, args.warmup, log, placement)
    ratios = compute_ratios(results)
    print(format_table(results, ratios))
    if args.json:
        payload = {"meta": _meta(args, argv, placement), "results": [r.to_json() for r in results],
                   "ratios": ratios}
        with open(args.json, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
