"""Isolated (uv sandbox) servers against plain ``rlmesh serve`` subprocesses.

Three questions, each answered with interleaved rounds and medians:

* **start to first reset, warm**: from asking for a server to the first ``reset`` reply, for
  a plain ``rlmesh serve CartPole-v1`` child and for the same env through
  :class:`rlmesh.sandbox.uv.UvRunner` with its environment already cached (``numpy<2``
  beside this rlmesh). The goal: the isolated start within 2x of the plain one.
* **start to first reset, cold**: the same with an empty env cache (a fresh
  ``RLMESH_CACHE_DIR``: the rlmesh wheel and the environment are built; uv's own package
  cache stays warm). Reported, no goal.
* **steps/s**: CartPole steps through each server (both up at once, same-host path over a
  unix socket), alternating short trials; the per-round ratio isolated/plain should be
  within noise of 1.

Run it as a script::

    uv run python benchmarks/bench_sandbox.py            # 7 rounds, ~1 min
    uv run python benchmarks/bench_sandbox.py --quick    # 3 rounds
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlmesh.numpy import RemoteEnv
from rlmesh.sandbox.options import SandboxBuild
from rlmesh.sandbox.runner import Launch
from rlmesh.sandbox.uv import UvRunner

BUILD = SandboxBuild(packages=["numpy<2"])
"""The isolated stack (``--with`` replaces its requirements)."""


class Plain:
    """A plain ``rlmesh serve`` child on a unix socket in a private directory."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="rlmesh-bench-")
        ready = Path(self.directory, "ready")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rlmesh", "serve", "CartPole-v1", "--address",
             f"unix://{self.directory}/env.sock", "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not ready.exists() or not ready.read_text().strip():
            if self.process.poll() is not None:
                raise RuntimeError("the plain server exited")
            time.sleep(0.005)
        self.address = ready.read_text().strip()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.directory, ignore_errors=True)


class Isolated:
    """The same env from the uv sandbox backend."""

    def __init__(self) -> None:
        self.running = UvRunner().start(Launch("env", "CartPole-v1", build=BUILD), timeout=600)
        self.address = self.running.address

    def stop(self) -> None:
        self.running.stop()


def first_reset(make: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds from asking for a server to its first reset reply; and the server."""
    started = time.perf_counter()
    server = make()
    with RemoteEnv(server.address) as env:
        env.reset(seed=0)
    return time.perf_counter() - started, server


def steps_per_second(address: str, seconds: float) -> float:
    with RemoteEnv(address) as env:
        env.reset(seed=0)
        steps, action, started = 0, 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            _, _, terminated, truncated, _ = env.step(action)
            action ^= 1
            steps += 1
            if terminated or truncated:
                env.reset()
        return steps / (time.perf_counter() - started)


def timed_start(kind: type[Plain] | type[Isolated]) -> float:
    seconds, server = first_reset(kind)
    server.stop()
    return seconds


def cold_start() -> float:
    previous = os.environ.get("RLMESH_CACHE_DIR")
    fresh = tempfile.mkdtemp(prefix="rlmesh-bench-cache-")
    os.environ["RLMESH_CACHE_DIR"] = fresh
    try:
        return timed_start(Isolated)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        if previous is not None:
            os.environ["RLMESH_CACHE_DIR"] = previous


def _summary(name: str, values: list[float], unit: str) -> str:
    return (f"{name:<44} median {statistics.median(values):8.3f} {unit}  "
            f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--trial-seconds", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.5 s trials")
    parser.add_argument("--with", dest="packages", action="append", metavar="REQ",
                        help="the isolated stack's requirements (default numpy<2; "
                        "--with '' for none)")
    args = parser.parse_args(argv)
    if args.packages is not None:
        global BUILD
        BUILD = SandboxBuild(packages=[p for p in args.packages if p])
    rounds, trial = (3, 0.5) if args.quick else (args.rounds, args.trial_seconds)
    cache = tempfile.mkdtemp(prefix="rlmesh-bench-cache-")
    os.environ["RLMESH_CACHE_DIR"] = cache
    try:
        cold = [cold_start() for _ in range(max(2, rounds // 2))]
        Isolated().stop()  # build the warm environment once
        plain_start, isolated_start, start_ratio = [], [], []
        for index in range(rounds):
            order = [Plain, Isolated] if index % 2 == 0 else [Isolated, Plain]
            got = {kind: timed_start(kind) for kind in order}
            plain_start.append(got[Plain])
            isolated_start.append(got[Isolated])
            start_ratio.append(got[Isolated] / got[Plain])
        plain, isolated = Plain(), Isolated()
        for server in (plain, isolated):
            with RemoteEnv(server.address) as env:
                print(f"{type(server).__name__}: same-host link {env.contract.get('shm_link')}, "
                      f"shm {env.contract.get('shm')}")
        try:
            plain_rate, isolated_rate, rate_ratio = [], [], []
            for index in range(rounds):
                order = [plain, isolated] if index % 2 == 0 else [isolated, plain]
                got = {id(s): steps_per_second(s.address, trial) for s in order}
                plain_rate.append(got[id(plain)])
                isolated_rate.append(got[id(isolated)])
                rate_ratio.append(got[id(isolated)] / got[id(plain)])
        finally:
            plain.stop()
            isolated.stop()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(_summary("start to first reset, plain rlmesh serve", plain_start, "s"))
    print(_summary("start to first reset, isolated (warm cache)", isolated_start, "s"))
    print(_summary("  ratio isolated/plain (per round)", start_ratio, "x"))
    print(_summary("start to first reset, isolated (cold cache)", cold, "s"))
    print(_summary("steps/s, plain", plain_rate, "/s"))
    print(_summary("steps/s, isolated", isolated_rate, "/s"))
    print(_summary("  ratio isolated/plain (per round)", rate_ratio, "x"))
    print(f"isolated stack: {', '.join(BUILD.packages) or 'no extra requirements'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
