"""The ``rlmesh`` command.

``serve`` and ``ping`` live here; ``eval``, ``serve-model``, ``describe``, ``plot`` and
``bench`` in :mod:`rlmesh.cli.commands`, ``demo`` in :mod:`rlmesh.cli.demo`. ``-v`` and
``--log-level`` are accepted before or after the command.

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
from typing import Any

from rlmesh.cli.commands import add_commands, command
from rlmesh.cli.demo import cmd_demo
from rlmesh.cli.isolated import add_envs, add_isolation_options, serve_isolated
from rlmesh.cli.ray_commands import add_ray
from rlmesh.cli.ready import watch_parent, write_ready
from rlmesh.cli.targets import load_target, parse_kwargs, vectorized
from rlmesh.client.probe import probe
from rlmesh.errors import RLMeshError
from rlmesh.protocol import LIBRARY_VERSION
from rlmesh.server.compat import COMPAT_MODES
from rlmesh.server.options import ServeOptions
from rlmesh.server.server import EnvServer, stop_on_signals
from rlmesh.tls import client_context, server_context

__all__ = ["build_parser", "cmd_ping", "cmd_serve", "main"]

log = logging.getLogger("rlmesh")


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a target until interrupted (SIGINT or SIGTERM); with ``--with``, isolated."""
    if args.with_requirements or args.python:
        return serve_isolated(args, getattr(args, "argv", sys.argv[1:]))
    target = load_target(args.target, parse_kwargs(args.kwargs), imports=args.imports,
                         render_mode=args.render_mode,
                         max_episode_steps=args.max_episode_steps, compat=args.compat)
    if args.num_envs > 1:
        target = vectorized(target, args.num_envs)
    tls = None
    if args.tls_cert:
        tls = server_context(args.tls_cert, args.tls_key, client_ca=args.tls_client_ca)
    elif args.tls_key or args.tls_client_ca:
        raise ValueError("--tls-key and --tls-client-ca need --tls-cert")
    options = ServeOptions(
        max_sessions=args.max_sessions, idle_timeout=args.idle_timeout,
        step_deadline=args.step_deadline, restart_on_error=args.restart_on_error,
        drain_timeout=args.drain_timeout, allow_remote_shutdown=args.allow_remote_shutdown,
        remote_attributes=args.remote_attributes, resume_window=args.resume_window,
        max_message_bytes=args.max_message_bytes, max_header_bytes=args.max_header_bytes,
        max_handshake_bytes=args.max_handshake_bytes,
        handshake_timeout=args.handshake_timeout, max_pending=args.max_pending,
        max_pending_per_peer=args.max_pending_per_peer)
    server = EnvServer(target, args.address, workers=args.workers, options=options, tls=tls,
                       token=args.token)
    stop_on_signals()
    if args.parent_fd is not None:
        watch_parent(args.parent_fd, server.shutdown)
    if args.ready_file:
        write_ready(args.ready_file, server.address)
    if args.ready_fd is not None:
        with contextlib.suppress(OSError), os.fdopen(args.ready_fd, "w") as handle:
            handle.write(server.address + "\n")
    server.serve()
    return 0


