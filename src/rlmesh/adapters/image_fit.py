"""Where an image's pixels go: the crop box, the ``fit`` choice and the resize, planned once.

:func:`plan_geometry` turns one :class:`~rlmesh.adapters.model_leaves.Image` leaf and the size
of one camera into a :class:`Geometry`: the source box each axis reads, the size it is resampled
to, and the zero border around it (``fit="pad"``). It enforces the opt-ins of the conversion
policy: an aspect mismatch needs ``fit`` and a larger target needs ``allow_upscale``; a ``fit``
sequence takes the first mode that needs no disallowed upscale.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rlmesh.adapters.advisory import Advisory
from rlmesh.adapters.model_leaves import Image
from rlmesh.adapters.resize import AxisPlan, plan_axis

__all__ = ["Geometry", "plan_geometry"]


@dataclass(frozen=True)
class Geometry:
    """The planned spatial steps of one image input.

    Attributes:
        rows: How the height axis is resampled.
        cols: How the width axis is resampled.
        size: ``(height, width)`` after the resize, before any border.
        canvas: ``(height, width)`` of the result (``size`` unless padded).
        offset: ``(top, left)`` of the resized image on the canvas.
        steps: ``explain()`` text of the crop, fit and resize steps.
        advisories: What the fit chose that discards or adds pixels.
    """

    rows: AxisPlan
    cols: AxisPlan
    size: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int]
    steps: tuple[str, ...]
    advisories: tuple[Advisory, ...]

    @property
    def padded(self) -> bool:
        """Whether a border surrounds the resized image."""
        return self.size != self.canvas


@dataclass(frozen=True)
class _Box:
    """A source extent in pixel-edge coordinates: top, left, height, width."""

    top: float
    left: float
    height: float
    width: float

    def centred(self, height: float, width: float) -> _Box:
        return _Box(self.top + (self.height - height) / 2, self.left + (self.width - width) / 2,
                    height, width)

    def shows(self) -> str:
        return f"{_px(self.height)}x{_px(self.width)}"


def _px(value: float) -> str:
    return str(round(value)) if abs(value - round(value)) < 1e-9 else f"{value:.1f}"


def _aspect_matches(height: int, width: int, box: _Box) -> bool:
    """Whether ``height x width`` has the box's aspect, up to one pixel of rounding."""
    return (abs(height - width * box.height / box.width) <= 1.0
            or abs(width - height * box.width / box.height) <= 1.0)


def _grows(height: float, width: float, box: _Box) -> bool:
    return height > round(box.height) or width > round(box.width)


def _ratio(height: int, width: int) -> str:
    div = math.gcd(height, width)
    return f"{width // div}:{height // div}"


