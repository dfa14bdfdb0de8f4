"""rlmesh's space classes: Gymnasium's own, with a spec and the reference's spellings.

Each class here subclasses its Gymnasium class and changes no behaviour of it: sampling,
seeding, ``contains``, equality and ``check_env`` are Gymnasium's, and
``isinstance(rlmesh.spaces.Box(...), gymnasium.spaces.Box)`` holds. They add:

* ``space.spec`` (a :class:`~rlmesh.spacetypes.spec.SpaceSpec`), ``space.kind`` and
  ``space.to_gymnasium_space()`` (a plain Gymnasium copy);
* ``contains(value=...)`` as well as ``contains(x)``;
* construction from a spec (``Box(spec)``, ``Dict(spec)``, ...), ``MultiBinary(shape=...)``,
  ``Text(max_length, min_length, charset)``;
* ``Box.bounds_kind``, ``MultiBinary.size`` / ``dims``, ``Text.charset``;
* a ``shape`` that also compares equal to a list (``Box(0, 1, (2,)).shape == [2]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.spacetypes.spec import (
    GYMNASIUM_TEXT_CHARSET,
    SpaceSpec,
    register_space_class,
    space_spec,
)

__all__ = ["Box", "Dict", "Discrete", "MultiBinary", "MultiDiscrete", "Shape", "SpaceSurface",
           "Text", "Tuple"]

_MISSING: Any = object()


class Shape(tuple[int, ...]):
    """A space's shape: a tuple that also equals the list of the same sizes."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return tuple(self) == tuple(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__


class SpaceSurface(gs.Space[Any]):
    """What every rlmesh space adds to its Gymnasium class (a mixin; never built alone)."""

    def _finish(self) -> None:
        if self._shape is not None and type(self._shape) is not Shape:
            self._shape = Shape(self._shape)

    @property
    def spec(self) -> SpaceSpec:
        """This space described as a :class:`~rlmesh.spacetypes.spec.SpaceSpec`."""
        return space_spec(self)

    @property
    def kind(self) -> str:
        """The space family (``"box"``, ``"discrete"``, ...), as ``spec.kind``."""
        return self.spec.kind

    def to_gymnasium_space(self) -> gs.Space[Any]:
        """A plain ``gymnasium.spaces`` copy of this space (children converted too)."""
        return self.spec.to_gym_space()

    def contains(self, x: Any = _MISSING, value: Any = _MISSING) -> bool:
        """Whether a value is a member of this space (Gymnasium's check).

        Args:
            x: The value (Gymnasium's name for it).
            value: The value, by the reference's keyword.
        """
        if (x is _MISSING) == (value is _MISSING):
            raise TypeError("contains() takes one value: contains(x) or contains(value=x)")
        return bool(super().contains(value if x is _MISSING else x))


def _spec_of(value: object, kind: str) -> SpaceSpec | None:
    if not isinstance(value, SpaceSpec):
        return None
    if value.kind != kind:
        raise ValueError(f"expected a {kind!r} SpaceSpec, got a {value.kind!r} one")
    return value


class Box(SpaceSurface, gs.Box):
    """Gymnasium's ``Box``; also ``Box(spec)`` and ``Box(low, high, shape, dtype)``."""

    def __init__(self, low: Any, high: Any = None, shape: Sequence[int] | None = None,
                 dtype: Any = np.float32, seed: int | np.random.Generator | None = None) -> None:
        """Build a box from bounds, or from a ``"box"`` spec given as ``low``."""
        spec = _spec_of(low, "box")
        if spec is not None:
            plain = spec.to_gym_space()
            assert isinstance(plain, gs.Box)
            low, high, shape, dtype = plain.low, plain.high, plain.shape, plain.dtype
        elif high is None:
            raise TypeError("Box needs high (or a SpaceSpec as its only argument)")
        super().__init__(low, high, shape=shape, dtype=dtype, seed=seed)
        self._finish()

    @property
    def bounds_kind(self) -> str:
        """``"uniform"`` (one low, one high), ``"unbounded"`` or ``"elementwise"``."""
        return str(self.spec._details()["bounds_kind"])


class Discrete(SpaceSurface, gs.Discrete):
    """Gymnasium's ``Discrete``; also ``Discrete(spec)``."""

    def __init__(self, n: int | np.integer[Any] | SpaceSpec,
                 seed: int | np.random.Generator | None = None, start: int | np.integer[Any] = 0,
                 dtype: Any = np.int64) -> None:
        """Build ``n`` choices from ``start``, or from a ``"discrete"`` spec given as ``n``."""
        spec = _spec_of(n, "discrete")
        if spec is not None:
            details = spec._details()
            n, start, dtype = details["n"], details["start"], spec.dtype
        assert not isinstance(n, SpaceSpec)
        super().__init__(n, seed=seed, start=start, dtype=dtype)
        self._finish()


