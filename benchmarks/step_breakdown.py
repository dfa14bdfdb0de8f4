"""Where a step's microseconds go: one CartPole step in-process, over the link and over TCP.

With ``--vector N``, the step of Gymnasium's ``SyncVectorEnv(N)`` of CartPole instead (served
as ``gymnasium.make_vec`` serves it; the verdicts' served vector env), without resets.

Both sides are instrumented in their own process: the wire encoder and decoder, the
transport's ``send`` and ``recv`` (the socket connection and the same-host link), and the
env's own ``step`` are wrapped with ``time.perf_counter_ns`` reads (the outermost transport
call only, when one wraps another). The server child reports per request, the client per
``RemoteEnv.step`` call; step ``i`` of one side is step ``i`` of the other, so the handoff of
each step (request and reply crossing between the processes) is the client's wait for the
reply minus the server's busy time for that request. Steps that end an episode are followed
by a ``reset`` request, which is not counted.

The same run also times uninstrumented clients against uninstrumented servers, so the
report states what the instrumentation itself costs. Every number is the median over the
measured steps; the pieces of one column need not add up to its total exactly::

    uv run python benchmarks/step_breakdown.py                  # 20,000 steps per transport
    uv run python benchmarks/step_breakdown.py --steps 5000 --json breakdown.json
    uv run python benchmarks/step_breakdown.py --vector 8 --steps 5000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from benchmarks import bench_core as core
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]

SCRIPT = os.path.abspath(__file__)
ENV_ID = "CartPole-v1"
OP_STEP_NAME = "STEP"


class Clock:
    """Accumulates the nanoseconds of named pieces of the current request."""

    def __init__(self) -> None:
        self.current: dict[str, int] = {}
        self.depth = threading.local()

    def wrap(self, owner: type, method: str, piece: str, outermost: bool = False) -> None:
        """Time ``owner.method`` into ``piece`` (only the outermost of nested ``outermost``)."""
        original = getattr(owner, method)
        now = time.perf_counter_ns
        current = self.current
        depth = self.depth

        def timed(*args: Any, **kwargs: Any) -> Any:
            if outermost:
                level = getattr(depth, "n", 0)
                depth.n = level + 1
                if level:
                    try:
                        return original(*args, **kwargs)
                    finally:
                        depth.n = level
            start = now()
            try:
                return original(*args, **kwargs)
            finally:
                end = now()
                current[piece] = current.get(piece, 0) + end - start
                current[piece + "_t0"], current[piece + "_t1"] = start, end
                if outermost:
                    depth.n = 0

        setattr(owner, method, timed)


def instrument(clock: Clock) -> None:
    """Wrap the codec and transport classes (before any connection exists)."""
    from rlmesh.transport.shmlink import ShmLink
    from rlmesh.transport.stream import Connection
    from rlmesh.wire.decoder import Decoder
    from rlmesh.wire.encoder import Encoder
    from rlmesh.wire.fixed import StepFrames
    from rlmesh.wire.slots import SlotSteps

    clock.wrap(Encoder, "encode", "encode")
    clock.wrap(Decoder, "decode", "decode")
    # (the fixed-shape step frames encode and decode a step where they apply; over the
    # link, slot steps write and read its values in place)
    for method in ("encode_request", "encode_reply"):
        clock.wrap(StepFrames, method, "encode")
    for method in ("decode_request", "decode_reply"):
        clock.wrap(StepFrames, method, "decode")
    for method in ("write_request", "write_result"):  # (write_reply calls write_result)
        clock.wrap(SlotSteps, method, "encode")
    for method in (_slot_read(), "read_reply"):  # (read_request calls read_step)
        clock.wrap(SlotSteps, method, "decode")
    for cls in (ShmLink, Connection):
        clock.wrap(cls, "send", "send", outermost=True)
        clock.wrap(cls, "recv", "recv", outermost=True)
    clock.wrap(ShmLink, "send_written", "send", outermost=True)


def _slot_read() -> str:
    """The method the server reads a slot step with (``read_request`` in older trees)."""
    from rlmesh.wire.slots import SlotSteps

    return "read_step" if hasattr(SlotSteps, "read_step") else "read_request"


class _TimedStep:
    """Records the wall nanoseconds of the wrapped env's ``step`` into ``self.clock``."""

    env: Any
    clock: Clock

    def step(self, action: Any) -> Any:
        start = time.perf_counter_ns()
        result = self.env.step(action)
        end = time.perf_counter_ns()
        current = self.clock.current
        current["env_step"], current["env_step_t0"], current["env_step_t1"] = \
            end - start, start, end
        return result


