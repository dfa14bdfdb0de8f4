"""The model side's leaves: what one slot of the payload a model ingests is made of.

A :class:`~rlmesh.adapters.ModelSpec` is a tree (a ``dict``, a ``tuple`` or one bare leaf) of
these: :class:`Image` (a camera, resized and converted), :class:`State` and :class:`Concat`
(numbers read by role, rotations converted, ranges mapped), :class:`Text` (an instruction)
and :class:`Custom` (host code that computes the slot). :class:`CustomEncoding` layers a
host-side rotation repacking over a built-in encoding. Every leaf is checked when built
(:class:`~rlmesh.errors.AdapterSpecError`); whether it fits an env is decided by
:func:`~rlmesh.adapters.resolve`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import InitVar, dataclass, field
from typing import Any, Literal

import numpy as np

from rlmesh.adapters.env_tags import _check_dim, check_encoding, check_range
from rlmesh.adapters.roles import IMAGE_PRIMARY, INSTRUCTION, ROTATION_DIMS, check_role
from rlmesh.errors import AdapterSpecError

__all__ = ["RESAMPLES", "Concat", "ConcatPart", "Custom", "CustomEncoding", "Image",
           "ModelLeaf", "ObsTransform", "Resample", "RotationTransform", "State", "Text",
           "encoding_doc", "encoding_from_doc"]

Resample = Literal["bilinear", "bilinear_aa", "bicubic_aa", "lanczos3_aa", "area", "nearest"]
"""A resize filter: un-suffixed names follow OpenCV/torch, ``_aa`` ones Pillow's
antialiased filters (see ``docs/adapters.md``)."""
RESAMPLES = ("bilinear", "bilinear_aa", "bicubic_aa", "lanczos3_aa", "area", "nearest")
ObsTransform = Callable[[Any], Any]
"""A :class:`Custom` input's transform: the raw observation in, the slot's value out."""
RotationTransform = Callable[[Any], Any] | str
"""One arm of a :class:`CustomEncoding`: a callable, or a ``"module:callable"`` string."""

_FITS = ("stretch", "crop", "pad")
_FIT_ERROR = "fit must be stretch, crop, pad or a preference sequence of them"


def _dtype_name(value: Any, where: str) -> str:
    try:
        return str(np.dtype(value).name)
    except TypeError as exc:
        raise AdapterSpecError(f"{where}: {value!r} is not a NumPy dtype") from exc


def _optional_dim(value: Any, where: str, minimum: int = 0) -> int | None:
    return None if value is None else _check_dim(value, where, minimum=minimum)


def _check_normalize(value: Any) -> bool | tuple[float, float]:
    if isinstance(value, bool):
        return value
    pair = check_range(value, "Image normalize")
    if pair is None or pair[0] == pair[1]:
        raise AdapterSpecError(f"Image normalize is True, False or a (low, high) pair with "
                               f"low < high, not {value!r}")
    return pair


def _check_fit(value: Any) -> str | tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(
        value, Sequence) else ()
    if not names or any(name not in _FITS for name in names):
        raise AdapterSpecError(f"Image {_FIT_ERROR}, not {value!r}")
    return value if isinstance(value, str) else names


def _check_number(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise AdapterSpecError(f"{where} must be a finite number, not {value!r}")


def _check_choice(value: Any, choices: tuple[Any, ...], where: str) -> None:
    if value not in choices:
        raise AdapterSpecError(f"{where} must be one of {', '.join(map(str, choices))}, not "
                               f"{value!r}")


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
            _optional_dim(getattr(self, name), f"Image {name}", minimum=1)
        _check_dim(self.lead_dims, "Image lead_dims", minimum=0)
        _check_choice(self.layout, ("hwc", "chw"), "Image layout")
        _check_choice(self.resample, RESAMPLES, "Image resample")
        _check_choice(self.stack_pad, ("first", "black"), "Image stack_pad")
        _check_choice(self.channel_order, ("rgb", "bgr"), "Image channel_order")
        for name in ("upside_down", "allow_upscale", "optional"):
            if not isinstance(getattr(self, name), bool):
                raise AdapterSpecError(f"Image {name} must be a bool")
        object.__setattr__(self, "dtype", _dtype_name(self.dtype, "Image dtype"))
        object.__setattr__(self, "normalize", _check_normalize(self.normalize))
        object.__setattr__(self, "fit", _check_fit(self.fit))
        if self.fill is not None:
            _check_number(self.fill, "Image fill")
            if not self.optional:
                raise AdapterSpecError("Image fill needs optional=True")
        self._check_crop()
        self._check_stack(stride)

    def _check_crop(self) -> None:
        if self.crop is not None and self.crop_area is not None:
            raise AdapterSpecError("Image takes crop= or crop_area=, not both (one box)")
        for name in ("crop", "crop_area"):
            value = getattr(self, name)
            _check_number(value, f"Image {name}")
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


@dataclass(frozen=True)
class CustomEncoding:
    """A host-side rotation packing layered over a built-in ``base`` encoding.

    The field resolves as its base; the adapter then repacks it: ``from_base`` after the
    built-in conversion on the observation side, ``to_base`` before it on the action side.

    Attributes:
        base: The built-in encoding it repacks (its width is kept).
        from_base: ``base -> custom`` (needed where it tags an observation state).
        to_base: ``custom -> base`` (needed where it tags an action).
        name: Shown by ``explain()``.
    """

    base: str
    from_base: RotationTransform | None = None
    to_base: RotationTransform | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.base not in ROTATION_DIMS or self.base == "gravity_xyz":
            raise AdapterSpecError(f"CustomEncoding base must be a built-in rotation encoding, "
                                   f"not {self.base!r}")
        arms = [arm for arm in (self.from_base, self.to_base) if arm is not None]
        if not arms:
            raise AdapterSpecError("CustomEncoding needs from_base, to_base or both")
        kinds = {isinstance(arm, str) for arm in arms}
        if len(kinds) > 1:
            raise AdapterSpecError("CustomEncoding arms are both callables or both "
                                   "'module:callable' strings, not a mix")
        for arm in arms:
            if not (callable(arm) or (isinstance(arm, str) and ":" in arm)):
                raise AdapterSpecError(f"a CustomEncoding arm is a callable or a "
                                       f"'module:callable' string, not {arm!r}")
        if self.name is None:
            object.__setattr__(self, "name", f"custom({self.base})")

    @property
    def width(self) -> int:
        """The width of the packing (its base's)."""
        return ROTATION_DIMS[self.base]


def encoding_doc(encoding: Any, where: str) -> Any:
    """The JSON form of an ``encoding=`` value (a name, a list, or a CustomEncoding object).

    Raises:
        AdapterSpecError: For a CustomEncoding with callable arms (host code cannot travel).
    """
    if not isinstance(encoding, CustomEncoding):
        return list(encoding) if isinstance(encoding, tuple) else encoding
    if not isinstance(encoding.from_base or encoding.to_base, str):
        raise AdapterSpecError(f"{where}: a CustomEncoding with callable arms cannot be "
                               "serialized (give 'module:callable' strings to publish it)")
    doc: dict[str, Any] = {"base": encoding.base, "name": encoding.name}
    doc.update({k: v for k, v in (("from_base", encoding.from_base),
                                  ("to_base", encoding.to_base)) if v is not None})
    return doc


def encoding_from_doc(doc: Any, where: str) -> Any:
    """Parse :func:`encoding_doc` output.

    Raises:
        AdapterSpecError: On an unknown key in a CustomEncoding object.
    """
    if isinstance(doc, list):
        return tuple(doc)
    if not isinstance(doc, dict):
        return doc
    unknown = sorted(set(doc) - {"base", "name", "from_base", "to_base"})
    if unknown:
        raise AdapterSpecError(f"{where}: unknown CustomEncoding keys {', '.join(unknown)}")
    return CustomEncoding(**doc)


def _part_encoding(value: Any, where: str) -> Any:
    if isinstance(value, CustomEncoding):
        return value
    return check_encoding(value, where, many=True)


@dataclass(frozen=True, eq=False)
class State:
    """A numeric input read from one env feature by role (also a :class:`Concat` part).

    The steps run in a fixed order: slice the env feature, convert the rotation, apply
    ``index`` or ``dim``, map ``range``, then ``scale`` and ``offset``; ``pad_to``,
    ``dtype``, ``reshape`` and ``container`` shape the finished vector.

    Attributes:
        role: The state role to match.
        encoding: Rotation encoding the model wants: one, a preference sequence (the env's
            own is kept when listed), or a :class:`CustomEncoding`.
        dim: Keep the leading ``dim`` elements.
        index: Keep one element (not with ``dim``).
        optional: Fill with ``fill`` when the env lacks the role.
        range: ``(low, high)`` the model wants, mapped affinely from the env's range.
        pad_to: Zero-pad the vector to this length.
        dtype: NumPy dtype of the result.
        reshape: Shape of the result (``()`` makes a scalar).
        container: ``"array"`` or ``"list"``.
        fill: What an absent optional role contributes.
        scale: Multiply by this after the range map.
        offset: Add this after ``scale``.
        frame: Coordinate frame the model reads an absolute pose in.
    """

    role: str
    encoding: str | tuple[str, ...] | CustomEncoding | None = None
    dim: int | None = None
    index: int | None = None
    optional: bool = False
    range: tuple[float, float] | None = None
    pad_to: int | None = None
    dtype: str = "float32"
    reshape: tuple[int, ...] | None = None
    container: str = "array"
    fill: float = field(default=0.0, kw_only=True)
    scale: float | None = field(default=None, kw_only=True)
    offset: float | None = field(default=None, kw_only=True)
    frame: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        check_role(self.role, where="State role")
        object.__setattr__(self, "encoding", _part_encoding(self.encoding, "State encoding"))
        _optional_dim(self.dim, "State dim", minimum=1)
        _optional_dim(self.index, "State index")
        if self.dim is not None and self.index is not None:
            raise AdapterSpecError("State takes dim= or index=, not both")
        if not isinstance(self.optional, bool):
            raise AdapterSpecError("State optional must be a bool")
        object.__setattr__(self, "range", check_range(self.range, "State range"))
        for name in ("fill", "scale", "offset"):
            _check_number(getattr(self, name), f"State {name}")
        if self.fill != 0.0 and not self.optional:
            raise AdapterSpecError("State fill needs optional=True")
        _check_choice(self.frame, (None, "world", "robot_base", "tool"), "State frame")
        _check_container(self, "State")

    @property
    def parts(self) -> tuple[State, ...]:
        """The parts of the vector: this state alone."""
        return (self,)

    def as_part(self) -> State:
        """This state as a :class:`Concat` part (its container fields at their defaults).

        Raises:
            AdapterSpecError: If a container field is set.
        """
        if (self.pad_to, self.dtype, self.reshape, self.container) != (
                None, "float32", None, "array"):
            raise AdapterSpecError(f"a State used as a Concat part keeps pad_to, dtype, "
                                   f"reshape and container at their defaults ({self.role})")
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (State, Concat)) and _state_key(self) == _state_key(other)

    def __hash__(self) -> int:
        return hash(repr(_state_key(self)))


