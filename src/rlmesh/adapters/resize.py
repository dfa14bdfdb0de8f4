"""Separable image resampling in NumPy: per-axis tap tables planned once, applied per frame.

A resize is two 1-D passes (width, then height). Each pass is planned at resolve time into an
:class:`AxisPlan`: for every output row (or column), the source indices it reads and their
weights. Applying it is then a handful of gathers and multiply-adds over whole arrays, with no
per-pixel Python. A pass that maps an integral box onto as many pixels is a plain slice.

The filters, by name (``Image.resample``):

* ``bilinear``: OpenCV's ``INTER_LINEAR`` (half-pixel centres, two taps, no antialiasing).
* ``nearest``: OpenCV's ``INTER_NEAREST`` (the source pixel at ``floor(i * scale)``).
* ``area``: OpenCV's ``INTER_AREA``: the exact box average when shrinking, its
  two-tap interpolation when enlarging.
* ``bilinear_aa``, ``bicubic_aa``, ``lanczos3_aa``: Pillow's ``BILINEAR``, ``BICUBIC``
  (a = -0.5) and ``LANCZOS`` (3 lobes), whose support widens with the shrink factor. On 8-bit
  frames the intermediate (after the width pass) is rounded to 8 bits, as Pillow does.

The source extent each pass reads is a box ``(start, stop)`` in pixel-edge coordinates, so a
fractional centre crop is sampled directly (Pillow's ``resize(box=...)``); taps past the image
edge are clamped to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ANTIALIASED", "AxisPlan", "apply_axis", "interleave", "plan_axis", "resize_hwc"]

Float = NDArray[np.float64]
Kernel = Callable[[Float], Float]

#: The Pillow-style filters (support widened by the shrink factor, 8-bit intermediate).
ANTIALIASED = frozenset({"bilinear_aa", "bicubic_aa", "lanczos3_aa"})


def _triangle(x: Float) -> Float:
    ax = np.abs(x)
    return np.where(ax < 1.0, 1.0 - ax, 0.0)


def _cubic(x: Float) -> Float:
    a, ax = -0.5, np.abs(x)
    near = ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0
    far = (((ax - 5.0) * ax + 8.0) * ax - 4.0) * a
    return np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))


def _lanczos3(x: Float) -> Float:
    return np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)


_KERNELS: dict[str, tuple[Kernel, float]] = {
    "bilinear_aa": (_triangle, 1.0), "bicubic_aa": (_cubic, 2.0), "lanczos3_aa": (_lanczos3, 3.0),
}


@dataclass(frozen=True)
class AxisPlan:
    """How one axis is resampled: a slice, or a tap table.

    Attributes:
        size_out: Output length along the axis.
        start: When not ``None``, the pass is the slice ``[start : start + size_out]``.
        index: ``(size_out, taps)`` source indices (every one inside the image).
        weight: ``(size_out, taps)`` weights; each row sums to 1.
    """

    size_out: int
    start: int | None
    index: NDArray[np.intp]
    weight: Float

    @cached_property
    def columns(self) -> tuple[NDArray[np.intp], ...]:
        """Each tap's source indices as one contiguous array (what ``np.take`` reads)."""
        return tuple(np.ascontiguousarray(self.index[:, k]) for k in range(self.index.shape[1]))

    @cached_property
    def convex(self) -> bool:
        """Whether every weight is non-negative (a result stays inside its inputs' range)."""
        return bool(np.all(self.weight >= 0.0))

    def weights(self, dtype: np.dtype[Any], ndim: int, axis: int) -> tuple[NDArray[Any], ...]:
        """Each tap's weights in ``dtype``, shaped to broadcast along ``axis`` of ``ndim``."""
        key = (np.dtype(dtype).str, ndim, axis)
        cache: dict[tuple[str, int, int], tuple[NDArray[Any], ...]] = self._weight_cache
        found = cache.get(key)
        if found is None:
            shape = [1] * ndim
            shape[axis] = self.size_out
            found = cache[key] = tuple(np.ascontiguousarray(self.weight[:, k], dtype=dtype)
                                       .reshape(shape) for k in range(self.weight.shape[1]))
        return found

    @cached_property
    def _weight_cache(self) -> dict[tuple[str, int, int], tuple[NDArray[Any], ...]]:
        return {}


