"""Fast action membership checks, equivalent to ``space.contains`` for valid input.

The server checks every action before the env sees it. ``Discrete.contains`` and
``Box.contains`` are general and comparatively slow, so the common exact-type cases get a
short path here and everything else falls back to Gymnasium's own ``contains``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
from gymnasium import spaces as gs

from rlmesh import spaces as rs

__all__ = ["Validator", "make_validator"]

Validator = Callable[[Any], bool]

_INT_SCALARS = (int, np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32,
                np.uint64)


def _safe(space: gs.Space[Any]) -> Validator:
    def check(value: Any) -> bool:
        try:
            return bool(space.contains(value))
        except Exception:
            return False

    return check


def make_validator(space: gs.Space[Any]) -> Validator:
    """Return a function telling whether a value is a member of ``space``.

    Args:
        space: The action space.

    Returns:
        A callable ``value -> bool`` that never raises.
    """
    fallback = _safe(space)
    fast = _FAST.get(type(space))  # exact types only: a subclass may redefine contains
    return fallback if fast is None else fast(space, fallback)


def _discrete(space: gs.Discrete, fallback: Validator) -> Validator:
    low = int(space.start)
    high = low + int(space.n)

    def discrete(value: Any) -> bool:
        if type(value) in _INT_SCALARS:
            return bool(low <= value < high)
        return fallback(value)

    return discrete


def _box(space: gs.Box, fallback: Validator) -> Validator:
    shape, dtype, box_low, box_high = space.shape, space.dtype, space.low, space.high

    def box(value: Any) -> bool:
        if type(value) is np.ndarray and value.dtype == dtype and value.shape == shape:
            return bool((value >= box_low).all() and (value <= box_high).all())
        return fallback(value)

    return box


def _multi_discrete(space: gs.MultiDiscrete, fallback: Validator) -> Validator:
    shape, dtype = space.shape, space.dtype
    low = np.asarray(space.start)
    high = low + np.asarray(space.nvec)
    if low.size and (low == low.flat[0]).all() and (high == high.flat[0]).all():
        return _uniform_multi_discrete(shape, dtype, int(low.flat[0]), int(high.flat[0]),
                                       low.size <= 64, fallback)

    def multi_discrete(value: Any) -> bool:
        if type(value) is np.ndarray and value.shape == shape and value.dtype == dtype:
            return bool((value >= low).all() and (value < high).all())
        return fallback(value)

    return multi_discrete


def _uniform_multi_discrete(shape: tuple[int, ...], dtype: Any, lo: int, hi: int, small: bool,
                            fallback: Validator) -> Validator:
    """Uniform bounds (the batched Discrete of a vector env): compare the extremes only."""
    flat = len(shape) == 1

    def uniform(value: Any) -> bool:
        if type(value) is np.ndarray and value.shape == shape \
                and (value.dtype is dtype or value.dtype == dtype):
            if small:  # (a list of Python ints: min and max without NumPy's call overhead)
                items: list[int] = value.tolist() if flat else value.ravel().tolist()
                return lo <= min(items) and max(items) < hi
            return bool(lo <= value.min() and value.max() < hi)
        return fallback(value)

    return uniform


_FAST: Final[dict[type[Any], Callable[[Any, Validator], Validator]]] = {
    gs.Discrete: _discrete, gs.Box: _box, gs.MultiDiscrete: _multi_discrete,
    rs.Discrete: _discrete, rs.Box: _box, rs.MultiDiscrete: _multi_discrete}
"""Space types with a short path, and how to build it (``rlmesh.spaces``' classes keep
Gymnasium's ``contains``, so they take the same paths)."""
