"""The pixel pipeline of one image input: planned at resolve time, run on every frame.

:func:`plan_image` checks one :class:`~rlmesh.adapters.model_leaves.Image` leaf against the
:class:`Camera` an env offers (or against none, for an ``optional`` input) and returns an
:class:`ImagePipe`. Every decision (the crop box, the fit, the filter's tap tables, the value
map) is made there, so a frame only runs a short list of whole-array operations, in the fixed
order: upright, crop and resize (with ``fit``), channel swap, dtype and ``normalize``, layout,
lead axes. A pipe with nothing to do hands the frame back as it came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlmesh.adapters.advisory import Advisory
from rlmesh.adapters.image_fit import Geometry, plan_geometry
from rlmesh.adapters.image_values import plan_values
from rlmesh.adapters.model_leaves import Image
from rlmesh.adapters.resize import interleave, resize_hwc
from rlmesh.errors import AdapterResolutionError, TensorError

__all__ = ["Camera", "ImagePipe", "plan_image"]

Frame = NDArray[Any]
Op = Callable[[Frame], Frame]


@dataclass(frozen=True)
class Camera:
    """One image the env offers, as the resolver reads it off its tag and its Box space.

    Attributes:
        path: Where it sits in the observation (for messages), e.g. ``"agentview_image"``.
        role: Its image role.
        shape: The stored shape, in ``layout`` order.
        layout: ``"hwc"`` or ``"chw"``.
        dtype: The stored dtype.
        low: The Box's lower bound when it is one finite number, else ``None``.
        high: The Box's upper bound when it is one finite number, else ``None``.
        upside_down: The camera renders rotated 180 degrees.
    """

    path: str
    role: str
    shape: tuple[int, int, int]
    layout: str
    dtype: np.dtype[Any]
    low: float | None = None
    high: float | None = None
    upside_down: bool = False

    @property
    def hwc(self) -> tuple[int, int, int]:
        """The shape as ``(height, width, channels)``."""
        if self.layout == "chw":
            return self.shape[1], self.shape[2], self.shape[0]
        return self.shape


class ImagePipe:
    """One image input's planned pipeline: call it on a raw env frame to get the model's.

    Attributes:
        out_shape: Shape of one output frame (lead axes included, frame stack not).
        out_dtype: Its dtype.
        steps: ``explain()`` text of every step, in order (empty: the frame passes as is).
        advisories: Notes about what the plan discards or makes up.
        blank: The camera is absent and every frame is the synthesized blank one.
    """

    def __init__(self, *, in_shape: tuple[int, ...], in_dtype: np.dtype[Any], ops: list[Op],
                 out_shape: tuple[int, ...], out_dtype: np.dtype[Any], steps: tuple[str, ...],
                 advisories: tuple[Advisory, ...], blank: Frame | None = None,
                 blank_pad: Frame | None = None) -> None:
        self._in_shape, self._in_dtype, self._ops = in_shape, in_dtype, tuple(ops)
        self._blank, self._blank_pad = blank, blank_pad
        self.out_shape, self.out_dtype = out_shape, out_dtype
        self.steps, self.advisories = steps, advisories
        self.blank = blank is not None

    def __call__(self, frame: Any) -> Frame:
        """Run one raw env frame through the pipe.

        Args:
            frame: The camera's frame (array-like, the camera's shape); ignored by a blank pipe.

        Returns:
            The model's frame (the input itself when there is nothing to do).

        Raises:
            TensorError: If the frame does not have the camera's shape.
        """
        if self._blank is not None:
            return self._blank
        x = np.asarray(frame)
        if x.shape != self._in_shape:
            raise TensorError(f"an image frame of shape {x.shape} reached a pipe planned for "
                              f"{self._in_shape}")
        if x.dtype != self._in_dtype:
            x = x.astype(self._in_dtype)
        for op in self._ops:
            x = op(x)
        return x

    def pad_frame(self) -> Frame:
        """The ``stack_pad="black"`` frame: a raw all-zero frame through this pipe."""
        if self._blank_pad is not None:
            return self._blank_pad
        return self(np.zeros(self._in_shape, self._in_dtype))

    def __repr__(self) -> str:
        return f"ImagePipe({' | '.join(self.steps) or 'as is'} -> {self.out_shape} " \
               f"{self.out_dtype})"


def _check_channels(leaf: Image, channels: int, key: str, where: str) -> None:
    if leaf.channels is not None and leaf.channels != channels:
        raise AdapterResolutionError(
            f"image input {key!r} wants {leaf.channels} channels but {where} has {channels}; "
            f"the channel count must match")
    if leaf.channel_order == "bgr" and channels != 3:
        raise AdapterResolutionError(
            f"image input {key!r} asks channel_order='bgr', which needs 3 channels, but "
            f"{where} has {channels}")


def _check_camera(camera: Camera, key: str) -> None:
    if camera.layout not in ("hwc", "chw") or len(camera.shape) != 3 or min(camera.shape) < 1:
        raise AdapterResolutionError(
            f"image input {key!r}: camera {camera.path} must be a 3-D hwc or chw image, not "
            f"shape {camera.shape} layout {camera.layout!r}")


def _resize_op(geometry: Geometry, resample: str, channels: int) -> Op:
    rows, cols = geometry.rows, interleave(geometry.cols, channels)
    if not geometry.padded:
        return lambda x: resize_hwc(x, rows, cols, resample, channels)
    (top, left), (height, width) = geometry.offset, geometry.size
    canvas = (*geometry.canvas, channels)

    def resize_and_pad(x: Frame) -> Frame:
        out = np.zeros(canvas, x.dtype)
        out[top:top + height, left:left + width] = resize_hwc(x, rows, cols, resample, channels)
        return out

    return resize_and_pad


def _spatial_ops(leaf: Image, camera: Camera, key: str) -> tuple[list[Op], list[str],
                                                                  tuple[int, int], Geometry | None]:
    """The ops that need the frame as hwc: upright, crop/fit/resize, channel swap."""
    height, width, channels = camera.hwc
    ops: list[Op] = []
    steps: list[str] = []
    if leaf.upside_down != camera.upside_down:
        ops.append(lambda x: x[::-1, ::-1])
        steps.append("upright (rot180)")
    geometry = plan_geometry(leaf, (height, width), key, camera.path)
    if geometry is not None:
        ops.append(_resize_op(geometry, leaf.resample, channels))
        steps.extend(geometry.steps)
    if leaf.channel_order == "bgr":
        ops.append(lambda x: x[..., ::-1])
        steps.append("rgb->bgr")
    size = geometry.canvas if geometry is not None else (height, width)
    return ops, steps, size, geometry


def _finish(x: Frame) -> Frame:
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


_TRANSPOSE = {("chw", "hwc"): (1, 2, 0), ("hwc", "chw"): (2, 0, 1)}


def _layout_ops(spatial: list[Op], src: str, dst: str) -> list[Op]:
    """The spatial ops wrapped in the transposes they need (hwc inside), or the one swap."""
    if not spatial:
        if src == dst:
            return []
        axes = _TRANSPOSE[src, dst]
        return [lambda x: x.transpose(axes)]
    before: list[Op] = [lambda x: x.transpose(1, 2, 0)] if src == "chw" else []
    after: list[Op] = [lambda x: x.transpose(2, 0, 1)] if dst == "chw" else []
    return [*before, *spatial, *after]


def plan_image(leaf: Image, camera: Camera | None, key: str) -> ImagePipe:
    """Plan the pipeline of one image input against one env camera.

    Args:
        leaf: The model's image leaf.
        camera: The camera the env offers for it, or ``None`` when it has none.
        key: The payload key of the input (named in errors and advisories).

    Returns:
        The pipe: call it on each raw frame.

    Raises:
        AdapterResolutionError: If the camera cannot give what the leaf asks (absent and not
            optional, a channel mismatch, an aspect mismatch without ``fit``, an upscale
            without ``allow_upscale``, ``normalize`` on a source that is not 8-bit pixels).
    """
    if camera is None:
        return _plan_blank(leaf, key)
    _check_camera(camera, key)
    channels = camera.hwc[2]
    _check_channels(leaf, channels, key, f"camera {camera.path}")
    spatial, steps, size, geometry = _spatial_ops(leaf, camera, key)
    values = plan_values(leaf, camera.dtype, (camera.low, camera.high), key, camera.path)
    ops = _layout_ops(spatial, camera.layout, leaf.layout)
    if values.op is not None:
        ops.append(values.op)
        steps.append(values.step)
    if camera.layout != leaf.layout:
        steps.append(f"{camera.layout}->{leaf.layout}")
    if ops:
        ops.append(_finish)
    out: tuple[int, ...] = (channels, *size) if leaf.layout == "chw" else (*size, channels)
    if leaf.lead_dims:
        lead = (1,) * leaf.lead_dims
        ops.append(lambda x: x.reshape(lead + x.shape))
        out = lead + out
        steps.append(f"lead_dims {leaf.lead_dims}")
    notes = (*(geometry.advisories if geometry is not None else ()), *values.advisories)
    return ImagePipe(in_shape=camera.shape, in_dtype=camera.dtype, ops=ops, out_shape=out,
                     out_dtype=values.dtype, steps=tuple(steps), advisories=notes)


def _plan_blank(leaf: Image, key: str) -> ImagePipe:
    """The pipe of an optional input whose camera the env lacks: one constant frame."""
    if not leaf.optional:
        raise AdapterResolutionError(
            f"image input {key!r} ({leaf.role}) has no camera in this env; mark it "
            f"optional=True (with height, width and channels) to feed a blank frame")
    if leaf.height is None or leaf.width is None or leaf.channels is None:
        raise AdapterResolutionError(
            f"image input {key!r} is optional and its camera is absent; a blank frame needs "
            f"height, width and channels declared")
    _check_channels(leaf, leaf.channels, key, "its blank frame")
    fill = 0.0 if leaf.fill is None else float(leaf.fill)
    shape = (leaf.height, leaf.width, leaf.channels)
    source = np.dtype(np.uint8) if fill == int(fill) and 0 <= fill <= 255 else np.dtype(
        np.float64)
    values = plan_values(leaf, source, (0.0, 255.0), key, "(blank)")

    def through(pixel: float) -> Frame:
        x: Frame = np.full(shape, pixel, dtype=source)
        if values.op is not None:
            x = values.op(x)
        if leaf.layout == "chw":
            x = np.ascontiguousarray(x.transpose(2, 0, 1))
        x = x.reshape((1,) * leaf.lead_dims + x.shape)
        x.flags.writeable = False
        return x

    frame = through(fill)
    note = Advisory(f"image input {key!r}: the env has no {leaf.role} camera; a blank "
                    f"{leaf.height}x{leaf.width}x{leaf.channels} frame (pixel value {fill:g}) is "
                    f"fed instead", level="warn", path=key)
    steps = (f"blank {leaf.height}x{leaf.width}x{leaf.channels} fill {fill:g}",
             *((values.step,) if values.op is not None else ()))
    return ImagePipe(in_shape=shape, in_dtype=source, ops=[], out_shape=frame.shape,
                     out_dtype=frame.dtype, steps=steps, advisories=(note,),
                     blank=frame, blank_pad=through(0.0))
