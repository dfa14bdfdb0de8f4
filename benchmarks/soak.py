"""Soak test: a million CartPole steps through one ``rlmesh serve`` child, watching for leaks.

Run it as a script::

    uv run python benchmarks/soak.py                            # 1,000,000 steps, 4 clients
    uv run python benchmarks/soak.py --steps 200000 --clients 2
    uv run python benchmarks/soak.py --mode processes --reconnect-every 50000

One server child process (``rlmesh.testing.spawn_server("CartPole-v1")``, a factory endpoint
with default settings, so the same-host link is negotiated) is driven by ``--clients`` client
threads (or processes with ``--mode processes``), each stepping CartPole with alternating
actions and resetting at episode end. Every client closes its ``RemoteEnv`` and opens a new
one every ``--reconnect-every`` (10,000) of its steps, so session set-up and tear-down are
soaked too.

The server's RSS (``VmRSS``), open file descriptors (``/proc/PID/fd``) and threads
(``Threads``) are sampled before and after a warm-up (``--warmup`` steps, after which every
client disconnects: the baseline), about ten times while the clients run, and at the end
once every client has closed and the server has had a moment to tidy up.

Exit status: 0 if, at the end against the baseline, the fd and thread counts are back where
they were and RSS grew by at most 10 % + 5 MiB; 1 otherwise (or if a client failed).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rlmesh.numpy import RemoteEnv
from rlmesh.testing import spawn_server

MIB = 1024 * 1024
RSS_GROWTH_PERCENT = 10.0
RSS_GROWTH_SLACK_MIB = 5.0
PROGRESS_EVERY = 1000  # client steps between progress-counter updates


@dataclasses.dataclass(frozen=True)
class Sample:
    """One look at the server process."""

    label: str
    steps: int
    seconds: float
    rss_bytes: int
    fds: int
    threads: int


def sample_process(pid: int, label: str, steps: int, seconds: float) -> Sample:
    """Read RSS, fd count and thread count of ``pid`` from /proc."""
    rss = threads = -1
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Sample(label, steps, seconds, rss, fds, threads)


def run_client(address: str, steps: int, reconnect_every: int, seed: int,
               progress: Any) -> tuple[int, int, int]:
    """Step CartPole ``steps`` times; returns (steps, episodes, sessions opened).

    ``progress`` is a shared counter (``multiprocessing.Value``) bumped every
    ``PROGRESS_EVERY`` steps.
    """
    done = episodes = sessions = 0
    pending = 0
    while done < steps:
        env = RemoteEnv(address, connect_timeout=30, timeout=30)
        sessions += 1
        try:
            env.reset(seed=seed + sessions)
            chunk = min(reconnect_every, steps - done)
            for t in range(chunk):
                _, _, terminated, truncated, _ = env.step(t & 1)
                if terminated or truncated:
                    episodes += 1
                    env.reset()
                pending += 1
                if pending == PROGRESS_EVERY:
                    with progress.get_lock():
                        progress.value += pending
                    pending = 0
            done += chunk
        finally:
            env.close()
    with progress.get_lock():
        progress.value += pending
    return done, episodes, sessions


def _process_client(address: str, steps: int, reconnect_every: int, seed: int, progress: Any,
                    results: Any) -> None:
    try:
        results.put(("ok", run_client(address, steps, reconnect_every, seed, progress)))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))
        raise


def drive(address: str, total_steps: int, clients: int, reconnect_every: int, mode: str,
          on_tick: Callable[[int], None] | None = None, seed: int = 0,
          ) -> tuple[int, int, int]:
    """Run ``clients`` clients for ``total_steps`` steps in all; (steps, episodes, sessions).

    ``on_tick(steps_so_far)`` is called about every 0.2 s from this thread.

    Raises:
        RuntimeError: If any client failed.
    """
    ctx = mp.get_context("spawn")
    progress = ctx.Value("q", 0)
    shares = [total_steps // clients + (1 if i < total_steps % clients else 0)
              for i in range(clients)]
    outcomes: list[tuple[str, Any]] = []
    if mode == "processes":
        results = ctx.Queue()
        procs = [ctx.Process(target=_process_client, daemon=True,
                             args=(address, share, reconnect_every, seed + 1000 * i, progress,
                                   results))
                 for i, share in enumerate(shares)]
        for proc in procs:
            proc.start()
        try:
            while len(outcomes) < clients:
                if on_tick is not None:
                    on_tick(progress.value)
                try:
                    outcomes.append(results.get(timeout=0.2))
                except Exception:  # queue.Empty
                    if any(p.exitcode not in (None, 0) for p in procs):
                        break
        finally:
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        if len(outcomes) < clients:
            outcomes.append(("error", "a client process died without a result"))
    else:
        lock = threading.Lock()

        def thread_client(i: int) -> None:
            try:
                outcome: tuple[str, Any] = (
                    "ok", run_client(address, shares[i], reconnect_every, seed + 1000 * i,
                                     progress))
            except Exception as exc:
                outcome = ("error", f"{type(exc).__name__}: {exc}")
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=thread_client, args=(i,), daemon=True)
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            if on_tick is not None:
                on_tick(progress.value)
            for thread in threads:
                thread.join(0.2 / clients)
    errors = [detail for kind, detail in outcomes if kind != "ok"]
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    steps = sum(r[0] for _, r in outcomes)
    episodes = sum(r[1] for _, r in outcomes)
    sessions = sum(r[2] for _, r in outcomes)
    return steps, episodes, sessions


def settle(pid: int, baseline: Sample | None, within: float) -> Sample:
    """Sample after clients closed, waiting up to ``within`` s for fds/threads to settle."""
    deadline = time.monotonic() + within
    time.sleep(0.5)
    while True:
        sample = sample_process(pid, "", 0, 0.0)
        if baseline is None or (sample.fds <= baseline.fds
                                and sample.threads <= baseline.threads):
            return sample
        if time.monotonic() > deadline:
            return sample
        time.sleep(0.25)


def table(samples: Sequence[Sample]) -> str:
    """The samples as a markdown table."""
    lines = ["| sample | steps | time (s) | RSS (MiB) | fds | threads |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in samples:
        lines.append(f"| {s.label} | {s.steps:,} | {s.seconds:.1f} | {s.rss_bytes / MIB:.1f} "
                     f"| {s.fds} | {s.threads} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; 0 if nothing leaked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000, help="total steps (all clients)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--mode", choices=("threads", "processes"), default="threads",
                        help="run clients as threads of this process (default: on two cores "
                        "the server is the bottleneck and threads win) or as processes")
    parser.add_argument("--reconnect-every", type=int, default=10_000,
                        help="steps per client session before it reconnects")
    parser.add_argument("--warmup", type=int, default=20_000, help="warm-up steps (all clients)")
    parser.add_argument("--samples", type=int, default=10, help="samples taken while running")
    args = parser.parse_args(argv)
    if min(args.steps, args.clients, args.reconnect_every, args.samples) < 1 or args.warmup < 0:
        parser.error("--steps, --clients, --reconnect-every and --samples must be positive")

    server = spawn_server("CartPole-v1")
    pid = server.pid
    try:
        samples = [sample_process(pid, "fresh server", 0, 0.0)]
        if args.warmup:
            drive(server.address, args.warmup, args.clients, args.reconnect_every, args.mode,
                  seed=10_000_000)
        base = settle(pid, None, 0)
        baseline = dataclasses.replace(base, label="after warm-up (baseline)")
        samples.append(baseline)

        start = time.monotonic()
        next_at = [args.steps // args.samples]

        def tick(done: int) -> None:
            if done >= next_at[0] and next_at[0] < args.steps:
                samples.append(sample_process(pid, "running", done, time.monotonic() - start))
                next_at[0] += args.steps // args.samples

        steps, episodes, sessions = drive(server.address, args.steps, args.clients,
                                          args.reconnect_every, args.mode, on_tick=tick)
        wall = time.monotonic() - start
        end = settle(pid, baseline, 10.0)
        samples.append(dataclasses.replace(end, label="end, clients closed", steps=steps,
                                           seconds=time.monotonic() - start))
        alive = server.process.poll() is None
    finally:
        server.stop()

    growth = (end.rss_bytes - baseline.rss_bytes) / MIB
    growth_pct = 100.0 * (end.rss_bytes - baseline.rss_bytes) / baseline.rss_bytes
    allowed = baseline.rss_bytes / MIB * RSS_GROWTH_PERCENT / 100 + RSS_GROWTH_SLACK_MIB
    fd_delta = end.fds - baseline.fds
    thread_delta = end.threads - baseline.threads

    print(f"soak: {steps:,} steps, {episodes:,} episodes, {sessions:,} sessions, "
          f"{args.clients} client {args.mode}, {wall:.1f} s, {steps / wall:,.0f} steps/s "
          f"(server pid {pid}, {sys.implementation.name} {sys.version.split()[0]})")
    print()
    print(table(samples))
    print()
    problems = []
    if not alive:
        problems.append("the server died")
    if growth > allowed:
        problems.append(f"RSS grew {growth:.1f} MiB > {allowed:.1f} MiB allowed")
    if fd_delta > 0:
        problems.append(f"{fd_delta} fd(s) leaked")
    if thread_delta > 0:
        problems.append(f"{thread_delta} thread(s) leaked")
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    print(f"verdict: {verdict} | RSS {growth:+.2f} MiB ({growth_pct:+.1f} %) since warm-up, "
          f"fds {fd_delta:+d}, threads {thread_delta:+d}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
