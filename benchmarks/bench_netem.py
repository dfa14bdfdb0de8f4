"""Async stepping under network latency: two network namespaces, 2 ms RTT, sync vs async.

The setup is built by this script and torn down on exit (also on Ctrl+C or SIGTERM):

* two network namespaces (server side, client side) joined by a veth pair with the
  link-local addresses 169.254.77.1 and 169.254.77.2: traffic never leaves the machine, and
  never reaches any other interface;
* 16 ``rlmesh serve CartPole-v1 --num-envs 4`` processes (vector endpoints, 4 CartPole envs
  each: 64 envs) in the server namespace, one TCP port each on 169.254.77.1;
* the client in the client namespace drives all 64 envs as one ``RemoteVectorEnv`` of 16
  endpoints, synchronously (``step``) and with async stepping (``batch_size`` lanes per
  ``recv``), with ``RLMESH_SAME_HOST=0`` on both sides so every frame crosses the veth link.

Latency: ``tc qdisc add dev VETH root netem delay 1ms`` on both veth ends (2 ms RTT). Without
netem (a kernel built without ``sch_netem``) the script says so and stops, unless ``--relay``
is given: then a user-space relay in the client namespace (one process) delays every chunk
by the same 1 ms each way; the no-delay baseline goes through the same relay with no delay,
so the ratio compares like with like.

Reported: env-steps/s for each mode, with and without delay, and the ratio delayed/no-delay
(goal: async >= 0.80). Why ``batch_size`` = half: while the policy works on one half of the
lanes the other half is on the wire, so the link is never idle; ``--batch-size`` tries others.

Needs root (``ip netns``, ``tc``) on Linux::

    sudo uv run python benchmarks/bench_netem.py            # 3 rounds x 3 s per variant
    sudo uv run python benchmarks/bench_netem.py --relay    # if the kernel has no netem
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SERVER_IP, CLIENT_IP = "169.254.77.1", "169.254.77.2"
ENDPOINTS, ENVS_PER_ENDPOINT, BASE_PORT = 16, 4, 47100


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


class Namespaces:
    """The two namespaces and their veth pair; ``close`` removes everything it made."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.server, self.client = f"rlmesh-srv-{tag}", f"rlmesh-cli-{tag}"
        self.veth_s, self.veth_c = f"rms{tag}", f"rmc{tag}"
        self.made: list[str] = []

    def open(self) -> None:
        for ns in (self.server, self.client):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
        sh("ip", "link", "add", self.veth_s, "netns", self.server, "type", "veth",
           "peer", "name", self.veth_c, "netns", self.client)
        for ns, dev, ip in ((self.server, self.veth_s, SERVER_IP),
                            (self.client, self.veth_c, CLIENT_IP)):
            self.run(ns, "ip", "addr", "add", f"{ip}/30", "dev", dev)
            self.run(ns, "ip", "link", "set", dev, "up")
            self.run(ns, "ip", "link", "set", "lo", "up")

    def run(self, ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", ns, *cmd, check=check)

    def netem_available(self) -> str | None:
        """``None`` if netem works here, else the reason it does not."""
        probe = self.run(self.server, "tc", "qdisc", "add", "dev", self.veth_s, "root",
                         "netem", "delay", "0ms", check=False)
        if probe.returncode != 0:
            return probe.stderr.strip() or "tc netem failed"
        self.run(self.server, "tc", "qdisc", "del", "dev", self.veth_s, "root", check=False)
        return None

    def set_delay(self, ms: float) -> None:
        for ns, dev in ((self.server, self.veth_s), (self.client, self.veth_c)):
            self.run(ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
            if ms:
                self.run(ns, "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay",
                         f"{ms}ms")

    def close(self) -> None:
        for ns in self.made:  # (deleting a namespace deletes its end of the veth pair)
            sh("ip", "netns", "del", ns, check=False)
        self.made.clear()


@contextlib.contextmanager
def started(cmds: list[list[str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cmd in cmds:
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_ready(files: list[Path], procs: list[subprocess.Popen[bytes]], within: float) -> None:
    deadline = time.monotonic() + within
    while not all(f.exists() and f.read_text().strip() for f in files):
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a server exited early: {dead[0]}")
        if time.monotonic() > deadline:
            raise RuntimeError("the servers did not start in time")
        time.sleep(0.05)


# -- the relay (only with --relay) -------------------------------------------------------------


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds late, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def flush() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                writer.close()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)

    flusher = asyncio.ensure_future(flush())
    while True:
        data = await reader.read(1 << 16)
        queue.put_nowait((loop.time() + delay, data))
        if not data:
            break
    await flusher


async def _relay(ports: list[int], delay: float) -> None:
    async def handle(port: int, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection(SERVER_IP, port)
        for w in (cw, sw):
            w.transport.get_extra_info("socket").setsockopt(6, 1, 1)  # TCP_NODELAY
        await asyncio.gather(_pump(cr, sw, delay), _pump(sr, cw, delay))

    servers = [await asyncio.start_server(lambda r, w, p=p: handle(p, r, w), "127.0.0.1",
                                          p + 1000) for p in ports]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# -- the client (runs in the client namespace) ---------------------------------------------------


def client(addresses: list[str], seconds: float, batch_size: int | None) -> dict[str, Any]:
    import numpy as np

    import rlmesh

    env = rlmesh.RemoteVectorEnv(addresses, batch_size=batch_size, timeout=60)
    try:
        if any(c.contract.get("shm_link") for c in env._fleet.channels):  # type: ignore[union-attr]
            raise RuntimeError("the same-host link was negotiated: set RLMESH_SAME_HOST=0")
        n, rng = env.num_envs, np.random.default_rng(0)
        actions = rng.integers(0, 2, size=(256, n))
        steps, t = 0, 0
        if batch_size is None:
            env.reset(seed=0)
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                env.step(actions[t % 256])
                t, steps = t + 1, steps + n
        else:
            env.async_reset(seed=0)
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                *_, infos = env.recv()
                ids = infos["env_id"]
                env.send(actions[t % 256][: len(ids)], ids)
                t, steps = t + 1, steps + len(ids)
        elapsed = time.perf_counter() - start
        return {"steps_per_s": steps / elapsed, "steps": steps, "seconds": elapsed}
    finally:
        env.close()


# -- the driver ----------------------------------------------------------------------------------


def measure(ns: Namespaces, addresses: list[str], seconds: float,
            batch_size: int | None) -> float:
    cmd = [sys.executable, __file__, "--client", json.dumps(addresses), "--seconds",
           str(seconds), "--client-batch", str(batch_size or 0)]
    out = ns.run(ns.client, "env", "RLMESH_SAME_HOST=0", *cmd)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"])


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("bench_netem needs root (ip netns, tc): not run.")
        return 3
    ns = Namespaces()
    try:
        ns.open()
    except (subprocess.CalledProcessError, OSError) as exc:
        ns.close()
        detail = getattr(exc, "stderr", "") or exc
        print(f"network namespaces are not allowed on this machine ({detail!s:.200}): "
              "bench_netem stops here.")
        return 3
    try:
        return drive(ns, args)
    finally:
        ns.close()


def drive(ns: Namespaces, args: argparse.Namespace) -> int:
    reason = ns.netem_available()
    if reason is not None and not args.relay:
        print(f"tc netem is not available here ({reason}): the kernel lacks sch_netem. "
              "bench_netem stops here (--relay delays in user space instead).")
        return 3
    num_envs = ENDPOINTS * ENVS_PER_ENDPOINT
    batch = args.batch_size or num_envs // 2
    ports = [BASE_PORT + i for i in range(ENDPOINTS)]
    with tempfile.TemporaryDirectory() as tmp:
        ready = [Path(tmp) / f"ready{i}" for i in range(ENDPOINTS)]
        serve = [["ip", "netns", "exec", ns.server, "env", "RLMESH_SAME_HOST=0",
                  sys.executable, "-m", "rlmesh", "serve", "CartPole-v1", "--num-envs",
                  str(ENVS_PER_ENDPOINT), "--address", f"{SERVER_IP}:{p}", "--log-level",
                  "warning", "--ready-file", str(f)] for p, f in zip(ports, ready, strict=True)]
        with started(serve) as procs:
            wait_ready(ready, procs, 60)
            results = compare(ns, ports, args, batch, reason is not None)
    report(results, args, batch, reason)
    return 0


def compare(ns: Namespaces, ports: list[int], args: argparse.Namespace, batch: int,
            relay: bool) -> dict[tuple[str, str], list[float]]:
    results: dict[tuple[str, str], list[float]] = {}
    direct = [f"{SERVER_IP}:{p}" for p in ports]
    relayed = [f"127.0.0.1:{p + 1000}" for p in ports]
    for r in range(args.rounds):
        for delay in ((0.0, 1.0) if r % 2 == 0 else (1.0, 0.0)):
            label = "2 ms RTT" if delay else "no delay"
            relay_cmd = [["ip", "netns", "exec", ns.client, sys.executable, __file__,
                          "--relay-delay", str(delay / 1000), "--relay-ports",
                          json.dumps(ports)]] if relay else []
            if not relay:
                ns.set_delay(delay)
            with started(relay_cmd):
                time.sleep(1.0 if relay else 0)
                for mode, size in (("sync", None), ("async", batch)):
                    rate = measure(ns, relayed if relay else direct, args.seconds, size)
                    results.setdefault((mode, label), []).append(rate)
                    print(f"round {r + 1}: {mode:5} {label:8} {rate:10,.0f} env-steps/s",
                          flush=True)
    ns.set_delay(0)
    return results


def report(results: dict[tuple[str, str], list[float]], args: argparse.Namespace, batch: int,
           reason: str | None) -> None:
    def median(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    how = "tc netem, 1 ms each way" if reason is None else "user-space relay, 1 ms each way"
    print(f"\n64 CartPole envs = {ENDPOINTS} endpoints x {ENVS_PER_ENDPOINT}; latency by {how}; "
          f"{args.rounds} rounds x {args.seconds} s; medians")
    print("| mode | no delay (env-steps/s) | 2 ms RTT (env-steps/s) | delayed / no delay |")
    print("|---|---:|---:|---:|")
    for mode, name in (("sync", "sync `step()`"), ("async", f"async, batch_size={batch}")):
        fast, slow = median(results[(mode, "no delay")]), median(results[(mode, "2 ms RTT")])
        print(f"| {name} | {fast:,.0f} | {slow:,.0f} | {slow / fast:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="lanes per recv() (default: half of the 64)")
    parser.add_argument("--relay", action="store_true",
                        help="without netem: delay in a user-space relay instead")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--client-batch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--relay-delay", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--relay-ports", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        print(json.dumps(client(json.loads(args.client), args.seconds,
                                args.client_batch or None)))
        return 0
    if args.relay_delay is not None:
        asyncio.run(_relay(json.loads(args.relay_ports), args.relay_delay))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs in finally
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