class MultiBinary(SpaceSurface, gs.MultiBinary):
    """Gymnasium's ``MultiBinary``; also ``MultiBinary(shape=...)`` and ``MultiBinary(spec)``."""

    def __init__(self, n: Any = None, seed: int | np.random.Generator | None = None, *,
                 shape: int | Sequence[int] | None = None) -> None:
        """Build binary values: ``n`` (or ``shape``) is a count or a shape, or a spec."""
        if (n is None) == (shape is None):
            raise TypeError("MultiBinary takes n or shape (one of them)")
        n = shape if n is None else n
        spec = _spec_of(n, "multi_binary")
        if spec is not None:
            details = spec._details()
            n = details["dims"] if details.get("dims") is not None else details["size"]
        super().__init__(n, seed=seed)
        self._finish()

    @property
    def size(self) -> int | None:
        """The number of values when built from a count, else ``None``."""
        return None if isinstance(self.n, (tuple, list, np.ndarray)) else int(self.n)

    @property
    def dims(self) -> list[int] | None:
        """The shape as a list when built from a shape, else ``None``."""
        if isinstance(self.n, (tuple, list, np.ndarray)):
            return [int(d) for d in self.n]
        return None


class MultiDiscrete(SpaceSurface, gs.MultiDiscrete):
    """Gymnasium's ``MultiDiscrete``; also ``MultiDiscrete(spec)``."""

    def __init__(self, nvec: Any, dtype: Any = np.int64,
                 seed: int | np.random.Generator | None = None, start: Any = None) -> None:
        """Build from the choices per dimension, or from a ``"multi_discrete"`` spec."""
        spec = _spec_of(nvec, "multi_discrete")
        if spec is not None:
            details = spec._details()
            dtype = spec.dtype
            nvec = np.asarray(details["nvec"], dtype=dtype)
            start = np.asarray(details["start"], dtype=dtype)
        super().__init__(nvec, dtype=dtype, seed=seed, start=start)
        self._finish()


class Text(SpaceSurface, gs.Text):
    """Gymnasium's ``Text``; also ``Text(max_length, min_length, charset)`` and ``Text(spec)``.

    Without ``charset`` (or with ``""``) the charset is Gymnasium's default, alphanumeric.
    """

    def __init__(self, max_length: int | SpaceSpec, min_length: int = 1,
                 charset: frozenset[str] | str | None = None, *,
                 seed: int | np.random.Generator | None = None) -> None:
        """Build strings of ``min_length`` to ``max_length`` characters of ``charset``."""
        spec = _spec_of(max_length, "text")
        if spec is not None:
            details = spec._details()
            max_length, min_length = details["max_length"], details["min_length"]
            charset = details["charset"]
        assert not isinstance(max_length, SpaceSpec)
        if charset:
            super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)
        else:
            super().__init__(max_length, min_length=min_length, seed=seed)
        self._finish()

    @property
    def charset(self) -> str:
        """The allowed characters; ``""`` for Gymnasium's default (alphanumeric) charset."""
        chars = self.characters
        return "" if frozenset(chars) == GYMNASIUM_TEXT_CHARSET else chars


def _child(space: Any) -> Any:
    return space.to_space() if isinstance(space, SpaceSpec) else space


class Dict(SpaceSurface, gs.Dict):
    """Gymnasium's ``Dict``; also ``Dict(spec)``, and children given as specs."""

    def __init__(self, spaces: Any = None, seed: Any = None, *, sort_keys: bool = True,
                 **spaces_kwargs: gs.Space[Any]) -> None:
        """Build from named child spaces (or specs), or from a ``"dict"`` spec."""
        spec = _spec_of(spaces, "dict")
        if spec is not None:
            spaces = [(key, sub.to_space()) for key, sub in spec._details()["spaces"].items()]
        elif isinstance(spaces, dict):
            spaces = {key: _child(sub) for key, sub in spaces.items()}
        super().__init__(spaces, seed=seed, sort_keys=sort_keys, **spaces_kwargs)
        self._finish()


class Tuple(SpaceSurface, gs.Tuple):  # type: ignore[type-arg]  # (not generic before Gymnasium 1.0)
    """Gymnasium's ``Tuple``; also ``Tuple(spec)``, and children given as specs."""

    def __init__(self, spaces: Iterable[Any] | SpaceSpec, seed: Any = None) -> None:
        """Build from child spaces (or specs), or from a ``"tuple"`` spec."""
        spec = _spec_of(spaces, "tuple")
        children = spec._details()["spaces"] if spec is not None else spaces
        assert not isinstance(children, SpaceSpec)
        super().__init__([_child(sub) for sub in children], seed=seed)
        self._finish()


for _kind, _cls in (("box", Box), ("discrete", Discrete), ("multi_binary", MultiBinary),
                    ("multi_discrete", MultiDiscrete), ("text", Text), ("dict", Dict),
                    ("tuple", Tuple)):
    register_space_class(_kind, _cls)
