"""``python -m rlmesh.worker_entry``: start a worker process (see :mod:`rlmesh.workers`)."""

import sys

from rlmesh.workers import worker_main

raise SystemExit(worker_main(sys.argv[1:]))
