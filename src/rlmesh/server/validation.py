"""Fast action membership checks, equivalent to ``space.contains`` for valid input.

The server checks every action before the env sees it. ``Discrete.contains`` and
``Box.contains`` are general and comparatively slow, so the common exact-type cases get a
short path here and everything else falls back to Gymnasium's own ``contains``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces as gs

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
    if type(space) is gs.Discrete:
        low = int(space.start)
        high = low + int(space.n)

        def discrete(value: Any) -> bool:
            if type(value) in _INT_SCALARS:
                return bool(low <= value < high)
            return fallback(value)

        return discrete
    if type(space) is gs.Box:
        shape, dtype, box_low, box_high = space.shape, space.dtype, space.low, space.high

        def box(value: Any) -> bool:
            if type(value) is np.ndarray and value.dtype == dtype and value.shape == shape:
                return bool((value >= box_low).all() and (value <= box_high).all())
            return fallback(value)

        return box
    if type(space) is gs.MultiDiscrete:
        md_shape, md_dtype = space.shape, space.dtype
        md_low = np.asarray(space.start)
        md_high = md_low + np.asarray(space.nvec)
        if md_low.size and (md_low == md_low.flat[0]).all() and (
                md_high == md_high.flat[0]).all():
            # Uniform bounds (the batched Discrete of a vector env): compare extremes only.
            lo, hi = int(md_low.flat[0]), int(md_high.flat[0])
            small = md_low.size <= 64

            def uniform(value: Any) -> bool:
                if type(value) is np.ndarray and value.shape == md_shape and (
                        value.dtype == md_dtype):
                    if small:
                        items = value.ravel().tolist()
                        return bool(lo <= min(items) and max(items) < hi)
                    return bool(lo <= value.min() and value.max() < hi)
                return fallback(value)

            return uniform

        def multi_discrete(value: Any) -> bool:
            if type(value) is np.ndarray and value.shape == md_shape and (
                    value.dtype == md_dtype):
                return bool((value >= md_low).all() and (value < md_high).all())
            return fallback(value)

        return multi_discrete
    return fallback
