"""The action side, shared by env tags and model specs: :class:`Actuator` and :class:`Action`.

An env's :class:`Action` lays its action vector out as ordered components; a model's says
which components it emits. Each :class:`Actuator` covers ``dim`` elements; one with no role is
opaque (filled with a constant, matched by no model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlmesh.adapters.env_tags import (
    _check_dim,
    _put,
    check_encoding,
    check_parts,
    check_range,
    without_extensions,
)
from rlmesh.adapters.model_leaves import CustomEncoding, encoding_doc, encoding_from_doc
from rlmesh.adapters.roles import check_role
from rlmesh.errors import AdapterSpecError

__all__ = ["Action", "Actuator", "action_from_dict"]

_FIELDS = ("role", "dim", "encoding", "range", "binary", "scale", "invert", "threshold",
           "clip", "fill", "optional", "frame", "reference")


def _check_number(value: Any, where: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise AdapterSpecError(f"{where} must be a finite number, not {value!r}")


@dataclass(frozen=True)
class Actuator:
    """One component of an action vector.

    Attributes:
        role: What it commands (e.g. ``action/delta_eef_pos``); ``None`` makes it opaque.
        dim: Elements it covers (>= 0).
        encoding: Rotation encoding (one name; no preference list on the action side).
        range: ``(low, high)``; must agree with the space's finite bounds over the slice.
        binary: An on/off command (snaps to +1 or -1).
        scale: Multiply the model's value by this.
        invert: Negate after scaling.
        threshold: Switching point of a ``binary`` component.
        clip: Clamp the component to its range.
        fill: Constant for an opaque or ``optional`` component.
        optional: Fill with ``fill`` when no model output provides the role.
        frame: Frame of a Cartesian command's axes (``world``, ``robot_base``, ``tool``).
        reference: What a delta is added to (``current`` or ``target``).
    """

    role: str | None = None
    dim: int = 0
    encoding: str | CustomEncoding | None = None
    range: tuple[float, float] | None = None
    binary: bool = False
    scale: float | None = None
    invert: bool = False
    threshold: float | None = None
    clip: bool = False
    fill: float = 0.0
    optional: bool = False
    frame: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        _check_dim(self.dim, "Actuator dim", minimum=0)
        for name in ("scale", "threshold", "fill"):
            _check_number(getattr(self, name), f"Actuator {name}")
        for name in ("binary", "invert", "clip", "optional"):
            if not isinstance(getattr(self, name), bool):
                raise AdapterSpecError(f"Actuator {name} must be a bool, not "
                                       f"{getattr(self, name)!r}")
        if self.role is None:
            extra = [n for n in _FIELDS[2:] if n != "fill" and getattr(self, n) not in
                     (None, False)]
            if extra:
                raise AdapterSpecError(f"an opaque Actuator (role=None) carries only dim and "
                                       f"fill, not {', '.join(extra)}")
            return
        check_role(self.role, where="Actuator role")
        self._check_encoding()
        object.__setattr__(self, "range", check_range(self.range, "Actuator range"))
        if self.fill != 0.0 and not self.optional:
            raise AdapterSpecError("fill on a roled Actuator needs optional=True")
        if self.frame not in (None, "world", "robot_base", "tool"):
            raise AdapterSpecError(f"Actuator frame {self.frame!r} is not world/robot_base/tool")
        if self.reference not in (None, "current", "target"):
            raise AdapterSpecError(f"Actuator reference {self.reference!r} is not "
                                   "current/target")

    def _check_encoding(self) -> None:
        if isinstance(self.encoding, CustomEncoding):
            if self.dim != self.encoding.width:
                raise AdapterSpecError(f"Actuator {self.role}: a {self.encoding.name} encoding "
                                       f"must be {self.encoding.width} wide, not dim={self.dim}")
            return
        check_encoding(self.encoding, "Actuator encoding", many=False)
        if self.encoding == "gravity_xyz":
            raise AdapterSpecError("gravity_xyz is an observation-only encoding")

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON component (only the fields that are set)."""
        doc: dict[str, Any] = {"dim": self.dim}
        if self.fill != 0.0:
            doc["fill"] = float(self.fill)
        fields = {n: getattr(self, n) for n in _FIELDS if n not in ("dim", "fill")}
        fields["encoding"] = encoding_doc(self.encoding, f"action {self.role}")
        return _put(doc, **fields)

    @classmethod
    def from_dict(cls, doc: Any) -> Actuator:
        """Parse a v1 JSON component.

        Raises:
            AdapterSpecError: On an unknown key or a bad value.
        """
        if not isinstance(doc, Mapping):
            raise AdapterSpecError(f"an action component must be an object, not {doc!r}")
        doc = without_extensions(doc)
        unknown = sorted(set(doc) - set(_FIELDS))
        if unknown:
            raise AdapterSpecError(f"unknown action component keys: {', '.join(unknown)}")
        if "dim" not in doc:
            raise AdapterSpecError("an action component needs a dim")
        values = dict(doc)
        if values.get("range") is not None:
            values["range"] = tuple(values["range"])
        values["encoding"] = encoding_from_doc(values.get("encoding"), "action component")
        return cls(**values)


class Action:
    """An ordered action layout: :class:`Actuator` s tiling the action vector from 0."""

    def __init__(self, *components: Actuator, clip: tuple[float, float] | None = None) -> None:
        """Lay out an action vector.

        Args:
            *components: The components in order.
            clip: ``(low, high)`` applied to the whole assembled vector.

        Raises:
            AdapterSpecError: If a component is not an Actuator, a ``(role, ...)`` repeats, or
                ``clip`` is not a finite pair.
        """
        check_parts(components, Actuator, "Action")
        self.components: tuple[Actuator, ...] = tuple(components)
        self.clip = check_range(clip, "Action clip")

    @property
    def dim(self) -> int:
        """The width the components cover."""
        return sum(c.dim for c in self.components)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Action) and other.components == self.components
                and other.clip == self.clip)

    def __hash__(self) -> int:
        return hash((self.components, self.clip))

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.components))
        return f"Action({inner}{f', clip={self.clip}' if self.clip else ''})"

    def to_dict(self) -> dict[str, Any]:
        """The v1 JSON action layout."""
        doc: dict[str, Any] = {"components": [c.to_dict() for c in self.components]}
        return _put(doc, clip=self.clip)


def action_from_dict(doc: Any) -> Action:
    """Parse a v1 JSON action layout (``{"components": [...], "clip"?: [lo, hi]}``).

    Raises:
        AdapterSpecError: If it is malformed or has an unknown key.
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("components"), list):
        raise AdapterSpecError("an action layout is an object with a components list")
    doc = without_extensions(doc)
    unknown = sorted(set(doc) - {"components", "clip"})
    if unknown:
        raise AdapterSpecError(f"unknown action layout keys: {', '.join(unknown)}")
    clip = doc.get("clip")
    return Action(*(Actuator.from_dict(c) for c in doc["components"]),
                  clip=None if clip is None else check_range(clip, "Action clip"))
