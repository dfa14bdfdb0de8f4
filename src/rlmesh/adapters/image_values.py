"""The value step of an image input: ``dtype`` and ``normalize``, planned once.

A source counts as 8-bit pixels when its dtype is ``uint8`` or its Box bounds are exactly
``(0, 255)`` (a float camera holding 8-bit values). ``normalize`` maps those pixels from
``[0, 255]`` into ``[0, 1]`` (``True``) or a ``(low, high)`` pair; a float source already bounded
to ``[0, 1]`` is mapped from there instead. Without ``normalize`` the values are only cast:
to a float dtype exactly, to an integer dtype rounded half up and clipped to its range (so a
float camera in ``[0, 255]`` passes into ``uint8`` unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlmesh.adapters.advisory import Advisory
from rlmesh.adapters.model_leaves import Image
from rlmesh.errors import AdapterResolutionError

__all__ = ["ValuePlan", "plan_values"]

Frame = NDArray[Any]


@dataclass(frozen=True)
class ValuePlan:
    """The planned value step.

    Attributes:
        op: The per-frame function, or ``None`` when the values pass as they are.
        step: Its ``explain()`` text (empty with no op).
        dtype: The dtype of the result.
        advisories: Notes about the mapping (a float ``[0, 1]`` camera cast to integers).
    """

    op: Callable[[Frame], Frame] | None
    step: str
    dtype: np.dtype[Any]
    advisories: tuple[Advisory, ...] = ()


def _cast(dtype: np.dtype[Any]) -> Callable[[Frame], Frame]:
    """A cast to ``dtype``; into integers it rounds half up and clips to the dtype's range."""
    if dtype.kind == "f" or dtype.kind == "b":
        return lambda x: x.astype(dtype, order="C")
    info = np.iinfo(dtype)

    def to_integer(x: Frame) -> Frame:
        if x.dtype.kind == "f":
            x = np.floor(x + 0.5)
        return np.clip(x, max(info.min, _lowest(x.dtype)), min(info.max, _highest(x.dtype))
                       ).astype(dtype, order="C")

    return to_integer


def _lowest(dtype: np.dtype[Any]) -> float:
    return float(np.iinfo(dtype).min) if dtype.kind in "ui" else -np.inf


def _highest(dtype: np.dtype[Any]) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else np.inf


def _affine(dtype: np.dtype[Any], source: tuple[float, float],
            target: tuple[float, float]) -> Callable[[Frame], Frame]:
    """Map ``source`` onto ``target`` in ``dtype`` arithmetic."""
    span = source[1] - source[0]
    scale = (target[1] - target[0]) / span
    offset = target[0] - source[0] * scale
    if source == (0.0, span) and target == (0.0, 1.0):
        def divide(x: Frame) -> Frame:
            y = x.astype(dtype, order="C")
            y /= dtype.type(span)
            return y
        return divide

    def scale_shift(x: Frame) -> Frame:
        y = x.astype(dtype, order="C")
        y *= dtype.type(scale)
        y += dtype.type(offset)
        return y

    return scale_shift


def _bounds_are(bounds: tuple[float | None, float | None], low: float, high: float) -> bool:
    return bounds[0] == low and bounds[1] == high


def plan_values(leaf: Image, dtype: np.dtype[Any], bounds: tuple[float | None, float | None],
                key: str, path: str) -> ValuePlan:
    """Plan the dtype and normalize step of one image input.

    Args:
        leaf: The model's image leaf (``dtype`` and ``normalize`` are read).
        dtype: The dtype of the frames reaching this step (the camera's).
        bounds: The camera's uniform ``(low, high)`` Box bounds, each ``None`` when unknown.
        key: The payload key, for messages.
        path: The camera's observation path, for messages.

    Returns:
        The plan.

    Raises:
        AdapterResolutionError: If ``normalize`` is set on a source that is neither 8-bit
            pixels nor a float in ``[0, 1]``. (``normalize`` with an integer ``dtype``, the
            default ``uint8`` included, gives float32 and an ``info`` advisory.)
    """
    target = np.dtype(leaf.dtype)
    notes: tuple[Advisory, ...] = ()
    if leaf.normalize is False:
        if target == dtype:
            return ValuePlan(None, "", target)
        if dtype.kind == "f" and target.kind in "ui" and _bounds_are(bounds, 0.0, 1.0):
            notes = (Advisory(
                f"image input {key!r}: camera {path} is {dtype.name} in [0, 1] and the model "
                f"wants {target.name} without normalize; values are cast, not scaled",
                level="caution", path=key),)
        return ValuePlan(_cast(target), f"{dtype.name}->{target.name}", target, notes)
    low, high = (0.0, 1.0) if leaf.normalize is True else leaf.normalize
    if target.kind != "f":
        notes = (Advisory(f"image input {key!r} sets normalize with dtype {target.name} (the "
                          f"default); the normalized frame is float32", level="info",
                          path=key),)
        target = np.dtype(np.float32)
    if dtype == np.uint8 or _bounds_are(bounds, 0.0, 255.0):
        source = (0.0, 255.0)
    elif dtype.kind == "f" and _bounds_are(bounds, 0.0, 1.0):
        source = (0.0, 1.0)
    else:
        raise AdapterResolutionError(
            f"image input {key!r} sets normalize, which maps 8-bit pixels, but camera {path} "
            f"is {dtype.name} with bounds {bounds}; it needs uint8, bounds (0, 255), or a "
            f"float already in (0, 1)")
    if source == (low, high):
        if target == dtype:
            return ValuePlan(None, "", target, notes)
        return ValuePlan(_cast(target), f"{dtype.name}->{target.name}", target, notes)
    where = "/255" if (source, (low, high)) == ((0.0, 255.0), (0.0, 1.0)) else (
        f"[{source[0]:g},{source[1]:g}]->[{low:g},{high:g}]")
    return ValuePlan(_affine(target, source, (low, high)),
                     f"{dtype.name}->{target.name} {where}", target, notes)
