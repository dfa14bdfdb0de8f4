"""Where a step's microseconds go on the compiled paths: the "after" of ``step_breakdown.py``.

``step_breakdown.py`` times the Python path's pieces (encode, send, recv, decode), which the
compiled steps (``rlmesh.transport.fastslots`` over the link, ``fastframes`` over a socket)
do in one C call per side. This script times those calls instead, in the client and in a
server child alike: the client's compiled ``step`` (write or encode the request, announce or
send it, poll for the reply, read it), the server's ``serve`` (poll for a request, read it,
check its action, call the env's ``step``, write or encode the reply, announce or send it),
and the env's own ``step`` inside it. Both processes read the host's one monotonic clock, so
each crossing is measured across them: the request's from the client's compiled call
starting to the env's ``step`` starting, the reply's from the env's ``step`` returning to the
client's call returning (each includes the sending side's writing and the receiving side's
reading and checking, which no timer can split from the hand-off inside one C call). The
server's session loop between two ``serve`` calls runs while the client reads its reply and
prepares the next request, off the step's path: it is reported beside the rest.

A step the compiled calls hand to the Python path (a sleeping peer, a frame of another
layout) is counted, and left out of the medians. The same run times uninstrumented clients
against uninstrumented servers, so the report states what the instrumentation costs::

    uv run python benchmarks/compiled_breakdown.py                      # one CartPole
    uv run python benchmarks/compiled_breakdown.py --vector 8 --steps 5000 --json b.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import unittest.mock
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from benchmarks import bench_core as core
    from benchmarks import step_breakdown as python_path
except ImportError:  # run as a script: benchmarks/ itself is sys.path[0]
    import bench_core as core  # type: ignore[no-redef,import-not-found,unused-ignore]
    import step_breakdown as python_path  # type: ignore[no-redef,import-not-found,unused-ignore]

SCRIPT = os.path.abspath(__file__)


class Timed:
    """A compiled step object whose named calls are timed into ``record`` (else forwarded)."""

    def __init__(self, inner: Any, record: Callable[[str, int, int, Any], None],
                 names: Sequence[str]) -> None:
        self._inner = inner
        now = time.perf_counter_ns
        for name in names:
            call = getattr(inner, name)

            def timed(*args: Any, _call: Any = call, _name: str = name) -> Any:
                start = now()
                result = _call(*args)
                record(_name, start, now(), result)
                return result

            setattr(self, name, timed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def timing(make: Callable[..., Any], record: Callable[[str, int, int, Any], None],
           names: Sequence[str]) -> Callable[..., Any]:
    """``make`` (a compiled step's factory) whose objects come :class:`Timed`."""
    def made(*args: Any) -> Any:
        fast = make(*args)
        return None if fast is None else Timed(fast, record, names)
    return made


def compiled_path() -> None:
    """Refuse to run where the compiled steps are not built (this script times only them)."""
    from rlmesh.transport import fastframes, fastslots

    for module in (fastframes, fastslots):
        why = module.why_not()
        if why is not None:
            raise SystemExit(f"{module.__name__}: no compiled steps here ({why})")


# -- the server child --------------------------------------------------------------------------


def serve(address: str, vector: int, timed: bool) -> int:
    """Child: serve the env (with ``timed``, its compiled calls timed; the steps on request)."""
    from rlmesh.server import handshake as server_handshake
    from rlmesh.transport import fastslots

    clock = python_path.Clock()
    steps: list[dict[str, Any]] = []
    state: dict[str, Any] = {"served": None}

    def record(name: str, start: int, end: int, result: Any) -> None:
        current = clock.current
        if name == "serve":
            loop = None if state["served"] is None else start - state["served"]
            state["served"] = end
            if type(result) is int and result != fastslots.DONE:
                return  # (nothing taken: the request is received on the Python path)
            whole = result == fastslots.DONE  # (else handed on: finished in Python)
            steps.append({"whole": whole, "loop": loop,
                          **{k: current.get(k) for k in ("env_step", "env_step_t0",
                                                         "env_step_t1")}})
        elif name == "put":  # (a step the Python path answered: not whole)
            steps.append({"whole": False})

    env = python_path.make_env(vector)
    if timed:
        for name in ("server_frames", "server_steps"):
            made = timing(getattr(server_handshake, name), record, ("serve", "put"))
            setattr(server_handshake, name, made)
        env = python_path.timed_env(env, clock)
    return python_path.serve_reporting(env, address, steps)


# -- the client --------------------------------------------------------------------------------


@contextlib.contextmanager
def timed_client(clock: python_path.Clock) -> Iterator[None]:
    """Channels opened in the block time their compiled step into ``clock``."""
    from rlmesh.client import handshake as client_handshake
    from rlmesh.transport import fastframes

    current = clock.current

    def record(name: str, start: int, end: int, result: Any) -> None:
        current["fast"], current["fast_t0"], current["fast_t1"] = end - start, start, end
        current["handed_on"] = int(type(result) is not list)

    with contextlib.ExitStack() as patches:
        for module, name in ((fastframes, "client_frames"), (client_handshake, "client_steps")):
            made = timing(getattr(module, name), record, ("step",))
            patches.enter_context(unittest.mock.patch.object(module, name, made))
        yield


def measure(kind: str, steps: int, sock_dir: str, clock: python_path.Clock | None,
            vector: int) -> dict[str, Any]:
    """One transport, as ``step_breakdown.measure``, with this script's server and timing."""
    timing = timed_client(clock) if clock is not None and kind != "inprocess" else None
    run = python_path.measure(kind, steps, sock_dir, clock, vector, SCRIPT, timing)
    if timing is not None and not (run["server"] and all("fast" in c for c in run["client"])):
        raise RuntimeError(f"{kind}: a side stepped without its compiled calls (this script "
                           "times only those: is the contract one of fixed shapes?)")
    return run


Piece = Callable[[dict[str, Any], dict[str, Any]], float | None]


def _whole(c: dict[str, Any], s: dict[str, Any]) -> bool:
    """Whether both sides did this step in their compiled calls alone."""
    return not s or (not c.get("handed_on") and bool(s.get("whole")))


PIECES: tuple[tuple[str, str, Piece], ...] = (
    ("client", "RemoteEnv.step, whole call", lambda c, s: c["total"]),
    ("client", "compiled step call (request out, wait, reply read)",
     lambda c, s: c.get("fast") if s else None),
    ("client", "other client Python", lambda c, s: c["total"] - c["fast"] if s else None),
    ("crossing", "request: client call starts -> env.step starts (server: read, check)",
     lambda c, s: s["env_step_t0"] - c["fast_t0"] if s else None),
    ("server", "env.step", lambda c, s: (s or c).get("env_step")),
    ("crossing", "reply: env.step returns -> client call returns (server: write or send)",
     lambda c, s: c["fast_t1"] - s["env_step_t1"] if s else None),
    ("server", "session loop between two serve calls (off the step's path)",
     lambda c, s: s.get("loop")),
)


def breakdown(run: dict[str, Any]) -> tuple[dict[str, float | None], int]:
    """Per piece label, the median µs over the whole steps; and how many were not whole."""
    client, server = run["client"], run["server"]
    if server and len(server) != len(client):
        raise RuntimeError(f"{run['kind']}: {len(client)} client steps, {len(server)} server")
    pairs = list(zip(client, server or [{}] * len(client), strict=True))
    whole = [(c, s) for c, s in pairs if _whole(c, s)]
    out: dict[str, float | None] = {}
    for side, label, piece in PIECES:
        values = [v for c, s in whole if (v := piece(c, s)) is not None]
        out[f"{side}: {label}"] = statistics.median(values) / 1000 if values else None
    return out, len(pairs) - len(whole)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the compiled paths' breakdown (or, with ``--serve``, be its server child)."""
    parser = argparse.ArgumentParser(prog="compiled_breakdown",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="measured steps per transport")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write JSON here")
    parser.add_argument("--vector", type=int, default=0, metavar="N",
                        help="step SyncVectorEnv(N) of CartPole instead of one CartPole")
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="tcp", help=argparse.SUPPRESS)  # (set by the parent)
    parser.add_argument("--timed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.pop("RLMESH_PURE_PYTHON", None)
    compiled_path()
    if args.serve is not None:
        return serve(args.serve, args.vector, args.timed)
    sock_dir = tempfile.mkdtemp(prefix="rlmesh-breakdown-")
    try:
        kinds = ("inprocess", "link", "tcp")
        plain = {k: measure(k, args.steps, sock_dir, None, args.vector)["wall_us"]
                 for k in kinds}
        clock = python_path.Clock()
        runs = {k: measure(k, args.steps, sock_dir, clock, args.vector) for k in kinds}
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    results = {k: breakdown(run) for k, run in runs.items()}
    columns = {k: pieces for k, (pieces, _) in results.items()}
    print(f"{f'SyncVectorEnv({args.vector}) of ' if args.vector else ''}{python_path.ENV_ID}, "
          f"{args.steps} steps per transport, the compiled paths\n")
    print(python_path.table(columns, plain))
    left_out = {k: n for k, (_, n) in results.items() if n}
    if left_out:
        print("\nsteps handed to the Python path (left out of the medians): "
              + ", ".join(f"{k} {n}" for k, n in left_out.items()))
    if args.json:
        core.write_json(args.json, {"steps": args.steps, "vector": args.vector,
                                    "compiled": True, "breakdown": columns,
                                    "handed_on": left_out, "uninstrumented_us": plain,
                                    "instrumented_wall_us": {k: r["wall_us"]
                                                             for k, r in runs.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
