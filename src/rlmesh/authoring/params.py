"""Declared construction parameters: :class:`Param`, :class:`ParamSpec` and :class:`Vector`.

A :class:`ParamSpec` is the validated ceiling over ``make()``'s keywords: each
:class:`Param` names one keyword and gives it a type, allowed ``choices``, help text and a
UI group. Values are coerced lightly and strictly (:meth:`Param.coerce`): ``True`` is never
``1``, ``2.5`` is never an ``int``, ``NaN`` is never a parameter. Defaults are not declared
here: they live in ``make()``'s signature (see :mod:`rlmesh.authoring.binding`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from rlmesh.errors import ParamError

__all__ = ["EXTRA_MODES", "PARAM_METADATA_KEY", "SCALAR_TYPES", "Param", "ParamSpec", "Vector"]

PARAM_METADATA_KEY = "rlmesh.params"
"""The ``env.metadata`` key under which ``EnvFactory.make`` records the validated binding."""

SCALAR_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}
"""The four checked scalar types, by name."""

EXTRA_MODES = ("forbid", "passthrough")
"""What a :class:`ParamSpec` does with undeclared keys."""

_UNIT_TOLERANCE = 1e-6


class Vector:
    """A fixed-length vector of finite floats, as a :class:`Param` type.

    Args:
        dim: The number of components (>= 1).
        unit: Require a unit L2 norm (a quaternion, a direction), within ``1e-6``.

    A value is a tuple of ``dim`` floats; a list (JSON has no tuples) is accepted.
    """

    __slots__ = ("dim", "unit")

    def __init__(self, dim: int, unit: bool = False) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"Vector dim must be an int >= 1, not {dim!r}")
        self.dim = dim
        self.unit = bool(unit)

    def coerce(self, name: str, value: Any) -> tuple[float, ...]:
        """``value`` as a tuple of ``dim`` finite floats.

        Raises:
            ParamError: If it is not a sequence of ``dim`` finite numbers (of unit norm).
        """
        if not isinstance(value, (list, tuple)) or len(value) != self.dim:
            raise ParamError(f"parameter {name!r} must be a sequence of {self.dim} floats, "
                             f"not {value!r}")
        out = tuple(_float(name, item) for item in value)
        if self.unit and abs(math.sqrt(sum(x * x for x in out)) - 1.0) > _UNIT_TOLERANCE:
            raise ParamError(f"parameter {name!r} must have unit norm, not {value!r}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """The type as JSON: ``{"vector": {"dim": 3, "unit": false}}``."""
        return {"vector": {"dim": self.dim, "unit": self.unit}}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vector):
            return NotImplemented
        return (self.dim, self.unit) == (other.dim, other.unit)

    def __hash__(self) -> int:
        return hash((Vector, self.dim, self.unit))

    def __repr__(self) -> str:
        return f"Vector({self.dim}{', unit=True' if self.unit else ''})"


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"parameter {name!r} expects a float, not {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ParamError(f"parameter {name!r} must be finite, not {value!r}")
    return out


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(f"parameter {name!r} expects an int, not {value!r}")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ParamError(f"parameter {name!r} expects an int, not {value!r}")
    return int(value)


def coerce_scalar(name: str, kind: str, value: Any) -> Any:
    """``value`` checked (and lightly coerced) as the scalar type ``kind`` names.

    Raises:
        ParamError: If it does not fit.
    """
    if kind == "int":
        return _int(name, value)
    if kind == "float":
        return _float(name, value)
    expected = SCALAR_TYPES[kind]
    if not isinstance(value, expected):
        raise ParamError(f"parameter {name!r} expects a {kind}, not {value!r}")
    return value


def _type_name(kind: Any) -> str | Vector | Any:
    """``type`` normalised: a scalar's name, ``"enum"``, a Vector, or an opaque type."""
    if isinstance(kind, Vector):
        return kind
    if isinstance(kind, str):
        if kind not in (*SCALAR_TYPES, "enum"):
            raise ValueError(f"Param type {kind!r} is not one of int, float, str, bool, enum")
        return kind
    for name, cls in SCALAR_TYPES.items():
        if kind is cls:
            return name
    return kind  # an opaque custom type: no coercion, choices only


