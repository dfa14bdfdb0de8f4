"""Importing Ray on first use, or the error that names the ``ray`` extra.

``import rlmesh`` never imports Ray: it weighs about 200 MB and a second to import. Every
function of :mod:`rlmesh.scaleout` that needs it calls :func:`load_ray`.
"""

from __future__ import annotations

import os
from types import ModuleType

from rlmesh.extras import missing_extra

__all__ = ["load_ray"]

UV_RUN_SWITCH = "RAY_ENABLE_UV_RUN_RUNTIME_ENV"
"""Ray's switch that makes workers of a ``uv run`` driver re-run ``uv run`` themselves."""


def load_ray() -> ModuleType:
    """Import and return the ``ray`` module.

    Ray's workers normally repeat a ``uv run`` driver's command line, which syncs the
    project's *default* dependency groups into the worker and may leave Ray itself out. A
    fleet's servers must run the driver's interpreter, so unless the variable is set
    already, ``RAY_ENABLE_UV_RUN_RUNTIME_ENV`` is set to ``0`` before Ray is imported.

    Raises:
        MissingExtraError: If Ray is not installed (the message says how to install this
            project with its ``ray`` extra).
    """
    os.environ.setdefault(UV_RUN_SWITCH, "0")
    try:
        import ray
    except ImportError as exc:
        raise missing_extra("rlmesh.ray", "Ray", "ray") from exc
    module: ModuleType = ray  # (typed when Ray is installed, Any when it is not)
    return module
