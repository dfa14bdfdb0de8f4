"""``sanitize_metadata``: a mapping reduced to built-in values, ready for any wire or JSON.

rlmesh already sends an ``info`` it cannot encode as its ``repr`` (:mod:`rlmesh.wire.lenient`);
this is the explicit, deterministic version an env can apply itself::

    return obs, rlmesh.sanitize_metadata({"pose": pose, "step": np.int64(3)})
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["sanitize_metadata"]

_LEAVES = (type(None), bool, int, float, str, bytes)


def sanitize_metadata(info: Mapping[Any, Any]) -> dict[str, Any]:
    """Reduce a mapping to built-in values, recursively.

    ``None``, ``bool``, ``int``, ``float``, ``str`` and ``bytes`` stay as they are; numpy
    scalars and arrays become Python numbers and (nested) lists; named tuples become dicts,
    other tuples lists; an enum member becomes its value if that is a plain value, else its
    name; keys become strings; anything else becomes ``str(value)``.

    Args:
        info: The mapping (an ``info`` dict, an env's ``metadata``).

    Returns:
        A new dict of built-in values.

    Raises:
        TypeError: If ``info`` is not a mapping.
        ValueError: If it contains itself (the message names the path to the cycle).
    """
    if not isinstance(info, Mapping):
        raise TypeError(f"sanitize_metadata takes a mapping, not a {type(info).__qualname__}")
    result: dict[str, Any] = _walk(info, (), set())
    return result


def _walk(value: Any, path: tuple[str, ...], active: set[int]) -> Any:
    if isinstance(value, _LEAVES) and not isinstance(value, Enum):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in active:
            raise ValueError(f"metadata contains itself at {'.'.join(path) or '<root>'}")
        active.add(id(value))
        try:
            return _container(value, path, active)
        finally:
            active.discard(id(value))
    return _leaf(value)


def _container(value: Any, path: tuple[str, ...], active: set[int]) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _walk(sub, (*path, str(key)), active) for key, sub in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _walk(value._asdict(), path, active)
    return [_walk(sub, (*path, str(i)), active) for i, sub in enumerate(value)]


def _leaf(value: Any) -> Any:
    if isinstance(value, Enum):
        for plain in (int, float, str, bytes):  # a mixin enum (IntEnum, StrEnum): its scalar
            if isinstance(value, plain):
                return plain(value)
        inner = value.value
        return inner if isinstance(inner, _LEAVES) else value.name
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
