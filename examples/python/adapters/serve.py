"""Serve the tabletop env with its adapter tags published in its contract.

    uv run python examples/python/adapters/serve.py [ADDRESS]     # default 127.0.0.1:5555

Every session gets a fresh env (the class is the factory). Ctrl+C stops the server.
"""

from __future__ import annotations

import sys

from env import TAGS, TabletopEnv

import rlmesh


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:5555"
    server = rlmesh.EnvServer(TabletopEnv, address, tags=TAGS)
    server.serve()


if __name__ == "__main__":
    main()
