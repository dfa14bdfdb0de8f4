"""``rlmesh serve TARGET --with REQ [--python X.Y]`` and ``rlmesh envs``: isolated stacks.

With ``--with`` (or ``--python``) ``rlmesh serve`` becomes a supervisor: it builds or reuses
the cached uv environment holding exactly those requirements plus this rlmesh (see
:mod:`rlmesh.sandbox.uv`), runs the same ``rlmesh serve`` inside it with the remaining
options (address, ready file, token, limits, ``--compat``), forwards SIGTERM and SIGINT to
it, and exits with its status. The inner server stops if the supervisor dies, SIGKILL
included. ``rlmesh envs list`` and ``rlmesh envs prune`` manage the cache.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from rlmesh.cli.commands import command
from rlmesh.sandbox.cache import cache_root, entries, prune
from rlmesh.sandbox.uv import ensure_env, spawn_in_env

__all__ = ["add_envs", "add_isolation_options", "inner_argv", "serve_isolated"]

log = logging.getLogger("rlmesh")

_OWN = ("--with", "--python")


def add_isolation_options(serve: argparse.ArgumentParser) -> None:
    """Add ``--with`` and ``--python`` to ``rlmesh serve``."""
    group = serve.add_argument_group(
        "isolated dependencies (a cached uv environment; see docs/isolation.md)")
    group.add_argument("--with", dest="with_requirements", action="append", default=[],
                       metavar="REQ", help="serve from a uv environment holding REQ "
                       "(repeatable) and this rlmesh, built once and cached")
    group.add_argument("--python", metavar="X.Y",
                       help="that environment's Python (default: this one's version)")


def inner_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--with`` and ``--python`` (and their values)."""
    kept: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _OWN:
            skip = True
        elif not token.startswith(tuple(f"{flag}=" for flag in _OWN)):
            kept.append(token)
    return kept


def serve_isolated(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Build or reuse the environment and run ``rlmesh serve`` in it; its exit status."""
    if args.parent_fd is not None:
        raise ValueError("--with and --python cannot be nested inside a sandbox")
    started = time.perf_counter()
    env = ensure_env(args.with_requirements, python=args.python,
                     compat=getattr(args, "compat", None))
    log.info("isolated environment %s ready in %.2f s", env, time.perf_counter() - started)
    fds = [args.ready_fd] if args.ready_fd is not None else []
    process, liveness = spawn_in_env(env, inner_argv(argv), output=None, pass_fds=fds)

    def forward(signum: int, frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(liveness)
    return code if code >= 0 else 128 - code


def _cmd_envs(args: argparse.Namespace) -> int:
    if args.action not in ("list", "prune"):
        raise ValueError(f"rlmesh envs takes list or prune, not {args.action!r}")
    if args.action == "prune":
        removed = prune(args.older_than_days * 86400.0)
        freed = sum(entry.size_bytes for entry in removed)
        print(f"removed {len(removed)} environments ({freed / 1e6:.1f} MB)")
        return 0
    found = entries()
    if not found:
        print(f"no isolated environments in {cache_root() / 'envs'}")
    for entry in found:
        what = entry.description
        requirements = " ".join(what.get("requirements", [])) or "-"
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used))
        print(f"{entry.path.name}  python {what.get('python')}  {requirements}  "
              f"(compat {what.get('compat')}, {entry.size_bytes / 1e6:.0f} MB, used {used})")
    return 0


def add_envs(sub: Any) -> None:
    """Add ``rlmesh envs list|prune`` to the parser."""
    envs = command(sub, "envs", help="list or prune the cached isolated environments",
                   description="The uv environments of rlmesh serve --with and of uv\n"
                   "sandboxes, cached under $RLMESH_CACHE_DIR (default ~/.cache/rlmesh).",
                   examples=["rlmesh envs list", "rlmesh envs prune --older-than-days 30"],
                   func=_cmd_envs)
    envs.add_argument("action", nargs="?", default="list", metavar="list|prune",
                      help="list (the default): show each environment; prune: remove them")
    envs.add_argument("--older-than-days", type=float, default=0.0, metavar="D",
                      help="prune: only environments unused for D days (default: all)")


