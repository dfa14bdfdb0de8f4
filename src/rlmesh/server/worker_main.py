"""``python -m rlmesh.server.worker_main``: start a worker (see :mod:`rlmesh.server.workers`)."""

import sys

from rlmesh.server.workers import worker_main

raise SystemExit(worker_main(sys.argv[1:]))
