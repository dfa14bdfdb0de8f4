"""``SpaceSpec``: a plain, immutable description of a space, and how one is made.

A spec says what a space is in built-in Python values only (``kind``, ``shape``, ``dtype``
and the fields of its kind), so it can be compared, printed and turned into a dictionary
without Gymnasium or numpy. :func:`space_spec` describes any Gymnasium space;
``SpaceSpec.to_space()`` builds the matching :mod:`rlmesh.spaces` class and
``SpaceSpec.to_gym_space()`` a plain Gymnasium one.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.spacetypes.available import OneOf

__all__ = ["GYMNASIUM_TEXT_CHARSET", "SpaceSpec", "register_space_class", "space_spec"]

GYMNASIUM_TEXT_CHARSET = frozenset(string.ascii_letters + string.digits)
"""The characters of Gymnasium's default ``Text`` charset; a spec names it ``""``."""

_PLAIN: dict[str, Callable[..., gs.Space[Any]]] = {
    "box": gs.Box, "discrete": gs.Discrete, "multi_binary": gs.MultiBinary,
    "multi_discrete": gs.MultiDiscrete, "text": gs.Text, "dict": gs.Dict, "tuple": gs.Tuple,
    "sequence": gs.Sequence, "graph": gs.Graph, "one_of": OneOf,
}
_NATIVE: dict[str, Callable[..., gs.Space[Any]]] = dict(_PLAIN)


def register_space_class(kind: str, cls: Callable[..., gs.Space[Any]]) -> None:
    """Make ``SpaceSpec.to_space()`` build ``cls`` for specs of ``kind``."""
    _NATIVE[kind] = cls


class SpaceSpec:
    """An immutable description of one space, in built-in values.

    Attributes:
        kind: The space family: ``"box"``, ``"discrete"``, ``"multi_binary"``,
            ``"multi_discrete"``, ``"text"``, ``"dict"``, ``"tuple"`` (and ``"sequence"``,
            ``"graph"``, ``"one_of"`` for the other Gymnasium spaces rlmesh serves).
        shape: The shape of one value as a list (``[]`` for scalars, text and composites).
        dtype: The element dtype's name (``"float32"``, ``"int64"``, ``"str"``; ``""`` for
            composites).
    """

    __slots__ = ("_details_map", "_dtype", "_kind", "_shape")
    _kind: str
    _shape: tuple[int, ...]
    _dtype: str
    _details_map: Mapping[str, Any]

    def __init__(self, kind: str, shape: list[int], dtype: str,
                 details: Mapping[str, Any]) -> None:
        """Build a spec; prefer ``space.spec`` or :func:`space_spec`.

        Args:
            kind: The space family.
            shape: The shape of one value.
            dtype: The element dtype's name.
            details: The fields of the kind (child spaces as ``SpaceSpec``).
        """
        if kind not in _PLAIN:
            raise ValueError(f"unknown space kind {kind!r}; known: {', '.join(_PLAIN)}")
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_shape", tuple(int(d) for d in shape))
        object.__setattr__(self, "_dtype", str(dtype))
        object.__setattr__(self, "_details_map", MappingProxyType(dict(details)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SpaceSpec is immutable")

    @property
    def kind(self) -> str:
        """The space family."""
        return str(self._kind)

    @property
    def shape(self) -> list[int]:
        """The shape of one value, as a list."""
        return list(self._shape)

    @property
    def dtype(self) -> str:
        """The element dtype's name."""
        return str(self._dtype)

    def _details(self) -> dict[str, Any]:
        """The kind's own fields (a copy; child spaces are ``SpaceSpec``)."""
        return dict(self._details_map)

    def _to_dict(self) -> dict[str, Any]:
        """The spec as nested built-in values: ``kind``, ``shape``, ``dtype`` and the fields."""
        out: dict[str, Any] = {"kind": self.kind, "shape": self.shape, "dtype": self.dtype}
        for key, value in self._details_map.items():
            out[key] = _plain(value)
        return out

    def to_space(self) -> gs.Space[Any]:
        """Build the :mod:`rlmesh.spaces` space this spec describes (a Gymnasium space)."""
        return _build(self, _NATIVE)

    def to_gym_space(self) -> gs.Space[Any]:
        """Build the plain ``gymnasium.spaces`` space this spec describes."""
        return _build(self, _PLAIN)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpaceSpec):
            return NotImplemented
        return self._to_dict() == other._to_dict()

    def __hash__(self) -> int:
        return hash((self._kind, self._shape, self._dtype))

    def __repr__(self) -> str:
        return f"SpaceSpec({self.to_gym_space()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        details = {key: dict(value) if isinstance(value, MappingProxyType) else value
                   for key, value in self._details_map.items()}
        return (SpaceSpec, (self.kind, self.shape, self.dtype, details))


def _plain(value: Any) -> Any:
    if isinstance(value, SpaceSpec):
        return value._to_dict()
    if isinstance(value, Mapping):
        return {key: _plain(sub) for key, sub in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(sub) for sub in value]
    return value


# -- Gymnasium space -> spec ------------------------------------------------------------------

def _box_spec(space: gs.Box) -> SpaceSpec:
    low, high = np.asarray(space.low), np.asarray(space.high)
    details: dict[str, Any]
    if (low.dtype.kind == "f" and low.size and np.all(np.isneginf(low))
            and np.all(np.isposinf(high))):
        details = {"bounds_kind": "unbounded", "low": None, "high": None}
    elif low.size and np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
        details = {"bounds_kind": "uniform", "low": low.flat[0].item(),
                   "high": high.flat[0].item()}
    else:
        details = {"bounds_kind": "elementwise", "low": low.tolist(), "high": high.tolist()}
    return SpaceSpec("box", list(space.shape), np.dtype(space.dtype).name, details)


