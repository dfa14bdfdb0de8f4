"""``python -m rlmesh``: the rlmesh command."""

from rlmesh.cli import main

raise SystemExit(main())
