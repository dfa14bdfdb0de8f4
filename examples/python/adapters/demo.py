"""The whole example in one process: serve the env in the background, run the model, exit.

    uv run python examples/python/adapters/demo.py [EPISODES]
"""

from __future__ import annotations

import sys

from env import TAGS, TabletopEnv
from model import SPEC, predict
from run import report

import rlmesh
import rlmesh.adapters as adapt
from rlmesh.numpy import Model, RemoteEnv


def main() -> None:
    episodes = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    server = rlmesh.EnvServer(TabletopEnv, "127.0.0.1:0", tags=TAGS).start()
    try:
        print(f"serving the tabletop env on {server.address}")
        with RemoteEnv(server.address) as env:
            print("resolved adapter:")
            print(adapt.resolve_from_contract(env.env_contract, SPEC).explain())
            result = Model(predict, spec=SPEC).run(env, seeds=list(range(episodes)))
        report(result)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
