""":class:`Image`, the camera input of a model spec (see :mod:`.model_leaves` for the others)."""

from __future__ import annotations

import itertools
from dataclasses import InitVar, dataclass, field
from typing import Literal

from rlmesh.adapters.env_tags import _check_dim
from rlmesh.adapters.leaf_checks import (
    check_choice,
    check_fit,
    check_normalize,
    check_number,
    dtype_name,
    optional_dim,
)
from rlmesh.adapters.roles import IMAGE_PRIMARY, check_role
from rlmesh.errors import AdapterSpecError

__all__ = ["RESAMPLES", "Image", "Resample"]

Resample = Literal["bilinear", "bilinear_aa", "bicubic_aa", "lanczos3_aa", "area", "nearest"]
"""A resize filter: un-suffixed names follow OpenCV/torch, ``_aa`` ones Pillow's
antialiased filters (see ``docs/adapters.md``)."""
RESAMPLES = ("bilinear", "bilinear_aa", "bicubic_aa", "lanczos3_aa", "area", "nearest")


@dataclass(frozen=True)
class Image:
    """A camera input: the env image with this role, made into what the model was trained on.

    The pixel steps run in a fixed order whatever order the fields are written in: upright,
    crop, resize (``fit``, ``resample``), channel order, dtype and ``normalize``, then the
    layout transpose, the lead axes and the frame stack.

    Attributes:
        role: The image role to match (default ``image/primary``).
        height: Target height (``None``: the env's).
        width: Target width (``None``: the env's).
        layout: Axis order the model wants, ``"hwc"`` or ``"chw"``.
        channels: Channel count the model wants; declaring it makes a mismatch an error.
        dtype: NumPy dtype of the result.
        normalize: ``True`` maps 8-bit pixels into ``[0, 1]``; a ``(low, high)`` pair maps
            them into that range; ``False`` leaves them.
        lead_dims: Leading singleton axes to add (a batch or time axis).
        upside_down: The model was trained on frames rotated 180 degrees.
        resample: The resize filter.
        allow_upscale: Permit a target larger than the env's image.
        fit: How an aspect mismatch is reconciled (``stretch``, ``crop``, ``pad``, or a
            preference sequence); ``None`` makes a mismatch an error.
        optional: Give a blank frame when the env has no such camera (needs ``height``,
            ``width`` and ``channels`` then).
        fill: Pixel value of that blank frame (needs ``optional``).
        stack: Frames of history, on a new leading axis (1: none).
        size: Sets ``height`` and ``width`` to one value (not with them).
        offsets: Which frames the stack gathers, as non-positive deltas ending at 0.
        stack_pad: What fills the window at an episode's start: ``"first"`` or ``"black"``.
        crop: Side fraction of a centre crop taken before the resize, in ``(0, 1]``.
        crop_area: The same crop as an area fraction (not with ``crop``).
        channel_order: ``"rgb"`` or ``"bgr"`` (swap red and blue).
    """

    role: str = IMAGE_PRIMARY
    height: int | None = None
    width: int | None = None
    layout: str = "hwc"
    channels: int | None = None
    dtype: str = "uint8"
    normalize: bool | tuple[float, float] = False
    lead_dims: int = 0
    upside_down: bool = False
    resample: str = "bilinear"
    allow_upscale: bool = False
    fit: str | tuple[str, ...] | None = None
    optional: bool = False
    fill: float | None = None
    stack: int = 1
    size: InitVar[int | None] = None
    offsets: tuple[int, ...] | None = field(default=None, kw_only=True)
    stride: InitVar[int | None] = field(default=None, kw_only=True)
    stack_pad: str = field(default="first", kw_only=True)
    crop: float | None = field(default=None, kw_only=True)
    crop_area: float | None = field(default=None, kw_only=True)
    channel_order: str = field(default="rgb", kw_only=True)

    def __post_init__(self, size: int | None, stride: int | None) -> None:
        check_role(self.role, where="Image role")
        if size is not None:
            if self.height is not None or self.width is not None:
                raise AdapterSpecError("Image takes size=, or height= and width=, not both")
            _check_dim(size, "Image size", minimum=1)
            object.__setattr__(self, "height", size)
            object.__setattr__(self, "width", size)
        for name in ("height", "width", "channels"):
            optional_dim(getattr(self, name), f"Image {name}", minimum=1)
        _check_dim(self.lead_dims, "Image lead_dims", minimum=0)
        check_choice(self.layout, ("hwc", "chw"), "Image layout")
        check_choice(self.resample, RESAMPLES, "Image resample")
        check_choice(self.stack_pad, ("first", "black"), "Image stack_pad")
        check_choice(self.channel_order, ("rgb", "bgr"), "Image channel_order")
        for name in ("upside_down", "allow_upscale", "optional"):
            if not isinstance(getattr(self, name), bool):
                raise AdapterSpecError(f"Image {name} must be a bool")
        object.__setattr__(self, "dtype", dtype_name(self.dtype, "Image dtype"))
        object.__setattr__(self, "normalize", check_normalize(self.normalize))
        object.__setattr__(self, "fit", check_fit(self.fit))
        if self.fill is not None:
            check_number(self.fill, "Image fill")
            if not self.optional:
                raise AdapterSpecError("Image fill needs optional=True")
        self._check_crop()
        self._check_stack(stride)

    def _check_crop(self) -> None:
        if self.crop is not None and self.crop_area is not None:
            raise AdapterSpecError("Image takes crop= or crop_area=, not both (one box)")
        for name in ("crop", "crop_area"):
            value = getattr(self, name)
            check_number(value, f"Image {name}")
            if value is not None and not 0.0 < value <= 1.0:
                raise AdapterSpecError(f"Image {name} must be in (0, 1], not {value!r}")

    def _check_stack(self, stride: int | None) -> None:
        if (isinstance(self.stack, bool) or not isinstance(self.stack, int)
                or not 1 <= self.stack <= 64):
            raise AdapterSpecError(f"Image stack must be between 1 and 64, not {self.stack!r}")
        if stride is not None:
            if self.offsets is not None:
                raise AdapterSpecError("Image takes stride= or offsets=, not both")
            _check_dim(stride, "Image stride", minimum=1)
            object.__setattr__(self, "offsets", tuple(
                -stride * (self.stack - 1 - i) for i in range(self.stack)))
        if self.offsets is None:
            return
        offsets = tuple(self.offsets)
        if (len(offsets) != self.stack or not offsets or offsets[-1] != 0
                or any(not isinstance(o, int) or isinstance(o, bool) for o in offsets)
                or any(b <= a for a, b in itertools.pairwise(offsets))):
            raise AdapterSpecError(f"Image offsets must be {self.stack} increasing "
                                   f"non-positive ints ending at 0, not {self.offsets!r}")
        if 1 - offsets[0] > 128:
            raise AdapterSpecError(f"Image offsets span {1 - offsets[0]} frames; at most 128")
        object.__setattr__(self, "offsets", offsets)

    @property
    def span(self) -> int:
        """How many consecutive frames the stack window holds."""
        return 1 - self.offsets[0] if self.offsets else self.stack
