"""The env side: :class:`EnvTags`, the sparse meaning an env publishes over its spaces.

Tags carry roles and the few facts a space cannot say (image layout, rotation encoding, an
explicit range); shapes, dtypes and bounds stay in the spaces, and :mod:`.join` checks the
tags against them. Every class here round-trips through the env_tags v1 JSON document
(:meth:`EnvTags.to_dict` / :meth:`EnvTags.from_dict`), published in the contract metadata
under :data:`~rlmesh.adapters.ENV_METADATA_KEY`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlmesh.adapters.roles import (
    ROTATION_DIMS,
    check_role,
    role_kind,
)
from rlmesh.errors import AdapterSpecError

__all__ = ["Field", "ImageTag", "ObsLeaf", "ObsNode", "Split", "StateTag", "TextTag",
           "check_encoding", "check_parts", "check_range", "without_extensions"]

_FRAMES = ("world", "robot_base", "tool")
_REFERENCES = ("current", "target")


def without_extensions(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` less its extension fields (keys prefixed ``x-`` or ``ext-``).

    A reader skips those; any other key is the caller's to check.
    """
    return {k: v for k, v in doc.items() if not str(k).startswith(("x-", "ext-"))}


def check_range(value: Any, where: str) -> tuple[float, float] | None:
    """A ``(low, high)`` pair of finite numbers with ``low <= high`` (``None`` passes)."""
    if value is None:
        return None
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise AdapterSpecError(f"{where} must be a (low, high) pair of numbers, not {value!r}")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise AdapterSpecError(f"{where} must be finite with low <= high, not {value!r}")
    return (low, high)


def check_encoding(value: Any, where: str, *, many: bool) -> str | tuple[str, ...] | None:
    """A rotation encoding name, or (``many``) a non-empty preference sequence of them."""
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if isinstance(value, str) or (many and isinstance(value, Sequence) and value):
        for name in names:
            if name not in ROTATION_DIMS:
                raise AdapterSpecError(f"{where}: unknown rotation encoding {name!r}; known: "
                                       f"{', '.join(ROTATION_DIMS)}")
        return value if isinstance(value, str) else tuple(names)
    raise AdapterSpecError(f"{where} must be an encoding name{' or a list' if many else ''}, "
                           f"not {value!r}")


def check_parts(items: Any, kind: type[Any], owner: str) -> None:
    """Every item is a ``kind`` and no role is named twice (a layout's parts).

    Raises:
        AdapterSpecError: On an item of another type, or a repeated role.
    """
    roles: set[str] = set()
    for item in items:
        if not isinstance(item, kind):
            raise AdapterSpecError(f"{owner} takes {kind.__name__}s, not "
                                   f"{type(item).__qualname__}")
        role: str | None = item.role
        if role is not None:
            if role in roles:
                raise AdapterSpecError(f"{owner} names a role more than once: {role!r}")
            roles.add(role)


def _check_dim(dim: Any, where: str, *, minimum: int) -> int:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < minimum:
        raise AdapterSpecError(f"{where} must be an integer >= {minimum}, not {dim!r}")
    return dim


def _check_choice(value: Any, choices: tuple[str, ...], where: str) -> None:
    if value is not None and value not in choices:
        raise AdapterSpecError(f"{where} must be one of {', '.join(choices)}, not {value!r}")


def _obs_role(role: Any, where: str) -> str:
    checked = check_role(role, where=where)
    if role_kind(checked) == "action":
        raise AdapterSpecError(f"{where} {checked!r}: an observation leaf may not carry an "
                               "action/ role")
    return checked