ConcatPart = str | State
"""A :class:`Concat` part: a bare role (a role-only :class:`State`) or a :class:`State`."""


class Concat:
    """Several roles packed into one vector, in order (the multi-part :class:`State`)."""

    def __init__(self, *parts: ConcatPart, pad_to: int | None = None, dtype: str = "float32",
                 reshape: tuple[int, ...] | None = None, container: str = "array") -> None:
        """Pack parts into one vector.

        Args:
            *parts: Bare role strings or :class:`State` parts; at least one.
            pad_to: Zero-pad the assembled vector to this length.
            dtype: NumPy dtype of the result.
            reshape: Shape of the result.
            container: ``"array"`` or ``"list"``.

        Raises:
            AdapterSpecError: If there is no part, a part is neither a role nor a State, or a
                State part sets a container field.
        """
        if not parts:
            raise AdapterSpecError("Concat needs at least one part")
        made: list[State] = []
        for part in parts:
            if isinstance(part, str):
                made.append(State(part))
            elif isinstance(part, State):
                made.append(part.as_part())
            else:
                raise AdapterSpecError(f"a Concat part is a role string or a State, not "
                                       f"{type(part).__qualname__}")
        self.parts: tuple[State, ...] = tuple(made)
        self.pad_to, self.dtype, self.reshape, self.container = pad_to, dtype, reshape, container
        _check_container(self, "Concat")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (State, Concat)) and _state_key(self) == _state_key(other)

    def __hash__(self) -> int:
        return hash(repr(_state_key(self)))

    def __repr__(self) -> str:
        extra = "".join(f", {name}={getattr(self, name)!r}" for name, default in (
            ("pad_to", None), ("dtype", "float32"), ("reshape", None), ("container", "array"))
            if getattr(self, name) != default)
        return f"Concat({', '.join(map(repr, self.parts))}{extra})"


