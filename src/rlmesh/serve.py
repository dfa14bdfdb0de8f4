"""``python -m rlmesh.serve TARGET``: the lazy entrypoint of a container.

It serves an env factory, an env or a model, configured by environment variables.

See :mod:`rlmesh.cli.entrypoint` for the target forms and the variables, and
``docs/authoring.md``.
"""

from __future__ import annotations

from rlmesh.cli.entrypoint import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
