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

__all__ = ["Bounds", "Validator", "int_bounds", "make_validator"]

Validator = Callable[[Any], bool]
Bounds = tuple[int, int, tuple[int, ...], tuple[type, ...]]
"""``(low, high, shape, types)``: what a compiled server step checks an action against
itself (:class:`rlmesh.transport.extensions.ServesSteps`)."""

_INT64 = np.dtype(np.int64)

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


def int_bounds(space: gs.Space[Any]) -> Bounds | None:
    """The integer bounds that decide :func:`make_validator`'s check of ``space``, if any.

    A compiled server step judges an action within them by itself (the same answers as the
    validator, for the forms it reads), and asks the validator about anything else.

    Returns:
        For a ``Discrete`` space, ``(start, start + n, (), (numpy.int64,))``; for a
        ``MultiDiscrete`` space of ``int64`` whose items share their bounds, ``(low, high,
        shape, (numpy.ndarray,))``; else ``None``.
    """
    if type(space) in (gs.Discrete, rs.Discrete):
        low = int(space.start)  # type: ignore[attr-defined]
        bounds: Bounds = (low, low + int(space.n), (), (np.int64,))  # type: ignore[attr-defined]
    elif type(space) in (gs.MultiDiscrete, rs.MultiDiscrete) and space.dtype == _INT64:
        starts = np.asarray(space.start)  # type: ignore[attr-defined]
        ends = starts + np.asarray(space.nvec)  # type: ignore[attr-defined]
        if not starts.size or (starts != starts.flat[0]).any() or (ends != ends.flat[0]).any():
            return None
        bounds = (int(starts.flat[0]), int(ends.flat[0]), tuple(space.shape or ()), (np.ndarray,))
    else:
        return None
    return bounds if bounds[0] >= -2**63 and bounds[1] < 2**63 else None


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