class TimedStep(_TimedStep, gym.Wrapper[Any, Any, Any, Any]):
    """An env whose ``step`` is timed (see :func:`timed_env`)."""


class TimedVectorStep(_TimedStep, gym.vector.VectorWrapper):
    """A vector env whose ``step`` is timed (see :func:`timed_env`)."""


def make_env(vector: int) -> Any:
    """One CartPole, or ``SyncVectorEnv(vector)`` of CartPole (``vector`` > 0)."""
    if vector:
        return gym.make_vec(ENV_ID, vector, vectorization_mode="sync")
    return gym.make(ENV_ID)


def timed_env(env: Any, clock: Clock) -> Any:
    """``env`` with its ``step`` timed into ``clock``."""
    timed: Any = TimedVectorStep(env) if isinstance(env, gym.vector.VectorEnv) else TimedStep(env)
    timed.clock = clock
    return timed


# -- the server child --------------------------------------------------------------------------


def _transport_class(kind: str) -> type:
    """The class of the connection a session talks through: the link, or the socket."""
    from rlmesh.transport.shmlink import ShmLink
    from rlmesh.transport.stream import Connection

    return ShmLink if kind == "link" else Connection


def serve(address: str, kind: str, timed: bool, vector: int = 0) -> int:
    """Child: serve the env; with ``timed``, report the pieces of every STEP on request."""
    from rlmesh import protocol as P
    from rlmesh.wire.decoder import Decoder

    clock = Clock()
    steps: list[dict[str, int]] = []
    env = make_env(vector)
    if timed:
        instrument(clock)
        env = timed_env(env, clock)
        marks: dict[str, Any] = {"op": None, "ready": 0}
        decode = Decoder.decode

        def decoded(self: Any, header: Any, body: Any) -> Any:
            msg = decode(self, header, body)  # (the server decodes requests only)
            marks["op"] = msg[0] if type(msg) is list and msg else None
            return msg

        Decoder.decode = decoded  # type: ignore[method-assign]
        from rlmesh.wire.fixed import StepFrames
        decode_fixed = StepFrames.decode_request

        def decoded_fixed(self: Any, header: Any) -> Any:
            msg = decode_fixed(self, header)
            marks["op"] = msg[0] if msg else None
            return msg

        StepFrames.decode_request = decoded_fixed  # type: ignore[method-assign]
        from rlmesh.wire.slots import SlotSteps
        read_name = _slot_read()
        read_slot = getattr(SlotSteps, read_name)

        def read_slotted(self: Any) -> Any:
            step = read_slot(self)  # (a slot step is always a STEP)
            marks["op"] = P.OP_STEP
            return step

        setattr(SlotSteps, read_name, read_slotted)
        cls: Any = _transport_class(kind)
        recv = cls.recv

        def marked(self: Any) -> Any:
            entered = time.perf_counter_ns()
            if marks["ready"] and marks["op"] == P.OP_STEP:
                record = {k: v for k, v in clock.current.items() if not k.startswith("recv")}
                record["busy"] = entered - marks["ready"]
                record["ready"] = marks["ready"]
                steps.append(record)
            clock.current.clear()
            result = recv(self)
            marks["ready"] = time.perf_counter_ns()
            return result

        cls.recv = marked
    return serve_reporting(env, address, steps)


def serve_reporting(env: Any, address: str, steps: list[Any]) -> int:
    """Serve ``env`` at ``address``; on stdin ``reset`` empty ``steps``, on ``dump`` print them."""
    from rlmesh import EnvServer

    with EnvServer(env, address) as server:
        server.start()
        print(server.address, flush=True)
        for line in sys.stdin:
            if line.strip() == "reset":
                steps.clear()
                print("ok", flush=True)
            elif line.strip() == "dump":
                print(json.dumps(steps), flush=True)
    return 0


# -- the client --------------------------------------------------------------------------------