def _put(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``doc`` plus every field that is set (not ``None``/``False``): the sparse JSON form."""
    for name, value in fields.items():
        if value is not None and value is not False:
            doc[name] = list(value) if isinstance(value, tuple) else value
    return doc


@dataclass(frozen=True)
class ImageTag:
    """A camera image leaf (a 3-D ``Box``).

    Attributes:
        role: The image role (e.g. ``image/primary``).
        layout: Axis order of the stored frame, ``"hwc"`` or ``"chw"``.
        upside_down: The camera renders rotated 180 degrees.
    """

    role: str
    layout: str = "hwc"
    upside_down: bool = False

    def __post_init__(self) -> None:
        _obs_role(self.role, "ImageTag role")
        _check_choice(self.layout, ("hwc", "chw"), "ImageTag layout")
        if not isinstance(self.upside_down, bool):
            raise AdapterSpecError("ImageTag upside_down must be a bool")

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON leaf."""
        doc = {"type": "image", "role": self.role, "layout": self.layout}
        return _put(doc, upside_down=self.upside_down)


@dataclass(frozen=True)
class StateTag:
    """A numeric vector leaf, read whole.

    Attributes:
        role: The state role (e.g. ``proprio/eef_pos``); never an ``action/`` role.
        encoding: Rotation encoding: one name, or a preference sequence (native first).
        range: ``(low, high)`` bounds for a space that leaves this leaf unbounded.
        frame: Coordinate frame of an absolute pose (``world``, ``robot_base``, ``tool``).
    """

    role: str
    encoding: str | tuple[str, ...] | None = None
    range: tuple[float, float] | None = None
    frame: str | None = None

    def __post_init__(self) -> None:
        _obs_role(self.role, "StateTag role")
        object.__setattr__(self, "encoding",
                           check_encoding(self.encoding, "StateTag encoding", many=True))
        object.__setattr__(self, "range", check_range(self.range, "StateTag range"))
        _check_choice(self.frame, _FRAMES, "StateTag frame")

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON leaf."""
        return _put({"type": "state", "role": self.role}, encoding=self.encoding,
                    range=self.range, frame=self.frame)


@dataclass(frozen=True)
class TextTag:
    """A text leaf (a ``Text`` space), typically the task instruction.

    Attributes:
        role: The text role (e.g. ``text/instruction``).
    """

    role: str

    def __post_init__(self) -> None:
        _obs_role(self.role, "TextTag role")

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON leaf."""
        return {"type": "text", "role": self.role}


@dataclass(frozen=True)
class Field:
    """One slice of a :class:`Split` leaf; a field with no role is a skip.

    Attributes:
        role: The slice's role, or ``None`` to skip ``dim`` elements.
        dim: Elements this slice covers (>= 1).
        encoding: Rotation encoding of the slice (one name or a preference sequence).
        range: ``(low, high)`` for a slice the space leaves unbounded.
        frame: Coordinate frame of an absolute pose.
    """

    role: str | None = None
    dim: int = 0
    encoding: str | tuple[str, ...] | None = None
    range: tuple[float, float] | None = None
    frame: str | None = None

    def __post_init__(self) -> None:
        _check_dim(self.dim, "Field dim", minimum=1)
        if self.role is None:
            if (self.encoding, self.range, self.frame) != (None, None, None):
                raise AdapterSpecError("a skip Field (role=None) carries only its dim")
            return
        _obs_role(self.role, "Field role")
        object.__setattr__(self, "encoding",
                           check_encoding(self.encoding, "Field encoding", many=True))
        object.__setattr__(self, "range", check_range(self.range, "Field range"))
        _check_choice(self.frame, _FRAMES, "Field frame")

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON field."""
        return _put({"dim": self.dim}, role=self.role, encoding=self.encoding,
                    range=self.range, frame=self.frame)


class Split:
    """One flat numeric leaf cut into fixed index ranges (:class:`Field` s, in order)."""

    def __init__(self, *fields: Field) -> None:
        """Tag a flat vector by its slices.

        Args:
            *fields: The slices from offset 0; at least one. Their dims sum to the width.

        Raises:
            AdapterSpecError: If there is no field, or one is not a :class:`Field`.
        """
        if not fields:
            raise AdapterSpecError("Split needs at least one Field")
        check_parts(fields, Field, "Split")
        self.fields: tuple[Field, ...] = tuple(fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Split) and other.fields == self.fields

    def __hash__(self) -> int:
        return hash(self.fields)

    def __repr__(self) -> str:
        return f"Split({', '.join(map(repr, self.fields))})"

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON leaf."""
        return {"type": "split", "fields": [f.to_dict() for f in self.fields]}


#: One tagged observation leaf.
ObsLeaf = ImageTag | StateTag | TextTag | Split
#: A tagged observation tree: a leaf, a ``dict`` (a ``Dict`` space) or a ``tuple``.
ObsNode = ObsLeaf | Mapping[str, Any] | tuple[Any, ...]