def _taps_linear(pos: Float, size_in: int) -> tuple[NDArray[np.intp], Float]:
    """Two taps around fractional source positions (pixel-index coordinates)."""
    left = np.floor(pos)
    frac = pos - left
    index = left.astype(np.intp)[:, None] + np.arange(2)
    return np.clip(index, 0, size_in - 1), np.stack([1.0 - frac, frac], axis=1)


def _taps_box(lo: Float, scale: float, size_in: int) -> tuple[NDArray[np.intp], Float]:
    """Exact coverage of ``[lo, lo + scale)`` by each source pixel (area shrinking)."""
    count = math.ceil(scale) + 1
    first = np.floor(lo).astype(np.intp)
    index = first[:, None] + np.arange(count)
    left = np.maximum(index, lo[:, None])
    right = np.minimum(index + 1.0, (lo + scale)[:, None])
    weight = np.clip(right - left, 0.0, None) / scale
    return np.clip(index, 0, size_in - 1), weight


def _taps_kernel(centre: Float, scale: float, size_in: int,
                 name: str) -> tuple[NDArray[np.intp], Float]:
    """Pillow's tap rule: a kernel stretched by the shrink factor, cut at the image edge."""
    kernel, support = _KERNELS[name]
    widen = max(scale, 1.0)
    support *= widen
    first = np.maximum(np.trunc(centre - support + 0.5), 0).astype(np.intp)
    stop = np.minimum(np.trunc(centre + support + 0.5), size_in).astype(np.intp)
    count = int(np.max(stop - first)) if len(first) else 1
    index = first[:, None] + np.arange(max(count, 1))
    weight = kernel((index - centre[:, None] + 0.5) / widen)
    weight = np.where(index < stop[:, None], weight, 0.0)
    total = weight.sum(axis=1, keepdims=True)
    weight = weight / np.where(total == 0.0, 1.0, total)
    return np.clip(index, 0, size_in - 1), weight


def plan_axis(size_in: int, box: tuple[float, float], size_out: int,
              resample: str) -> AxisPlan:
    """Plan one axis: the source ``box`` (pixel edges) resampled onto ``size_out`` pixels.

    Args:
        size_in: Source length along the axis.
        box: ``(start, stop)`` of the extent read, ``0 <= start < stop <= size_in``.
        size_out: Output length.
        resample: A filter name (see the module docstring).

    Returns:
        The plan; a slice when the box is integral and as long as the output.
    """
    lo, hi = box
    if lo == int(lo) and hi - lo == size_out:
        empty = np.zeros((size_out, 0))
        return AxisPlan(size_out, int(lo), empty.astype(np.intp), empty)
    scale = (hi - lo) / size_out
    i = np.arange(size_out, dtype=np.float64)
    if resample == "nearest":
        index = np.minimum(np.floor(lo + i * scale), size_in - 1).astype(np.intp)[:, None]
        taps = (index, np.ones((size_out, 1)))
    elif resample == "bilinear":
        taps = _taps_linear(lo + (i + 0.5) * scale - 0.5, size_in)
    elif resample == "area" and scale >= 1.0:
        taps = _taps_box(lo + i * scale, scale, size_in)
    elif resample == "area":
        left = np.floor(i * scale)
        frac = (i + 1.0) - (left + 1.0) / scale
        frac = np.where(frac <= 0.0, 0.0, frac - np.floor(frac))
        taps = _taps_linear(lo + left + frac, size_in)
    else:
        taps = _taps_kernel(lo + (i + 0.5) * scale, scale, size_in, resample)
    keep = np.any(taps[1] != 0.0, axis=0)
    return AxisPlan(size_out, None, taps[0][:, keep], taps[1][:, keep])


