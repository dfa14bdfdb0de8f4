"""Gymnasium spaces to and from their wire schema (``docs/protocol.md`` section 6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
from gymnasium import spaces as gs

from rlmesh.errors import ProtocolError, UnsupportedSpaceError
from rlmesh.spacetypes.available import OneOf
from rlmesh.wire.foreign import space_problem

__all__ = ["schema_to_space", "space_to_schema"]

_MAX_DEPTH = 32


def space_to_schema(space: gs.Space[Any], _depth: int = 0) -> dict[str, Any]:
    """Describe a Gymnasium space as a msgpack-ready schema map.

    Args:
        space: Any of Box, Discrete, MultiDiscrete, MultiBinary, Text, Dict, Tuple, Sequence,
            Graph or OneOf, nested freely.

    Returns:
        The schema map.

    Raises:
        UnsupportedSpaceError: For a space type without a schema (the message names its
            class, says what is supported and, for a legacy ``gym`` space, how to convert).
    """
    if _depth > _MAX_DEPTH:
        raise UnsupportedSpaceError(f"spaces nested deeper than {_MAX_DEPTH} levels")
    for kind, describe in _DESCRIBE:
        if isinstance(space, kind):
            return describe(space, _depth + 1)
    raise UnsupportedSpaceError(space_problem(space))


def schema_to_space(schema: Any, _depth: int = 0) -> gs.Space[Any]:
    """Rebuild the Gymnasium space a schema describes.

    Args:
        schema: A schema map as produced by :func:`space_to_schema` and decoded from the wire.

    Returns:
        A new, unseeded Gymnasium space equal to the original.

    Raises:
        ProtocolError: If the schema is malformed.
    """
    if _depth > _MAX_DEPTH or not isinstance(schema, dict):
        raise ProtocolError(
            "malformed space schema: " + ("nested too deeply" if _depth > _MAX_DEPTH
                                          else f"a {type(schema).__qualname__}, not a map"))
    kind = schema.get("type")
    build = _BUILD.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise ProtocolError(f"unknown space type {kind!r}")
    try:
        return build(schema, _depth + 1)
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
        raise ProtocolError(f"malformed {kind} space schema: {exc}") from exc


# -- space -> schema, one function per space type (``d`` is the depth of the parts) ---------

def _box_schema(space: gs.Box, d: int) -> dict[str, Any]:
    return {"type": "Box", "low": np.array(space.low), "high": np.array(space.high),
            "bounded_below": np.array(space.bounded_below, dtype=bool),
            "bounded_above": np.array(space.bounded_above, dtype=bool)}


def _discrete_schema(space: gs.Discrete, d: int) -> dict[str, Any]:
    return {"type": "Discrete", "n": int(space.n), "start": int(space.start),
            "dtype": np.dtype(space.dtype).str}


def _multi_discrete_schema(space: gs.MultiDiscrete, d: int) -> dict[str, Any]:
    return {"type": "MultiDiscrete", "nvec": np.array(space.nvec), "start": np.array(space.start)}


def _multi_binary_schema(space: gs.MultiBinary, d: int) -> dict[str, Any]:
    n = space.n
    return {"type": "MultiBinary",
            "n": [int(x) for x in n] if isinstance(n, (tuple, list, np.ndarray)) else int(n)}


def _text_schema(space: gs.Text, d: int) -> dict[str, Any]:
    return {"type": "Text", "min_length": space.min_length, "max_length": space.max_length,
            "charset": "".join(space._char_list)}


def _dict_schema(space: gs.Dict, d: int) -> dict[str, Any]:
    return {"type": "Dict",
            "spaces": [[key, space_to_schema(sub, d)] for key, sub in space.spaces.items()]}


def _tuple_schema(space: gs.Tuple[Any], d: int) -> dict[str, Any]:
    return {"type": "Tuple", "spaces": [space_to_schema(sub, d) for sub in space.spaces]}


def _sequence_schema(space: gs.Sequence, d: int) -> dict[str, Any]:
    return {"type": "Sequence", "space": space_to_schema(space.feature_space, d),
            "stack": bool(space.stack)}


def _graph_schema(space: gs.Graph, d: int) -> dict[str, Any]:
    edge = None if space.edge_space is None else space_to_schema(space.edge_space, d)
    return {"type": "Graph", "node_space": space_to_schema(space.node_space, d),
            "edge_space": edge}


def _one_of_schema(space: gs.OneOf[Any], d: int) -> dict[str, Any]:
    return {"type": "OneOf", "spaces": [space_to_schema(sub, d) for sub in space.spaces]}


_DESCRIBE: Final[tuple[tuple[type[Any], Callable[[Any, int], dict[str, Any]]], ...]] = (
    (gs.Box, _box_schema), (gs.Discrete, _discrete_schema),
    (gs.MultiDiscrete, _multi_discrete_schema), (gs.MultiBinary, _multi_binary_schema),
    (gs.Text, _text_schema), (gs.Dict, _dict_schema), (gs.Tuple, _tuple_schema),
    (gs.Sequence, _sequence_schema), (gs.Graph, _graph_schema), (OneOf, _one_of_schema),
)
"""Space classes (subclasses match too) and how each is described; a new space type adds a
row here and one in :data:`_BUILD`."""


# -- schema -> space ------------------------------------------------------------------------

def _bool_mask(value: Any, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    if not isinstance(value, np.ndarray) or value.dtype != bool or value.shape != shape:
        raise ProtocolError("Box boundedness masks must be bool arrays of the space's shape")
    return value


def _box(schema: dict[str, Any], d: int) -> gs.Box:
    low, high = schema["low"], schema["high"]
    if not isinstance(low, np.ndarray) or not isinstance(high, np.ndarray):
        raise ProtocolError("Box bounds must be arrays")
    space = gs.Box(low=low, high=high, shape=low.shape, dtype=low.dtype)
    # Integer boxes record infinite bounds only in these masks; restore them exactly.
    if "bounded_below" in schema:
        space.bounded_below = _bool_mask(schema["bounded_below"], low.shape).copy()
    if "bounded_above" in schema:
        space.bounded_above = _bool_mask(schema["bounded_above"], low.shape).copy()
    return space


def _discrete(schema: dict[str, Any], d: int) -> gs.Discrete:
    n, start = schema["n"], schema["start"]
    if type(n) is not int or type(start) is not int:
        raise ProtocolError("Discrete n and start must be ints")
    dtype = np.dtype(str(schema.get("dtype", "<i8")))
    if dtype == np.int64:
        return gs.Discrete(n, start=start)
    return gs.Discrete(n, start=start, dtype=dtype.type)


def _multi_discrete(schema: dict[str, Any], d: int) -> gs.MultiDiscrete:
    nvec = schema["nvec"]
    return gs.MultiDiscrete(nvec, dtype=nvec.dtype, start=schema["start"])


def _multi_binary(schema: dict[str, Any], d: int) -> gs.MultiBinary:
    n = schema["n"]
    if not (type(n) is int or (type(n) is list and all(type(x) is int for x in n))):
        raise ProtocolError("MultiBinary n must be an int or a list of ints")
    return gs.MultiBinary(n)


def _text(schema: dict[str, Any], d: int) -> gs.Text:
    return gs.Text(int(schema["max_length"]), min_length=int(schema["min_length"]),
                   charset=str(schema["charset"]))


def _dict(schema: dict[str, Any], d: int) -> gs.Dict:
    return gs.Dict([(k, schema_to_space(s, d)) for k, s in schema["spaces"]])


def _tuple(schema: dict[str, Any], d: int) -> gs.Tuple[Any]:
    return gs.Tuple([schema_to_space(s, d) for s in schema["spaces"]])


def _sequence(schema: dict[str, Any], d: int) -> gs.Sequence:
    return gs.Sequence(schema_to_space(schema["space"], d), stack=bool(schema["stack"]))


def _graph(schema: dict[str, Any], d: int) -> gs.Graph:
    edge = schema["edge_space"]
    return gs.Graph(node_space=schema_to_space(schema["node_space"], d),
                    edge_space=None if edge is None else schema_to_space(edge, d))


def _one_of(schema: dict[str, Any], d: int) -> gs.OneOf[Any]:
    return OneOf([schema_to_space(s, d) for s in schema["spaces"]])


_BUILD: Final[dict[str, Callable[[dict[str, Any], int], gs.Space[Any]]]] = {
    "Box": _box, "Discrete": _discrete, "MultiDiscrete": _multi_discrete,
    "MultiBinary": _multi_binary, "Text": _text, "Dict": _dict, "Tuple": _tuple,
    "Sequence": _sequence, "Graph": _graph, "OneOf": _one_of,
}
"""How each schema ``type`` is rebuilt (``d`` is the depth of the parts)."""