def cmd_ping(args: argparse.Namespace) -> int:
    """Exit 0 if the endpoint answers a health probe, 1 otherwise."""
    start = time.perf_counter()
    tls = client_context(args.tls_ca) if args.tls_ca else None
    contract = probe(args.address, timeout=args.timeout, tls=tls, token=args.token,
                     wait=args.wait)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rlmesh`` command."""
    parser = argparse.ArgumentParser(
        prog="rlmesh", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve reinforcement-learning environments over the network and drive "
        "them.", epilog="examples:\n  rlmesh demo\n  rlmesh serve CartPole-v1 --address "
        "127.0.0.1:5555\n  rlmesh eval 127.0.0.1:5555 --episodes 20\n\n"
        "Run rlmesh COMMAND --help for a command's options.")
    parser.add_argument("--version", action="version", version=f"rlmesh {LIBRARY_VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log details and show tracebacks (also after the command)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="how much rlmesh logs to stderr (default info)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(sub)

    ping = command(sub, "ping", help="check that an endpoint is serving (exit 0) or not (1)",
                   description="Ask an endpoint what it serves, without opening a session;\n"
                   "exit 0 if it answers, 1 if not. --wait makes it a readiness check.",
                   examples=["rlmesh ping 127.0.0.1:5555",
                             "rlmesh serve CartPole-v1 & rlmesh ping 127.0.0.1:5555 --wait 30"],
                   func=cmd_ping)
    ping.add_argument("address", help="the endpoint (host:port, tls://..., unix://...)")
    ping.add_argument("--wait", type=float, metavar="SECONDS",
                      help="keep retrying a refused connection (a server still starting) for "
                           "up to SECONDS")
    ping.add_argument("--timeout", type=float, default=5.0, metavar="S",
                      help="seconds to wait for the answer (default %(default)s)")
    ping.add_argument("--token", help="the endpoint's token (default RLMESH_TOKEN); without "
                      "it a token endpoint only says that it needs one")
    ping.add_argument("--tls-ca", metavar="PEM",
                      help="CA to verify a tls:// endpoint with (default: system CAs)")

    demo = command(sub, "demo", help="start CartPole-v1 and CounterEnv endpoints locally "
                   "and drive both from one evaluator",
                   description="Start two local endpoints (CartPole-v1 and the custom\n"
                   "rlmesh.envs:CounterEnv) on free ports, play a random episode on each at\n"
                   "once, and stop them.", examples=["rlmesh demo"], func=cmd_demo)
    demo.add_argument("--max-steps", type=int, default=64, metavar="N",
                      help="stop an episode after N steps (default %(default)s)")
    add_commands(sub)
    add_envs(sub)
    add_ray(sub, command)
    return parser


def _add_serve(sub: Any) -> None:
    serve = command(
        sub, "serve", help="serve an env (one env per client session)",
        description="Serve an env until Ctrl+C or SIGTERM. An env id or a factory gives\n"
        "every client session its own env; a module attribute that is an env instance\n"
        "serves one session at a time.",
        examples=["rlmesh serve CartPole-v1 --address 127.0.0.1:5555",
                  "rlmesh serve ale_py:ALE/Pong-v5 --render-mode rgb_array",
                  "rlmesh serve ALE/Pong-v5 --import ale_py --max-episode-steps 1000",
                  "rlmesh serve my_envs:make_env --kwargs '{\"level\": 3}' --num-envs 4",
                  "rlmesh serve CartPole-v1 --compat gym   (the old gym package's env)",
                  "RLMESH_TOKEN=... rlmesh serve CartPole-v1 --address 0.0.0.0:5555",
                  "rlmesh serve my_envs:make_env --with 'numpy<2' --with my-sim==1.2"],
        func=cmd_serve)
    serve.add_argument("target", help="registered env id (CartPole-v1), module:ENV_ID "
                       "(ale_py:ALE/Pong-v5) or module:callable (the current directory is "
                       "importable)")
    serve.add_argument("--address", default="127.0.0.1:5555",
                       help="host:port, tcp://host:port or unix:///path (default %(default)s)")
    serve.add_argument("--kwargs", metavar="JSON",
                       help="JSON object of keyword arguments for the env")
    serve.add_argument("--import", dest="imports", action="append", default=[],
                       metavar="MODULE", help="import MODULE first, to register the env ids "
                       "it provides (repeatable; e.g. --import ale_py for ALE/Pong-v5)")
    serve.add_argument("--render-mode", metavar="MODE", help="render mode for the env "
                       "(rgb_array, ...): given to gymnasium.make or to the callable")
    serve.add_argument("--max-episode-steps", type=int, metavar="N",
                       help="truncate episodes after N steps (gymnasium.make's "
                       "max_episode_steps; a TimeLimit around a callable's env)")
    serve.add_argument("--compat", choices=COMPAT_MODES,
                       help="gym: TARGET is an env of the old gym package (0.21 to 0.26), made "
                       "with its gym.make and served as a Gymnasium env (docs/old-gym.md)")
    serve.add_argument("--token", help="require clients to know this token (default "
                       "RLMESH_TOKEN); a token on the command line is visible to other local "
                       "users, so prefer the variable")
    serve.add_argument("--ready-file", metavar="PATH",
                       help="write the resolved address here once listening")
    serve.add_argument("--ready-fd", type=int, metavar="N",
                       help="write the resolved address to file descriptor N, then close it")
    serve.add_argument("--parent-fd", type=int, help=argparse.SUPPRESS)  # sandboxes
    serve.add_argument("--num-envs", type=int, default=1, metavar="N",
                       help="serve a vector env of N copies (a SyncVectorEnv; default 1)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
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
    limits.add_argument("--resume-window", type=float, metavar="S",
                        help="keep a session whose connection broke for S seconds, for its "
                             "client to resume it (same env, no step lost or doubled)")
    limits.add_argument("--max-message-bytes", type=int,
                        default=ServeOptions.max_message_bytes, metavar="N",
                        help="refuse frames larger than N bytes from clients (default "
                             "%(default)s)")
    limits.add_argument("--max-header-bytes", type=int,
                        default=ServeOptions.max_header_bytes, metavar="N",
                        help="refuse frames whose header alone is larger than N bytes "
                             "(arrays travel outside it; default %(default)s)")
    limits.add_argument("--max-handshake-bytes", type=int,
                        default=ServeOptions.max_handshake_bytes, metavar="N",
                        help="refuse frames larger than N bytes before a client has "
                             "authenticated (default %(default)s)")
    limits.add_argument("--handshake-timeout", type=float,
                        default=ServeOptions.handshake_timeout, metavar="S",
                        help="close connections that have not authenticated within S seconds "
                             "(default %(default)s)")
    limits.add_argument("--max-pending", type=int, default=ServeOptions.max_pending,
                        metavar="N", help="at most N connections not yet authenticated; the "
                        "oldest is closed beyond that (default %(default)s)")
    limits.add_argument("--max-pending-per-peer", type=int,
                        default=ServeOptions.max_pending_per_peer, metavar="N",
                        help="the same, per peer address (default %(default)s)")
    limits.add_argument("--drain-timeout", type=float, default=ServeOptions.drain_timeout,
                        metavar="S",
                        help="on SIGTERM/SIGINT, let requests in flight finish for up to S "
                             "seconds (default %(default)s)")
    limits.add_argument("--allow-remote-shutdown", action="store_true",
                        help="honour a client's shutdown() request")
    limits.add_argument("--no-remote-attributes", dest="remote_attributes",
                        action="store_false",
                        help="refuse reads, writes and calls of the served env's public "
                        "attributes (env.unwrapped.x, get_attr, call; allowed by default)")
    add_isolation_options(serve)
    secure = serve.add_argument_group("TLS (with an address written tls://host:port)")
    secure.add_argument("--tls-cert", metavar="PEM", help="server certificate (chain)")
    secure.add_argument("--tls-key", metavar="PEM", help="its private key")
    secure.add_argument("--tls-client-ca", metavar="PEM",
                        help="require client certificates signed by this CA")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rlmesh`` command; returns the exit code.

    Errors are one line on stderr (``rlmesh: error: ...``) and exit 1; ``-v`` shows the
    traceback instead. A usage error exits 2, Ctrl+C 130.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what rlmesh serve --with runs again inside its environment
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rlmesh: %(message)s"))
    log.addHandler(handler)  # rlmesh's own messages only, not every library's
    level = args.log_level or ("debug" if args.verbose else "info")
    log.setLevel(getattr(logging, level.upper()))
    try:
        return _run(args)
    finally:  # main() called in-process (tests, embedding) leaves no handler behind
        log.removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    """The chosen command; errors as one line on stderr."""
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        known = isinstance(exc, (RLMeshError, ValueError, OSError, ImportError))
        what = str(exc) if known else f"{type(exc).__name__}: {exc}"
        hint = "" if known else " (rlmesh -v ... shows the traceback)"
        print(f"rlmesh: error: {what}{hint}", file=sys.stderr)
        return 1