class Param:
    """One declared construction parameter (a keyword of ``make()``).

    Args:
        name: The keyword.
        type: ``int``, ``float``, ``str``, ``bool`` (the type or its name), ``"enum"`` (the
            domain is ``choices`` alone), a :class:`Vector`, or any other type (not coerced).
        choices: The allowed values (a sweep axis); a value outside them is rejected.
        description: Help text.
        group: A UI grouping label (advisory).

    Raises:
        ValueError: For a bad name or type, ``"enum"`` without choices, or a choice that
            does not fit the type.
    """

    __slots__ = ("choices", "description", "group", "name", "type")

    def __init__(self, name: str, type: Any = "str", choices: Sequence[Any] | None = None,
                 description: str = "", group: str | None = None) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Param name must be an identifier, not {name!r}")
        self.name = name
        self.type = _type_name(type)
        self.description = str(description)
        self.group = group
        self.choices: tuple[Any, ...] | None = None
        if choices is not None:
            if isinstance(choices, (str, bytes)) or len(choices) == 0:
                raise ValueError(f"Param {name!r}: choices must be a non-empty sequence")
            try:
                self.choices = tuple(self._coerce_type(choice) for choice in choices)
            except ParamError as exc:
                raise ValueError(f"Param {name!r}: a choice does not fit its type: {exc}"
                                 ) from None
        elif self.type == "enum":
            raise ValueError(f"Param {name!r} of type 'enum' needs choices")

    def _coerce_type(self, value: Any) -> Any:
        if isinstance(self.type, Vector):
            return self.type.coerce(self.name, value)
        if isinstance(self.type, str) and self.type in SCALAR_TYPES:
            return coerce_scalar(self.name, self.type, value)
        return value

    def coerce(self, value: Any) -> Any:
        """``value`` checked against the type and choices (a Vector's list becomes a tuple).

        Raises:
            ParamError: If it does not fit.
        """
        value = self._coerce_type(value)
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"parameter {self.name!r} must be one of "
                             f"{list(self.choices)!r}, not {value!r}")
        return value

    @property
    def type_name(self) -> Any:
        """The type as JSON: a name, or a Vector's object (``repr`` of an opaque type)."""
        if isinstance(self.type, Vector):
            return self.type.to_dict()
        if isinstance(self.type, str):
            return self.type
        return getattr(self.type, "__qualname__", repr(self.type))

    def to_dict(self) -> dict[str, Any]:
        """The declaration as JSON-ready values."""
        return {"name": self.name, "type": self.type_name,
                "choices": None if self.choices is None else [
                    list(c) if isinstance(c, tuple) else c for c in self.choices],
                "description": self.description, "group": self.group}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Param):
            return NotImplemented
        return all(getattr(self, slot) == getattr(other, slot) for slot in self.__slots__)

    def __hash__(self) -> int:
        return hash((Param, self.name))

    def __repr__(self) -> str:
        extra = f", choices={list(self.choices)!r}" if self.choices is not None else ""
        return f"Param({self.name!r}, {self.type_name!r}{extra})"


class ParamSpec:
    """The declared parameters of a factory's ``make()`` (or a model's constructor).

    Args:
        *params: The :class:`Param` declarations (names unique).
        extra: ``"forbid"`` (an undeclared key that is no keyword of ``make()`` is an
            error) or ``"passthrough"`` (it is forwarded through ``make()``'s ``**kwargs``).

    Raises:
        TypeError: If an item is not a :class:`Param`.
        ValueError: For a repeated name or an unknown ``extra``.
    """

    __slots__ = ("extra", "params")

    def __init__(self, *params: Param, extra: str = "forbid") -> None:
        for param in params:
            if not isinstance(param, Param):
                raise TypeError(f"ParamSpec takes Param declarations, not {param!r}")
        names = [param.name for param in params]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"ParamSpec declares {', '.join(repeated)} more than once")
        if extra not in EXTRA_MODES:
            raise ValueError(f"extra must be 'forbid' or 'passthrough', not {extra!r}")
        self.params: tuple[Param, ...] = tuple(params)
        self.extra = extra

    @property
    def names(self) -> list[str]:
        """The declared names, in declaration order."""
        return [param.name for param in self.params]

    def get(self, name: str) -> Param | None:
        """The declaration of ``name``, or ``None``."""
        return next((param for param in self.params if param.name == name), None)

    def __contains__(self, name: object) -> bool:
        return any(param.name == name for param in self.params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready values: ``{"params": [...], "extra": "forbid"}``."""
        return {"params": [param.to_dict() for param in self.params], "extra": self.extra}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParamSpec):
            return NotImplemented
        return (self.params, self.extra) == (other.params, other.extra)

    def __hash__(self) -> int:
        return hash((ParamSpec, self.params, self.extra))

    def __repr__(self) -> str:
        inner = ", ".join(map(repr, self.params))
        return f"ParamSpec({inner}{', ' if inner else ''}extra={self.extra!r})"
