"""The ``rlmesh`` command.

``serve``, ``ping`` and ``demo`` live here; ``eval``, ``describe``, ``plot`` and ``bench`` in
:mod:`rlmesh.commands`.

Exit codes: 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym

from rlmesh.channel import probe
from rlmesh.commands import add_commands, write_ready
from rlmesh.errors import RLMeshError
from rlmesh.options import ServeOptions
from rlmesh.server import EnvServer, stop_on_signals
from rlmesh.targets import load_target, parse_kwargs
from rlmesh.tls import client_context, server_context

log = logging.getLogger("rlmesh")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a target until interrupted (SIGINT or SIGTERM)."""
    target = load_target(args.target, parse_kwargs(args.kwargs), imports=args.imports,
                         render_mode=args.render_mode,
                         max_episode_steps=args.max_episode_steps)
    if args.num_envs > 1:
        if not callable(target) or hasattr(target, "step"):
            raise ValueError("--num-envs needs an env id or a factory, not an env instance")
        make_one, count = target, args.num_envs
        target = lambda: gym.vector.SyncVectorEnv([make_one] * count)  # noqa: E731
    tls = None
    if args.tls_cert:
        tls = server_context(args.tls_cert, args.tls_key, client_ca=args.tls_client_ca)
    elif args.tls_key or args.tls_client_ca:
        raise ValueError("--tls-key and --tls-client-ca need --tls-cert")
    options = ServeOptions(
        max_sessions=args.max_sessions, idle_timeout=args.idle_timeout,
        step_deadline=args.step_deadline, restart_on_error=args.restart_on_error,
        drain_timeout=args.drain_timeout, allow_remote_shutdown=args.allow_remote_shutdown)
    server = EnvServer(target, args.address, workers=args.workers, options=options, tls=tls,
                       token=args.token)
    stop_on_signals()
    if args.ready_file:
        write_ready(args.ready_file, server.address)
    if args.ready_fd is not None:
        with contextlib.suppress(OSError), os.fdopen(args.ready_fd, "w") as handle:
            handle.write(server.address + "\n")
    log.info("serving %s on %s", args.target, server.address)
    server.serve()
    return 0


def cmd_ping(args: argparse.Namespace) -> int:
    """Exit 0 if the endpoint answers a health probe, 1 otherwise."""
    start = time.perf_counter()
    tls = client_context(args.tls_ca) if args.tls_ca else None
    contract = probe(args.address, timeout=args.timeout, tls=tls)
    elapsed = (time.perf_counter() - start) * 1000
    if contract.get("auth") is True and "kind" not in contract:
        print(f"{args.address}: serving (authentication required) ({elapsed:.1f} ms)")
        return 0
    spec = contract.get("spec") or {}
    what = spec.get("id") if isinstance(spec, dict) and spec.get("id") else "a custom env"
    if contract.get("kind") == "vector_env":
        what = f"a vector env of {contract.get('num_envs')} x {what}"
    busy = " (its env instance is busy)" if contract.get("busy") else ""
    print(f"{args.address}: serving {what}{busy} ({elapsed:.1f} ms)")
    return 0


def _evaluate(address: str, max_steps: int) -> str:
    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv(address)
    try:
        lines = [f"{address}: connected"]
        env.reset(seed=0)
        env.action_space.seed(0)
        total = 0.0
        for step in range(1, max_steps + 1):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            if terminated or truncated:
                lines.append(f"{address}: episode complete after {step} steps, "
                             f"return {total:.1f}")
                break
        else:
            lines.append(f"{address}: stopped after {max_steps} steps, return {total:.1f}")
        return "\n".join(lines)
    finally:
        env.close()


