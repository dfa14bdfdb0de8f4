"""Gymnasium spaces to and from their wire schema (``docs/protocol.md`` section 6)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.errors import ProtocolError, UnsupportedSpaceError
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
    d = _depth + 1
    if isinstance(space, gs.Box):
        return {"type": "Box", "low": np.array(space.low), "high": np.array(space.high),
                "bounded_below": np.array(space.bounded_below, dtype=bool),
                "bounded_above": np.array(space.bounded_above, dtype=bool)}
    if isinstance(space, gs.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start),
                "dtype": np.dtype(space.dtype).str}
    if isinstance(space, gs.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.array(space.nvec),
                "start": np.array(space.start)}
    if isinstance(space, gs.MultiBinary):
        n = space.n
        return {"type": "MultiBinary",
                "n": [int(x) for x in n] if isinstance(n, (tuple, list, np.ndarray)) else int(n)}
    if isinstance(space, gs.Text):
        return {"type": "Text", "min_length": space.min_length, "max_length": space.max_length,
                "charset": "".join(space._char_list)}
    if isinstance(space, gs.Dict):
        return {"type": "Dict",
                "spaces": [[key, space_to_schema(sub, d)] for key, sub in space.spaces.items()]}
    if isinstance(space, gs.Tuple):
        return {"type": "Tuple", "spaces": [space_to_schema(sub, d) for sub in space.spaces]}
    if isinstance(space, gs.Sequence):
        return {"type": "Sequence", "space": space_to_schema(space.feature_space, d),
                "stack": bool(space.stack)}
    if isinstance(space, gs.Graph):
        edge = None if space.edge_space is None else space_to_schema(space.edge_space, d)
        return {"type": "Graph", "node_space": space_to_schema(space.node_space, d),
                "edge_space": edge}
    if isinstance(space, gs.OneOf):
        return {"type": "OneOf", "spaces": [space_to_schema(sub, d) for sub in space.spaces]}
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
    d = _depth + 1
    kind = schema.get("type")
    try:
        if kind == "Box":
            return _box(schema)
        if kind == "Discrete":
            return _discrete(schema)
        if kind == "MultiDiscrete":
            nvec = schema["nvec"]
            return gs.MultiDiscrete(nvec, dtype=nvec.dtype, start=schema["start"])
        if kind == "MultiBinary":
            n = schema["n"]
            if not (type(n) is int or (type(n) is list and all(type(x) is int for x in n))):
                raise ProtocolError("MultiBinary n must be an int or a list of ints")
            return gs.MultiBinary(n)
        if kind == "Text":
            return gs.Text(int(schema["max_length"]), min_length=int(schema["min_length"]),
                           charset=str(schema["charset"]))
        if kind == "Dict":
            return gs.Dict([(k, schema_to_space(s, d)) for k, s in schema["spaces"]])
        if kind == "Tuple":
            return gs.Tuple([schema_to_space(s, d) for s in schema["spaces"]])
        if kind == "Sequence":
            return gs.Sequence(schema_to_space(schema["space"], d), stack=bool(schema["stack"]))
        if kind == "Graph":
            edge = schema["edge_space"]
            return gs.Graph(node_space=schema_to_space(schema["node_space"], d),
                            edge_space=None if edge is None else schema_to_space(edge, d))
        if kind == "OneOf":
            return gs.OneOf([schema_to_space(s, d) for s in schema["spaces"]])
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as exc:
        raise ProtocolError(f"malformed {kind} space schema: {exc}") from exc
    raise ProtocolError(f"unknown space type {kind!r}")


def _bool_mask(value: Any, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    if not isinstance(value, np.ndarray) or value.dtype != bool or value.shape != shape:
        raise ProtocolError("Box boundedness masks must be bool arrays of the space's shape")
    return value


def _box(schema: dict[str, Any]) -> gs.Box:
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


def _discrete(schema: dict[str, Any]) -> gs.Discrete:
    n, start = schema["n"], schema["start"]
    if type(n) is not int or type(start) is not int:
        raise ProtocolError("Discrete n and start must be ints")
    dtype = np.dtype(str(schema.get("dtype", "<i8")))
    if dtype == np.int64:
        return gs.Discrete(n, start=start)
    return gs.Discrete(n, start=start, dtype=dtype.type)