class _Planner:
    """The planning of one leaf against one camera size (the names for the messages)."""

    def __init__(self, leaf: Image, shape: tuple[int, int], key: str, path: str) -> None:
        self.leaf, self.key, self.path = leaf, key, path
        self.full = shape
        side = leaf.crop if leaf.crop is not None else (
            math.sqrt(leaf.crop_area) if leaf.crop_area is not None else 1.0)
        self.side = side
        self.box = _Box(0.0, 0.0, float(shape[0]), float(shape[1])).centred(
            shape[0] * side, shape[1] * side)
        self.target = (leaf.height if leaf.height is not None else max(1, round(self.box.height)),
                       leaf.width if leaf.width is not None else max(1, round(self.box.width)))

    def modes(self) -> tuple[str, ...]:
        """The fit modes to try, in order (``stretch`` when the aspect matches or no ``fit``)."""
        fit = self.leaf.fit
        if fit is None or not self.reshapes:
            return ("stretch",)
        return (fit,) if isinstance(fit, str) else fit

    @property
    def reshapes(self) -> bool:
        """Whether the target's aspect ratio differs from the (cropped) camera's."""
        return not _aspect_matches(*self.target, self.box)

    def attempt(self, mode: str) -> tuple[Geometry, bool]:
        """The geometry of one fit mode and whether it needs an upscale."""
        height, width = self.target
        box, size, steps = self.box, self.target, list(self._crop_steps())
        notes: list[Advisory] = []
        if mode == "crop" and not _aspect_matches(height, width, box):
            wide = width * box.height > height * box.width
            box = box.centred(box.width * height / width, box.width) if wide else box.centred(
                box.height, box.height * width / height)
            steps.append(f"crop to {_ratio(height, width)} (fit=crop)")
            notes.append(Advisory(
                f"image input {self.key!r}: camera {self.path} is cropped to the model's "
                f"{_ratio(height, width)} aspect (fit=crop); pixels outside the centred "
                f"{box.shows()} box are discarded", level="warn", path=self.key))
        elif mode == "pad" and not _aspect_matches(height, width, box):
            scale = min(height / box.height, width / box.width)
            size = (min(height, max(1, round(box.height * scale))),
                    min(width, max(1, round(box.width * scale))))
            notes.append(Advisory(
                f"image input {self.key!r}: camera {self.path} is letterboxed into "
                f"{height}x{width} (fit=pad); a black border is added around the "
                f"{size[0]}x{size[1]} image", level="warn", path=self.key))
        if (box.height, box.width) != (float(size[0]), float(size[1])):
            steps.append(f"resize {box.shows()}->{size[0]}x{size[1]} {self.leaf.resample}")
        if size != self.target:
            steps.append(f"pad {size[0]}x{size[1]}->{height}x{width} (fit=pad)")
        rows = plan_axis(self.full[0], (box.top, box.top + box.height), size[0],
                         self.leaf.resample)
        cols = plan_axis(self.full[1], (box.left, box.left + box.width), size[1],
                         self.leaf.resample)
        offset = ((height - size[0]) // 2, (width - size[1]) // 2)
        geometry = Geometry(rows, cols, size, self.target, offset, tuple(steps), tuple(notes))
        return geometry, _grows(size[0], size[1], box)

    def _crop_steps(self) -> tuple[str, ...]:
        if self.side == 1.0:
            return ()
        return (f"centre crop {self.side:.3g} ({self.box.shows()} box)",)


def plan_geometry(leaf: Image, shape: tuple[int, int], key: str, path: str) -> Geometry | None:
    """Plan the crop, fit and resize of one image input.

    Args:
        leaf: The model's image leaf.
        shape: ``(height, width)`` of the camera (after the upright rotation, the same).
        key: The payload key, for messages and advisories.
        path: The camera's observation path, for messages.

    Returns:
        The geometry, or ``None`` when the frame keeps its size and nothing is cropped.

    An aspect mismatch without ``fit`` is stretched, and an upscale that ``allow_upscale`` does
    not acknowledge is planned all the same, each with a ``warn`` advisory (the reference
    rlmesh's own examples do both without saying so).
    """
    planner = _Planner(leaf, shape, key, path)
    if planner.side == 1.0 and planner.target == shape:
        return None
    geometry, upscaled = _choose(planner, leaf)
    height, width = planner.target
    notes = []
    if upscaled:
        notes.append(Advisory(
            f"image input {key!r}: the model wants {height}x{width} but camera {path} gives "
            f"{planner.box.shows()}; the frame is upscaled (pixels are interpolated, not "
            "seen); set allow_upscale=True to say this is intended", level="warn", path=key))
    if leaf.fit is None and planner.reshapes:
        notes.append(Advisory(
            f"image input {key!r}: camera {path} gives {planner.box.shows()} but the model "
            f"wants {height}x{width}, another aspect ratio; the frame is stretched (set fit= "
            "to stretch, crop or pad on purpose)", level="warn", path=key))
    if not notes:
        return geometry
    return dataclasses.replace(geometry, advisories=(*geometry.advisories, *notes))


def _choose(planner: _Planner, leaf: Image) -> tuple[Geometry, bool]:
    """The first fit that needs no unacknowledged upscale, else the first (and ``True``)."""
    first: Geometry | None = None
    for mode in planner.modes():
        geometry, grows = planner.attempt(mode)
        if not grows or leaf.allow_upscale:
            return geometry, False
        first = first or geometry
    assert first is not None
    return first, True
