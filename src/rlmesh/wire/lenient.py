"""Lenient encoding for ``info`` and ``metadata``: what cannot travel becomes its ``repr``."""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np
from gymnasium.spaces import GraphInstance

from rlmesh.errors import EncodeError, RLMeshWarning
from rlmesh.wire.codec import MAX_NDIM, dtype_meta

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


def sanitize(value: Any, _depth: int = 0) -> Any:
    """Make ``value`` encodable by replacing what cannot travel with its ``repr``.

    Used for ``info`` and ``metadata`` dicts, so that a step never fails because of them.

    Args:
        value: Any Python value.

    Returns:
        A value of the same structure that :class:`Encoder` accepts.
    """
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return value
    if _depth >= _MAX_SANITIZE_DEPTH:
        return _fallback(value)
    if isinstance(value, np.ndarray):
        if value.ndim > MAX_NDIM:
            return _fallback(value)
        if value.dtype.kind == "O":
            items = [sanitize(v, _depth + 1) for v in value.ravel().tolist()]
            clean = np.empty(len(items), dtype=object)
            clean[:] = items if items else []
            return clean.reshape(value.shape)
        try:
            dtype_meta(value.dtype)
        except EncodeError:
            return _fallback(value)
        return value
    if isinstance(value, np.generic):
        try:
            dtype_meta(value.dtype)
        except EncodeError:
            return _fallback(value)
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, dict):
        return {
            _sanitize_key(k): sanitize(v, _depth + 1) for k, v in value.items()
        }
    if isinstance(value, GraphInstance):
        return GraphInstance(*(sanitize(v, _depth + 1) for v in value))
    if isinstance(value, (list, tuple)):
        items = [sanitize(v, _depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return _fallback(value)


def _sanitize_key(key: Any) -> Any:
    if key is None or isinstance(key, (bool, int, float, str, bytes)):
        return key
    return _fallback(key)
