"""Lenient encoding for ``info`` and ``metadata``: what cannot travel becomes its ``repr``."""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np

from rlmesh.errors import EncodeError, RLMeshWarning
from rlmesh.values import map_leaves
from rlmesh.wire.format import MAX_NDIM, dtype_meta

__all__ = ["sanitize"]

_MAX_SANITIZE_DEPTH: Final = 64

_warned_types: set[str] = set()


def _fallback(value: Any) -> str:
    name = type(value).__qualname__
    if name not in _warned_types:
        _warned_types.add(name)
        warnings.warn(
            f"rlmesh: values of type {name} in info/metadata have no wire encoding; "
            "sending their repr() instead (warned once per type)",
            RLMeshWarning,
            stacklevel=2,
        )
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {name}>"


def sanitize(value: Any) -> Any:
    """Make ``value`` encodable by replacing what cannot travel with its ``repr``.

    Used for ``info`` and ``metadata`` dicts, so that a step never fails because of them.
    Containers (dicts, lists, tuples, graph instances, object arrays) are rebuilt around
    their cleaned items; containers nested deeper than 64 levels, dict keys msgpack cannot
    carry and leaves without a wire encoding become their ``repr``.

    Args:
        value: Any Python value.

    Returns:
        A value of the same structure that the encoder accepts.
    """
    return map_leaves(value, _leaf, into_object_arrays=True, key=_key,
                      max_depth=_MAX_SANITIZE_DEPTH, too_deep=_fallback)


def _leaf(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, np.ndarray) and value.ndim > MAX_NDIM:
        return _fallback(value)
    if isinstance(value, (np.ndarray, np.generic)):
        try:
            dtype_meta(value.dtype)
        except EncodeError:
            return _fallback(value)
        return value
    return _fallback(value)


def _key(key: Any) -> Any:
    if key is None or isinstance(key, (bool, int, float, str, bytes)):
        return key
    return _fallback(key)