def cmd_demo(args: argparse.Namespace) -> int:
    """Start two local endpoints and drive both from one evaluator."""
    from rlmesh.testing import spawn_server

    targets = ["CartPole-v1", "rlmesh.envs:CounterEnv"]
    print("starting endpoints: " + ", ".join(targets))
    with ThreadPoolExecutor(len(targets)) as pool:
        servers = list(pool.map(spawn_server, targets))
    try:
        for target, server in zip(targets, servers, strict=True):
            print(f"  {target} serving on {server.address} (pid {server.pid})")
        print("evaluating both concurrently, one thread per endpoint, random actions:")
        with ThreadPoolExecutor(len(servers)) as pool:
            futures = [pool.submit(_evaluate, s.address, args.max_steps) for s in servers]
            for future in futures:
                print(future.result())
    finally:
        for server in servers:
            server.stop()
    print("done: both endpoints stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rlmesh`` command."""
    parser = argparse.ArgumentParser(prog="rlmesh", description=(
        "Serve reinforcement-learning environments over the network and drive them."))
    parser.add_argument("-v", "--verbose", action="store_true", help="log details and "
                        "show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve an env (one env per client session)")
    serve.add_argument("target", help="registered env id (CartPole-v1), module:ENV_ID "
                       "(ale_py:ALE/Pong-v5) or module:callable")
    serve.add_argument("--address", default="127.0.0.1:5555",
                       help="host:port, tcp://host:port or unix:///path (default %(default)s)")
    serve.add_argument("--kwargs", help="JSON object of keyword arguments for the env")
    serve.add_argument("--import", dest="imports", action="append", default=[],
                       metavar="MODULE", help="import MODULE first, to register the env ids "
                       "it provides (repeatable; e.g. --import ale_py for ALE/Pong-v5)")
    serve.add_argument("--render-mode", metavar="MODE", help="render mode for the env "
                       "(rgb_array, ...): given to gymnasium.make or to the callable")
    serve.add_argument("--max-episode-steps", type=int, metavar="N",
                       help="truncate episodes after N steps (gymnasium.make's "
                       "max_episode_steps; a TimeLimit around a callable's env)")
    serve.add_argument("--token", help="require clients to know this token (default "
                       "RLMESH_TOKEN); a token on the command line is visible to other local "
                       "users, so prefer the variable")
    serve.add_argument("--ready-file", help="write the resolved address here once listening")
    serve.add_argument("--ready-fd", type=int, metavar="N",
                       help="write the resolved address to file descriptor N, then close it")
    serve.add_argument("--num-envs", type=int, default=1,
                       help="serve a vector env of N copies (a SyncVectorEnv; default 1)")
    serve.add_argument("--workers", type=int, default=1,
                       help="processes sharing the TCP port (SO_REUSEPORT; default 1)")
    limits = serve.add_argument_group("limits and lifecycle (see rlmesh.ServeOptions)")
    limits.add_argument("--max-sessions", type=int, metavar="N",
                        help="refuse clients beyond N concurrent sessions")
    limits.add_argument("--idle-timeout", type=float, metavar="S",
                        help="close sessions idle for S seconds")
    limits.add_argument("--step-deadline", type=float, metavar="S",
                        help="answer an env call running past S seconds with a deadline error")
    limits.add_argument("--restart-on-error", type=int, default=0, metavar="N",
                        help="replace a crashed env up to N times per session (default 0)")
    limits.add_argument("--drain-timeout", type=float, default=10.0, metavar="S",
                        help="on SIGTERM/SIGINT, let requests in flight finish for up to S "
                             "seconds (default %(default)s)")
    limits.add_argument("--allow-remote-shutdown", action="store_true",
                        help="honour a client's shutdown() request")
    secure = serve.add_argument_group("TLS (with an address written tls://host:port)")
    secure.add_argument("--tls-cert", metavar="PEM", help="server certificate (chain)")
    secure.add_argument("--tls-key", metavar="PEM", help="its private key")
    secure.add_argument("--tls-client-ca", metavar="PEM",
                        help="require client certificates signed by this CA")
    serve.set_defaults(func=cmd_serve)

    ping = sub.add_parser("ping", help="check that an endpoint is serving (exit 0) or not (1)")
    ping.add_argument("address")
    ping.add_argument("--timeout", type=float, default=5.0, help="seconds (default %(default)s)")
    ping.add_argument("--tls-ca", metavar="PEM",
                      help="CA to verify a tls:// endpoint with (default: system CAs)")
    ping.set_defaults(func=cmd_ping)

    demo = sub.add_parser("demo", help="start CartPole-v1 and CounterEnv endpoints locally "
                          "and drive both from one evaluator")
    demo.add_argument("--max-steps", type=int, default=64)
    demo.set_defaults(func=cmd_demo)
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rlmesh`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rlmesh: %(message)s"))
    log.addHandler(handler)  # rlmesh's own messages only, not every library's
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except (RLMeshError, ValueError, OSError, ImportError) as exc:
        if args.verbose:
            raise
        print(f"rlmesh: error: {exc}", file=sys.stderr)
        return 1