def _check_container(leaf: State | Concat, kind: str) -> None:
    """Check (and normalize) the fields that shape a finished numeric vector."""
    _optional_dim(leaf.pad_to, f"{kind} pad_to")
    object.__setattr__(leaf, "dtype", _dtype_name(leaf.dtype, f"{kind} dtype"))
    if leaf.reshape is not None:
        shape = tuple(leaf.reshape) if isinstance(leaf.reshape, Sequence) else None
        if shape is None or any(isinstance(n, bool) or not isinstance(n, int) or n < -1
                                for n in shape):
            raise AdapterSpecError(f"{kind} reshape must be a tuple of ints, not "
                                   f"{leaf.reshape!r}")
        object.__setattr__(leaf, "reshape", shape)
    _check_choice(leaf.container, ("array", "list"), f"{kind} container")


def _state_key(leaf: State | Concat) -> tuple[Any, ...]:
    """What makes two numeric inputs equal (a one-part Concat equals that State)."""
    parts = tuple((p.role, p.encoding, p.dim, p.index, p.optional, p.range, p.fill, p.scale,
                   p.offset, p.frame) for p in leaf.parts)
    return parts, leaf.pad_to, leaf.dtype, leaf.reshape, leaf.container


@dataclass(frozen=True)
class Text:
    """A text input (typically the instruction), delivered as the raw string.

    Attributes:
        role: The text role to match (default ``text/instruction``).
        container: ``"str"`` or ``"list"`` (a one-element list).
        fill: The value when the observation has no such text; ``None`` omits the slot.
    """

    role: str = INSTRUCTION
    container: str = "str"
    fill: str | None = None

    def __post_init__(self) -> None:
        check_role(self.role, where="Text role")
        _check_choice(self.container, ("str", "list"), "Text container")
        if self.fill is not None and not isinstance(self.fill, str):
            raise AdapterSpecError(f"Text fill must be a string, not {self.fill!r}")


@dataclass(frozen=True)
class Custom:
    """A payload slot computed by host code from the raw observation.

    Set exactly one: ``transform`` (an in-process callable; such a spec cannot be published)
    or ``entrypoint`` (a ``"module:callable"`` string, imported only when resolution is
    called with ``trust_entrypoints=True``).
    """

    transform: ObsTransform | None = None
    entrypoint: str | None = None

    def __post_init__(self) -> None:
        if (self.transform is None) == (self.entrypoint is None):
            raise AdapterSpecError("Custom takes exactly one of transform= or entrypoint=")
        if self.transform is not None and not callable(self.transform):
            raise AdapterSpecError("Custom transform must be callable")
        if self.entrypoint is not None and (not isinstance(self.entrypoint, str)
                                            or self.entrypoint.count(":") != 1):
            raise AdapterSpecError(f"Custom entrypoint must be 'module:callable', not "
                                   f"{self.entrypoint!r}")


ModelLeaf = Image | State | Concat | Text | Custom
"""One leaf of a model's input tree."""