def _multi_binary_spec(space: gs.MultiBinary) -> SpaceSpec:
    n: Any = space.n
    shaped = isinstance(n, (tuple, list, np.ndarray))
    return SpaceSpec("multi_binary", list(space.shape), np.dtype(space.dtype).name,
                     {"size": None if shaped else int(n),
                      "dims": [int(d) for d in n] if shaped else None})


def _text_spec(space: gs.Text) -> SpaceSpec:
    chars = space.characters
    charset = "" if frozenset(chars) == GYMNASIUM_TEXT_CHARSET else chars
    return SpaceSpec("text", [], "str", {"min_length": int(space.min_length),
                                         "max_length": int(space.max_length),
                                         "charset": charset})


def _kind_spec(space: gs.Space[Any]) -> SpaceSpec | None:
    if isinstance(space, gs.Box):
        return _box_spec(space)
    if isinstance(space, gs.Discrete):
        return SpaceSpec("discrete", [], np.dtype(space.dtype).name,
                         {"n": int(space.n), "start": int(space.start)})
    if isinstance(space, gs.MultiBinary):
        return _multi_binary_spec(space)
    if isinstance(space, gs.MultiDiscrete):
        return SpaceSpec("multi_discrete", list(space.shape), np.dtype(space.dtype).name,
                         {"nvec": np.asarray(space.nvec).tolist(),
                          "start": np.asarray(space.start).tolist()})
    if isinstance(space, gs.Text):
        return _text_spec(space)
    return None


def _composite_spec(space: gs.Space[Any]) -> SpaceSpec | None:
    if isinstance(space, gs.Dict):
        return SpaceSpec("dict", [], "", {"spaces": MappingProxyType(
            {str(key): space_spec(sub) for key, sub in space.spaces.items()})})
    if isinstance(space, gs.Tuple):
        return SpaceSpec("tuple", [], "", {"spaces": tuple(space_spec(s) for s in space.spaces)})
    if isinstance(space, gs.Sequence):
        return SpaceSpec("sequence", [], "", {"space": space_spec(space.feature_space),
                                              "stack": bool(space.stack)})
    if isinstance(space, gs.Graph):
        edge = None if space.edge_space is None else space_spec(space.edge_space)
        return SpaceSpec("graph", [], "", {"node_space": space_spec(space.node_space),
                                           "edge_space": edge})
    if isinstance(space, OneOf):
        return SpaceSpec("one_of", [], "", {"spaces": tuple(space_spec(s) for s in space.spaces)})
    return None


def space_spec(space: gs.Space[Any]) -> SpaceSpec:
    """Describe a Gymnasium space (any class rlmesh serves, nested freely).

    Raises:
        TypeError: For a space rlmesh does not serve.
    """
    spec = _kind_spec(space) or _composite_spec(space)
    if spec is None:
        raise TypeError(f"no SpaceSpec for a {type(space).__qualname__}")
    return spec


# -- spec -> space ----------------------------------------------------------------------------

Classes = Mapping[str, Callable[..., gs.Space[Any]]]


def _box_kwargs(details: Mapping[str, Any], shape: tuple[int, ...],
                dtype: np.dtype[Any]) -> dict[str, Any]:
    bounds = details.get("bounds_kind")
    if bounds == "unbounded":
        return {"low": -np.inf, "high": np.inf, "shape": shape, "dtype": dtype}
    if bounds == "uniform":
        return {"low": np.full(shape, details["low"], dtype=dtype),
                "high": np.full(shape, details["high"], dtype=dtype), "dtype": dtype}
    return {"low": np.asarray(details["low"], dtype=dtype).reshape(shape),
            "high": np.asarray(details["high"], dtype=dtype).reshape(shape), "dtype": dtype}


def _leaf_kwargs(spec: SpaceSpec) -> dict[str, Any]:
    d, kind = spec._details_map, spec.kind
    if kind == "box":
        return _box_kwargs(d, tuple(spec.shape), np.dtype(spec.dtype))
    if kind == "discrete":
        return {"n": d["n"], "start": d["start"], "dtype": spec.dtype}
    if kind == "multi_binary":
        return {"n": d["dims"] if d.get("dims") is not None else d["size"]}
    if kind == "multi_discrete":
        return {"nvec": np.asarray(d["nvec"], dtype=spec.dtype), "dtype": spec.dtype,
                "start": np.asarray(d["start"], dtype=spec.dtype)}
    out = {"max_length": d["max_length"], "min_length": d["min_length"]}
    return out | ({"charset": d["charset"]} if d["charset"] else {})


def _build(spec: SpaceSpec, classes: Classes) -> gs.Space[Any]:
    d, kind = spec._details_map, spec.kind
    if kind == "dict":
        kwargs: dict[str, Any] = {"spaces": [(k, _build(s, classes))
                                             for k, s in d["spaces"].items()]}
    elif kind in ("tuple", "one_of"):
        kwargs = {"spaces": [_build(s, classes) for s in d["spaces"]]}
    elif kind == "sequence":
        kwargs = {"space": _build(d["space"], classes), "stack": d["stack"]}
    elif kind == "graph":
        edge = d["edge_space"]
        kwargs = {"node_space": _build(d["node_space"], classes),
                  "edge_space": None if edge is None else _build(edge, classes)}
    else:
        kwargs = _leaf_kwargs(spec)
    return classes[kind](**kwargs)
