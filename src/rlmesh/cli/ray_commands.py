"""``rlmesh ray serve|status|stop`` and ``rlmesh eval --fleet``: fleets on a Ray cluster.

``rlmesh ray serve ENV --servers N`` starts a fleet (:func:`rlmesh.ray.serve`) and prints
its addresses and the token clients need; it keeps the fleet until Ctrl+C, or leaves it
running with ``--detached`` (on a cluster started beforehand with ``ray start --head``).
``status`` and ``stop`` find a named fleet; ``eval --fleet NAME`` evaluates on one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rlmesh.cli.targets import load_target
from rlmesh.scaleout.rayload import load_ray
from rlmesh.scaleout.records import NAMESPACE
from rlmesh.server.server import stop_on_signals

__all__ = ["add_ray", "eval_on_fleet"]


def _connect(address: str | None, *, start: bool) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the running one; none: start one)."""
    ray = load_ray()
    address = address or os.environ.get("RAY_ADDRESS") or (None if start else "auto")
    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)


def cmd_ray_serve(args: argparse.Namespace) -> int:
    """Start a fleet; print its addresses and token; keep it until interrupted."""
    from rlmesh.scaleout.launch import serve  # (the client side: on use)

    if args.detached and not args.name:
        print("rlmesh: --detached needs --name (to find and stop the fleet later)",
              file=sys.stderr)
        return 2
    _connect(args.ray_address or ("auto" if args.detached else None), start=True)
    fleet = serve(load_target(args.env), args.servers, num_envs_per_server=args.envs_per_server,
                  resources={"CPU": args.cpus_per_server}, strategy=args.strategy,
                  token=None if args.no_token else "auto", name=args.name,
                  detached=args.detached, start_timeout=args.start_timeout)
    for address in fleet.wait_ready(args.start_timeout):
        print(address, flush=True)
    if fleet.token:
        print(f"RLMESH_TOKEN={fleet.token}", flush=True)
    print(f"rlmesh: fleet {fleet.name!r}: {fleet.num_servers} servers of {args.env}; clients "
          "need the token above in RLMESH_TOKEN (or --token)", file=sys.stderr, flush=True)
    if args.detached:
        fleet.disconnect()
        print(f"rlmesh: detached; `rlmesh ray stop {fleet.name}` stops it", file=sys.stderr)
        return 0
    stop_on_signals()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fleet.close()
    return 0


def cmd_ray_status(args: argparse.Namespace) -> int:
    """Print each server of a named fleet: index, state, address, restarts, pid, node."""
    from rlmesh.scaleout.launch import get_fleet  # (the client side: on use)

    _connect(args.ray_address or "auto", start=False)
    fleet = get_fleet(args.name)
    try:
        rows = fleet.status(stats=True)
    finally:
        fleet.disconnect()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['index']:>4}  {row['state']:<12} {row['address'] or '-':<22} "
              f"restarts={row['restarts']} pid={row['pid']} node={str(row['node'])[:12]}")
    return 0 if all(row["alive"] for row in rows) else 1


def cmd_ray_stop(args: argparse.Namespace) -> int:
    """Stop a named fleet: servers killed, placement group removed."""
    from rlmesh.scaleout.launch import get_fleet  # (the client side: on use)

    _connect(args.ray_address or "auto", start=False)
    get_fleet(args.name).close()
    print(f"rlmesh: fleet {args.name!r} stopped", file=sys.stderr)
    return 0


def eval_on_fleet(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """``rlmesh eval --fleet NAME``: ``run`` (the eval command) on the named fleet's servers.

    The fleet's token is used unless ``--token`` gives one; the fleet keeps running.
    """
    from rlmesh.scaleout.launch import get_fleet  # (the client side: on use)

    if args.addresses:
        print("rlmesh: give endpoints or --fleet, not both", file=sys.stderr)
        return 2
    _connect(None, start=False)
    fleet = get_fleet(args.fleet)
    try:
        args.addresses = fleet.wait_ready(args.connect_timeout)
        args.token = args.token or fleet.token
        args.fleet = None
        return run(args)
    finally:
        fleet.disconnect()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_ray(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``ray serve``, ``ray status`` and ``ray stop`` (``command`` makes a subcommand)."""
    ray = sub.add_parser("ray", help="fleets of env servers on a Ray cluster (the 'ray' extra)",
                         description="Start, inspect and stop fleets of env servers that Ray "
                         "places and restarts.")
    verbs = ray.add_subparsers(dest="ray_command", metavar="{serve,status,stop}",
                               required=True)
    start = command(verbs, "serve", help="start a fleet and print its addresses",
                    description="Start --servers env servers in Ray actors, print their\n"
                    "addresses and token, and keep them until Ctrl+C (or leave them with\n"
                    "--detached).",
                    examples=["rlmesh ray serve CartPole-v1 --servers 4",
                              "rlmesh ray serve CartPole-v1 --servers 8 --envs-per-server 16 "
                              "--name pole --detached"], func=cmd_ray_serve)
    start.add_argument("env", help="an env id or module:callable, as for rlmesh serve")
    start.add_argument("--servers", type=_positive, default=1, metavar="N",
                       help="how many servers (Ray actors) to start (default %(default)s)")
    start.add_argument("--envs-per-server", type=_positive, default=1, metavar="M",
                       help="envs per server: more than one serves a vector env")
    start.add_argument("--cpus-per-server", type=float, default=1.0, metavar="C",
                       help="CPUs Ray reserves per server (default %(default)s)")
    start.add_argument("--strategy", default="SPREAD",
                       choices=["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"],
                       help="how Ray places the servers on nodes (default %(default)s)")
    start.add_argument("--name", help="name the fleet (for status, stop and eval --fleet)")
    start.add_argument("--detached", action="store_true",
                       help="leave the fleet running and exit (needs --name and a running "
                            "cluster: ray start --head)")
    start.add_argument("--no-token", action="store_true",
                       help="serve without a token (anyone reaching the servers drives them)")
    start.add_argument("--start-timeout", type=float, default=300.0, metavar="S",
                       help="seconds to wait for resources and servers (default %(default)s)")
    for verb, func, what in (("status", cmd_ray_status, "print a named fleet's servers"),
                             ("stop", cmd_ray_stop, "stop a named fleet")):
        parser = command(verbs, verb, help=what, description=what[0].upper() + what[1:] + ".",
                         examples=[f"rlmesh ray {verb} pole"], func=func)
        parser.add_argument("name", help="the fleet's name")
        if verb == "status":
            parser.add_argument("--json", action="store_true", help="print JSON")
    for parser in [start, *verbs.choices.values()]:
        if not any(a.dest == "ray_address" for a in parser._actions):
            parser.add_argument("--ray-address", metavar="ADDRESS",
                                help="the Ray cluster (default: RAY_ADDRESS, or the running "
                                     "one)")
