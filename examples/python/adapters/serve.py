"""Serve the tabletop env with its adapter tags published in its contract.

    uv run python examples/python/adapters/serve.py [ADDRESS] [--camera PIXELS]

``ADDRESS`` defaults to 127.0.0.1:5555; ``--camera`` sets both cameras' resolution (128 by
default; 96 matches the model's input size, so its adapter does no resize). Every session gets
a fresh env. Ctrl+C stops the server.
"""

from __future__ import annotations

import argparse
import functools

from env import SIZE, TAGS, TabletopEnv

import rlmesh


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the tabletop env with its tags.")
    parser.add_argument("address", nargs="?", default="127.0.0.1:5555")
    parser.add_argument("--camera", type=int, default=SIZE,
                        help=f"camera resolution in pixels (default {SIZE})")
    args = parser.parse_args(argv)
    factory = functools.partial(TabletopEnv, camera=args.camera)
    server = rlmesh.EnvServer(factory, args.address, tags=TAGS)
    server.serve()


if __name__ == "__main__":
    main()
