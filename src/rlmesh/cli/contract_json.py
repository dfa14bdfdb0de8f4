"""An endpoint's contract as readable JSON, the output of ``rlmesh describe``.

Spaces keep their type, shape and dtype; Box bounds are written as one number when every
element shares it (``"low": 0, "high": 255``) and as a short summary when they are large and
varied, so an Atari endpoint describes itself in a few hundred bytes rather than megabytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from rlmesh.values import map_leaves

__all__ = ["array_json", "contract_json", "json_value", "space_json"]

_MAX_LISTED = 64
"""Arrays with more elements than this are summarised instead of listed."""
_HIDDEN = ("auth", "shm", "shm_link", "shm_link_steps", "shm_link_step_rewards", "challenge",
           "resume")
"""Handshake details that say nothing about what the endpoint serves."""
_SPACES = ("observation_space", "action_space", "single_observation_space",
           "single_action_space")


def contract_json(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract as JSON-ready values, spaces readable (see the module docstring)."""
    described: dict[str, Any] = {}
    for key, value in contract.items():
        if key in _HIDDEN:
            continue
        described[key] = space_json(value) if key in _SPACES else json_value(value)
    return described


def space_json(schema: Any) -> Any:
    """A space schema (as it travels) as readable JSON."""
    if not isinstance(schema, dict):
        return json_value(schema)
    kind = schema.get("type")
    special = _SPECIAL.get(kind) if isinstance(kind, str) else None
    described = None if special is None else special(schema)
    if described is not None:
        return described
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "spaces" and kind == "Dict":
            out[key] = {str(k): space_json(v) for k, v in value}
        elif key == "spaces" and isinstance(value, list):
            out[key] = [space_json(v) for v in value]
        elif key in ("space", "node_space", "edge_space"):
            out[key] = space_json(value)
        else:
            out[key] = json_value(value)
    return out


def _box_json(schema: dict[str, Any]) -> dict[str, Any] | None:
    low, high = schema.get("low"), schema.get("high")
    if not (isinstance(low, np.ndarray) and isinstance(high, np.ndarray)):
        return None
    out: dict[str, Any] = {"type": "Box", "shape": list(low.shape), "dtype": str(low.dtype),
                           "low": array_json(low), "high": array_json(high)}
    for mask in ("bounded_below", "bounded_above"):
        value = schema.get(mask)
        if isinstance(value, np.ndarray) and not value.all():
            out[mask] = array_json(value)  # (else implied by the bounds: omitted)
    return out


def _multi_discrete_json(schema: dict[str, Any]) -> dict[str, Any] | None:
    nvec = schema.get("nvec")
    if not isinstance(nvec, np.ndarray):
        return None
    return {"type": "MultiDiscrete", "shape": list(nvec.shape), "dtype": str(nvec.dtype),
            "nvec": array_json(nvec), "start": array_json(schema.get("start"))}


_SPECIAL: Final[dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]]] = {
    "Box": _box_json, "MultiDiscrete": _multi_discrete_json}
"""Space types whose arrays are summarised (``None``: malformed, described key by key)."""


def array_json(value: Any) -> Any:
    """An array as one number if uniform, a list if small, else a summary."""
    if not isinstance(value, np.ndarray):
        return json_value(value)
    if value.size and bool((value == value.flat[0]).all()):
        return json_value(value.flat[0])
    if value.size <= _MAX_LISTED:
        return json_value(value.tolist())
    flat = value.reshape(-1)
    return {"min": json_value(flat.min()), "max": json_value(flat.max()),
            "elements": int(value.size), "note": "varies per element; summarised"}


def json_value(value: Any) -> Any:
    """Any decoded contract value as JSON (non-finite floats as strings, bytes as hex)."""
    return map_leaves(value, _json_leaf, tuples_as_lists=True, key=str)


def _json_leaf(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return json_value(value.tolist())
    if isinstance(value, np.generic):
        return _json_leaf(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value
