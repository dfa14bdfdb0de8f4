"""Host code a spec may name: ``module:callable`` entrypoints, imported only when trusted.

A spec is data, and nothing in it runs unless the caller says so: an entrypoint string (a
:class:`~rlmesh.adapters.Custom` input's, or a :class:`~rlmesh.adapters.CustomEncoding` arm)
is imported only under ``resolve(..., trust_entrypoints=True)``. An in-process callable is
already the caller's own code and is used as is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from rlmesh.adapters.model_leaves import CustomEncoding
from rlmesh.adapters.rotations import convert
from rlmesh.errors import AdapterResolutionError

__all__ = ["check_inverse_pair", "load_callable"]


def load_callable(target: Any, *, trust: bool, where: str) -> Callable[..., Any]:
    """The callable ``target`` names (itself when it already is one).

    Args:
        target: A callable or a ``"module:callable"`` string.
        trust: Whether importing named code is allowed (``trust_entrypoints``).
        where: What names it, for messages.

    Raises:
        AdapterResolutionError: If importing is not trusted, or the import fails, or the
            attribute is not callable.
    """
    if callable(target):
        return target  # type: ignore[no-any-return]
    if not trust:
        raise AdapterResolutionError(
            f"{where}: the entrypoint {target!r} imports code; resolve with "
            "trust_entrypoints=True if you trust it")
    module_name, _, attr = str(target).partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AdapterResolutionError(f"{where}: cannot load entrypoint {target!r}: {exc}") from exc
    if not callable(value):
        raise AdapterResolutionError(f"{where}: entrypoint {target!r} is not callable")
    return value  # type: ignore[no-any-return]


def check_inverse_pair(encoding: CustomEncoding, from_base: Callable[..., Any],
                       to_base: Callable[..., Any], where: str) -> None:
    """Round-trip a probe rotation through both arms; they must undo each other.

    Raises:
        AdapterResolutionError: If ``to_base(from_base(x))`` is not ``x``.
    """
    probe = convert(np.array([0.3, -0.5, 0.8]), "axis_angle", encoding.base)
    try:
        back = np.asarray(to_base(from_base(probe.copy())), dtype=float).ravel()
    except Exception as exc:
        raise AdapterResolutionError(f"{where}: the CustomEncoding {encoding.name!r} failed "
                                     f"on a probe rotation: {exc}") from exc
    if back.shape != probe.shape or not np.allclose(back, probe, atol=1e-5):
        raise AdapterResolutionError(
            f"{where}: the CustomEncoding {encoding.name!r} arms are not inverses "
            "(to_base(from_base(x)) != x); pass check_inverse=False to skip this check")
