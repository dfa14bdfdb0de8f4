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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlmesh.adapters.env_tags import check_encoding, check_range
from rlmesh.adapters.image_leaf import RESAMPLES, Image, Resample
from rlmesh.adapters.leaf_checks import check_choice, check_number, dtype_name, optional_dim
from rlmesh.adapters.roles import INSTRUCTION, ROTATION_DIMS, check_role
from rlmesh.errors import AdapterSpecError

__all__ = ["RESAMPLES", "Concat", "ConcatPart", "Custom", "CustomEncoding", "Image",
           "ModelLeaf", "ObsTransform", "Resample", "RotationTransform", "State", "Text",
           "encoding_doc", "encoding_from_doc"]

ObsTransform = Callable[[Any], Any]
"""A :class:`Custom` input's transform: the raw observation in, the slot's value out."""
RotationTransform = Callable[[Any], Any] | str
"""One arm of a :class:`CustomEncoding`: a callable, or a ``"module:callable"`` string."""

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
        optional_dim(self.dim, "State dim", minimum=1)
        optional_dim(self.index, "State index")
        if self.dim is not None and self.index is not None:
            raise AdapterSpecError("State takes dim= or index=, not both")
        if not isinstance(self.optional, bool):
            raise AdapterSpecError("State optional must be a bool")
        object.__setattr__(self, "range", check_range(self.range, "State range"))
        for name in ("fill", "scale", "offset"):
            check_number(getattr(self, name), f"State {name}")
        if self.fill != 0.0 and not self.optional:
            raise AdapterSpecError("State fill needs optional=True")
        check_choice(self.frame, (None, "world", "robot_base", "tool"), "State frame")
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
    optional_dim(leaf.pad_to, f"{kind} pad_to")
    object.__setattr__(leaf, "dtype", dtype_name(leaf.dtype, f"{kind} dtype"))
    if leaf.reshape is not None:
        shape = tuple(leaf.reshape) if isinstance(leaf.reshape, Sequence) else None
        if shape is None or any(isinstance(n, bool) or not isinstance(n, int) or n < -1
                                for n in shape):
            raise AdapterSpecError(f"{kind} reshape must be a tuple of ints, not "
                                   f"{leaf.reshape!r}")
        object.__setattr__(leaf, "reshape", shape)
    check_choice(leaf.container, ("array", "list"), f"{kind} container")


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
        check_choice(self.container, ("str", "list"), "Text container")
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
