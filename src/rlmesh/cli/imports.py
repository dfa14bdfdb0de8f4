"""Importing what a command line names: ``module:attribute``, from the current directory too."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = ["cwd_importable", "import_attribute"]


def cwd_importable() -> None:
    """Put the current directory on ``sys.path``, as ``python -m`` does (command line only)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def import_attribute(spec: str, option: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted).

    The current directory is importable, as with ``python -m``.

    Raises:
        ValueError: If ``spec`` is malformed, the module does not import, or the attribute
            is missing (the module has been imported by then).
    """
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise ValueError(f"{option} {spec!r} is not of the form module:callable")
    cwd_importable()
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for {option} {spec!r}: {exc}"
                         ) from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