def apply_axis(x: NDArray[Any], plan: AxisPlan, axis: int,
               work: Any = None) -> NDArray[Any]:
    """Resample one axis of a working array by its plan.

    Args:
        x: The array (float32 or float64; or an integer one when ``work`` is given).
        plan: The axis plan.
        axis: Which axis of ``x`` it applies to.
        work: The float dtype to compute in (default: ``x``'s own). An integer ``x`` is
            gathered as it is and converted by the weight product itself, which gives
            the same numbers as converting the whole array first.

    Returns:
        A new array of the ``work`` dtype (a view of ``x``, for a slice plan).
    """
    if plan.start is not None:
        where = [slice(None)] * x.ndim
        where[axis] = slice(plan.start, plan.start + plan.size_out)
        return x[tuple(where)]
    dtype = np.dtype(work if work is not None else x.dtype)
    weights = plan.weights(dtype, x.ndim, axis)
    acc: NDArray[Any] | None = None
    for index, weight in zip(plan.columns, weights, strict=True):
        term = np.take(x, index, axis=axis)
        if term.dtype == dtype:
            term *= weight
        else:
            term = np.multiply(term, weight, dtype=dtype)
        if acc is None:
            acc = term
        else:
            acc += term
    assert acc is not None
    return acc


def _to_integer(x: NDArray[np.floating], dtype: np.dtype[Any]) -> NDArray[Any]:
    info = np.iinfo(dtype)
    np.floor(x + 0.5, out=x)
    np.clip(x, info.min, info.max, out=x)
    return x.astype(dtype)


def _round_convex(x: NDArray[np.floating], dtype: np.dtype[Any]) -> NDArray[Any]:
    """:func:`_to_integer` for the result of non-negative weights on unsigned pixels.

    Such a result lies in ``[0, max * (1 + tiny)]``, so adding one half and truncating (what
    the cast does) is rounding half up, and nothing needs clipping.
    """
    x += 0.5
    return x.astype(dtype)


def interleave(plan: AxisPlan, channels: int) -> AxisPlan:
    """The width plan of an ``(H, W, C)`` frame seen as ``(H, W * C)``: one tap row per value.

    Planned once, it lets the width pass run over long contiguous rows instead of an
    innermost axis of a few channels.
    """
    if plan.start is not None:
        return AxisPlan(plan.size_out * channels, plan.start * channels, plan.index, plan.weight)
    lane = np.arange(channels)
    index = (plan.index[:, None, :] * channels + lane[None, :, None]).reshape(
        plan.size_out * channels, -1)
    weight = np.repeat(plan.weight, channels, axis=0)
    return AxisPlan(plan.size_out * channels, None, index, weight)


def resize_hwc(frame: NDArray[Any], rows: AxisPlan, cols: AxisPlan, resample: str,
               channels: int) -> NDArray[Any]:
    """Resize an ``(H, W, C)`` frame: the width pass, then the height pass.

    Integer frames are worked in float (float32 for 8-bit, float64 otherwise) and rounded
    half up and clipped back to their dtype; float frames are worked in float64 and cast back.

    Args:
        frame: The source frame.
        rows: The plan of axis 0.
        cols: The plan of axis 1, :func:`interleave`-d with ``channels``.
        resample: The filter name (an antialiased one rounds 8-bit intermediates).
        channels: ``C``.

    Returns:
        The resized frame, of the source dtype (a view when both plans are slices).
    """
    if rows.start is not None and cols.start is not None:
        width = cols.size_out // channels
        left = cols.start // channels
        return frame[rows.start:rows.start + rows.size_out, left:left + width]
    dtype = frame.dtype
    integer = dtype.kind in "ui"
    work = np.dtype(np.float32 if dtype.itemsize == 1 and integer else np.float64)
    x: NDArray[Any] = frame.reshape(frame.shape[0], -1)  # a copy only for a strided frame
    if not integer:
        x = x.astype(work, copy=False)
    x = apply_axis(x, cols, 1, work)
    if integer and resample in ANTIALIASED and cols.start is None and rows.start is None:
        x = _to_integer(x, dtype).astype(work)
    x = apply_axis(x, rows, 0, work)
    x = x.reshape(rows.size_out, cols.size_out // channels, channels)
    if not integer:
        return x.astype(dtype)
    # x is this call's own work array (or a view into it): rounding may happen in place.
    if dtype.kind == "u" and rows.convex and cols.convex:
        return _round_convex(x, dtype)
    return _to_integer(x, dtype)