@contextlib.contextmanager
def server_child(address: str, kind: str, timed: bool, vector: int = 0, script: str = SCRIPT
                 ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``script``'s ``--serve`` child (this one's); yield it and its address once it
    listens."""
    flag = "1" if kind == "link" else "0"
    cmd = [sys.executable, script, "--serve", address, "--kind", kind, "--vector", str(vector)]
    if timed:
        cmd.append("--timed")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "RLMESH_SAME_HOST": flag})
    try:
        assert proc.stdout is not None
        bound = proc.stdout.readline().strip()
        if not bound:
            raise RuntimeError("the breakdown server did not start")
        yield proc, bound
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _ask(proc: subprocess.Popen[str], command: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    return proc.stdout.readline()


def client_steps(env: Any, steps: int, clock: Clock | None) -> tuple[list[dict[str, int]], float]:
    """Step ``env`` ``steps`` times (resetting a single env at episode ends, not counted).

    Returns the per-step pieces (with a clock) and the wall seconds of the whole loop.
    """
    actions = core.make_actions(env.action_space, core.N_ACTIONS)
    records: list[dict[str, int]] = []
    now = time.perf_counter_ns
    env.reset(seed=0)
    started = time.perf_counter()
    for i in range(steps):
        if clock is not None:
            clock.current.clear()
        start = now()
        _, _, terminated, truncated, _ = env.step(actions[i & core.ACTION_MASK])
        total = now() - start
        if clock is not None:
            records.append({**clock.current, "total": total})
        if np.ndim(terminated) == 0 and (terminated or truncated):  # (vector envs autoreset)
            env.reset()
    wall = time.perf_counter() - started
    # A last request that is not a step: the server files a step when its next request
    # arrives, so this one files the last step before anything reads the server's records.
    env.reset()
    return records, wall


def measure(kind: str, steps: int, sock_dir: str, clock: Clock | None, vector: int = 0,
            script: str = SCRIPT,
            timing: contextlib.AbstractContextManager[Any] | None = None) -> dict[str, Any]:
    """One transport: ``inprocess``, ``link`` (unix socket, shared memory) or ``tcp``.

    ``script`` serves (its ``--serve`` child), and the client connects within ``timing``.
    """
    if kind == "inprocess":
        env: Any = make_env(vector)
        timed = timed_env(env, clock) if clock is not None else env
        records, wall = client_steps(timed, steps, clock)
        return {"kind": kind, "client": records, "server": [], "wall_us": 1e6 * wall / steps}
    from rlmesh.numpy import RemoteEnv, RemoteVectorEnv

    address = ("unix://" + os.path.join(sock_dir, f"{kind}-{clock is not None}.sock")
               if kind == "link" else "127.0.0.1:0")
    with server_child(address, kind, clock is not None, vector, script) as (proc, bound), \
            core._environ("RLMESH_SAME_HOST", "1" if kind == "link" else "0"), \
            timing or contextlib.nullcontext():
        env = RemoteVectorEnv(bound) if vector else RemoteEnv(bound)
        try:
            if bool(env.contract.get("shm_link")) != (kind == "link"):
                raise RuntimeError(f"{kind}: unexpected transport {env.contract.get('shm')}")
            client_steps(env, min(steps, 2000), clock)  # warm-up
            if clock is not None:
                _ask(proc, "reset")
            records, wall = client_steps(env, steps, clock)
            server = json.loads(_ask(proc, "dump")) if clock is not None else []
        finally:
            env.close()
    return {"kind": kind, "client": records, "server": server, "wall_us": 1e6 * wall / steps}


Piece = Callable[[dict[str, int], dict[str, int]], float | None]


def _dispatch(s: dict[str, int]) -> float:
    """Server time from having the request to sending the reply, less the timed pieces."""
    return s["send_t0"] - s["ready"] - sum(s.get(k, 0) for k in ("decode", "env_step", "encode"))


def _client_other(c: dict[str, int]) -> float:
    return c["total"] - sum(c.get(k, 0) for k in ("encode", "send", "recv", "decode", "env_step"))


# (side, label, piece of one step from its client and server records). Timestamps are
# CLOCK_MONOTONIC nanoseconds, one clock for every process of the host, so the crossings
# compare a client timestamp with a server one.
PIECES: tuple[tuple[str, str, Piece], ...] = (
    ("client", "RemoteEnv.step, whole call", lambda c, s: c["total"]),
    ("client", "encode the request", lambda c, s: c.get("encode", 0)),
    ("client", "send call", lambda c, s: c.get("send", 0)),
    ("client", "recv call (waits for the reply)", lambda c, s: c.get("recv", 0)),
    ("client", "decode the reply", lambda c, s: c.get("decode", 0)),
    ("client", "other client Python", lambda c, s: _client_other(c)),
    ("crossing", "request: client send starts -> server has it",
     lambda c, s: s["ready"] - c["send_t0"] if s else None),
    ("server", "decode the request", lambda c, s: s.get("decode") if s else None),
    ("server", "check the action, dispatch", lambda c, s: _dispatch(s) if s else None),
    ("server", "env.step (CartPole)", lambda c, s: (s or c).get("env_step")),
    ("server", "encode the reply", lambda c, s: s.get("encode") if s else None),
    ("server", "send call", lambda c, s: s.get("send") if s else None),
    ("crossing", "reply: server send starts -> client has it",
     lambda c, s: c["recv_t1"] - s["send_t0"] if s else None),
    ("server", "busy per request (recv returns -> next recv)",
     lambda c, s: s["busy"] if s else None),
)


def breakdown(run: dict[str, Any]) -> dict[str, float | None]:
    """Per piece label: the median µs over the steps (None where it does not apply)."""
    client, server = run["client"], run["server"]
    if server and len(server) != len(client):
        raise RuntimeError(f"{run['kind']}: {len(client)} client steps, {len(server)} server")
    pairs = list(zip(client, server or [{}] * len(client), strict=True))
    out: dict[str, float | None] = {}
    for side, label, piece in PIECES:
        values = [v for c, s in pairs if (v := piece(c, s)) is not None]
        out[f"{side}: {label}"] = statistics.median(values) / 1000 if values else None
    return out


def table(columns: dict[str, dict[str, float | None]], plain: dict[str, float]) -> str:
    """Markdown: one row per piece, one column per transport."""
    kinds = list(columns)
    lines = ["| µs per step (median) | " + " | ".join(kinds) + " |",
             "|---|" + "---:|" * len(kinds)]
    for label in next(iter(columns.values())):
        cells = ["-" if columns[k][label] is None else f"{columns[k][label]:.2f}" for k in kinds]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| uninstrumented, wall per step (mean) | "
                 + " | ".join(f"{plain[k]:.2f}" for k in kinds) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the breakdown (or, with ``--serve``, be its server child)."""
    parser = argparse.ArgumentParser(prog="step_breakdown", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="measured steps per transport")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write JSON here")
    parser.add_argument("--vector", type=int, default=0, metavar="N",
                        help="step SyncVectorEnv(N) of CartPole instead of one CartPole")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="tcp", help=argparse.SUPPRESS)
    parser.add_argument("--timed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The compiled steps (rlmesh.transport.fastslots, fastframes) do in one C call what is
    # timed here in pieces: this run and its servers take the Python path, whose pieces these
    # are (set before rlmesh is imported; the server children inherit it).
    os.environ["RLMESH_PURE_PYTHON"] = "1"
    if args.serve is not None:
        return serve(args.serve, args.kind, args.timed, args.vector)
    sock_dir = tempfile.mkdtemp(prefix="rlmesh-breakdown-")
    try:
        kinds = ("inprocess", "link", "tcp")
        plain = {k: measure(k, args.steps, sock_dir, None, args.vector)["wall_us"]
                 for k in kinds}
        clock = Clock()
        instrument(clock)
        runs = {k: measure(k, args.steps, sock_dir, clock, args.vector) for k in kinds}
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    columns = {k: breakdown(run) for k, run in runs.items()}
    print(f"{f'SyncVectorEnv({args.vector}) of ' if args.vector else ''}{ENV_ID}, "
          f"{args.steps} steps per transport, the Python path (RLMESH_PURE_PYTHON=1)\n")
    print(table(columns, plain))
    if args.json:
        core.write_json(args.json, {"steps": args.steps, "vector": args.vector,
                                    "breakdown": columns,
                                    "uninstrumented_us": plain,
                                    "instrumented_wall_us": {k: r["wall_us"]
                                                             for k, r in runs.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
