"""The transport's optional C extensions: loaded where they are built, or why they are not.

A source install with a C compiler builds ``rlmesh.transport._fastslots`` and
``rlmesh.transport._fastframes`` (``setup.py``); their Python faces,
:mod:`rlmesh.transport.fastslots` and :mod:`rlmesh.transport.fastframes`, load them here.
``RLMESH_PURE_PYTHON=1`` (set when rlmesh is imported) leaves both unused.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["load"]


def load(name: str) -> tuple[Any, str | None]:
    """The extension ``rlmesh.transport.<name>``, or ``None`` and why it is not used.

    Args:
        name: The extension module's name (``"_fastslots"``, ``"_fastframes"``).
    """
    if os.environ.get("RLMESH_PURE_PYTHON", "") not in ("", "0"):
        return None, "RLMESH_PURE_PYTHON is set"
    try:
        module = importlib.import_module(f"rlmesh.transport.{name}")
    except ImportError as exc:
        return None, f"the C extension is not built ({exc})"
    return module, None
