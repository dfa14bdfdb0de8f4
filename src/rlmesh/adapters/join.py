"""Join env tags to the spaces they describe: every tag must fit the space leaf it names.

A tagged key must exist in its ``Dict`` space, a tuple must match its ``Tuple`` arity, an
image needs a 3-D ``Box``, a state or split a numeric leaf, text a ``Text`` space, and the
action layout a ``Box``; widths must add up, fixed-width roles and rotation encodings must
get their width, and a declared range must agree with finite space bounds. Any misfit
raises :class:`~rlmesh.errors.AdapterResolutionError` naming the offending path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from rlmesh.adapters.action import Action
from rlmesh.adapters.env_tags import Field, ImageTag, Split, StateTag, TextTag
from rlmesh.adapters.model_leaves import CustomEncoding
from rlmesh.adapters.roles import REGISTERED_ROLES, ROTATION_DIMS, fixed_width, is_rotation_role
from rlmesh.errors import AdapterResolutionError

__all__ = ["check_action", "check_observation"]

_NUMERIC = (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)


def _width(space: spaces.Space[Any]) -> int:
    return 1 if isinstance(space, spaces.Discrete) else int(np.prod(space.shape or ()))


def _check_feature(where: str, role: str, width: int, encoding: Any) -> None:
    """A role's width against its fixed width and its encoding's native width."""
    fixed = fixed_width(role)
    if fixed is not None and width != fixed:
        raise AdapterResolutionError(f"{where}: role {role!r} is {fixed} wide, the space "
                                     f"gives {width}")
    if isinstance(encoding, CustomEncoding):
        encoding = encoding.base
    names = [encoding] if isinstance(encoding, str) else list(encoding or ())
    if names and role in REGISTERED_ROLES and not is_rotation_role(role):
        raise AdapterResolutionError(f"{where}: role {role!r} is not a rotation role; it "
                                     f"takes no encoding (got {names[0]!r})")
    if names and ROTATION_DIMS[names[0]] != width:
        raise AdapterResolutionError(f"{where}: encoding {names[0]!r} is "
                                     f"{ROTATION_DIMS[names[0]]} wide, the space gives {width}")


def _check_range(where: str, declared: Any, low: Any, high: Any) -> None:
    """A declared range against the space's bounds, where they are finite and uniform."""
    if declared is None or low is None:
        return
    low, high = np.asarray(low, dtype=float).ravel(), np.asarray(high, dtype=float).ravel()
    if low.size == 0 or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return
    agree = np.allclose([low[0], high[0]], declared, rtol=1e-6, atol=1e-6)  # float32 bounds
    if np.ptp(low) == 0 and np.ptp(high) == 0 and not agree:
        raise AdapterResolutionError(f"{where}: range {tuple(declared)} disagrees with the "
                                     f"space bounds ({low[0]}, {high[0]})")


def _bounds(space: spaces.Space[Any]) -> tuple[Any, Any]:
    if isinstance(space, spaces.Box):
        return space.low, space.high
    return None, None


def _check_split(where: str, split: Split, space: spaces.Space[Any]) -> None:
    total = sum(f.dim for f in split.fields)
    if total != _width(space):
        raise AdapterResolutionError(f"{where}: the Split fields' widths sum to {total}, the "
                                     f"space has {_width(space)} elements")
    low, high = _bounds(space)
    offset = 0
    for field in split.fields:
        _check_field(f"{where}[{offset}:{offset + field.dim}]", field, offset, low, high)
        offset += field.dim


def _check_field(where: str, field: Field, offset: int, low: Any, high: Any) -> None:
    if field.role is None:
        return
    _check_feature(where, field.role, field.dim, field.encoding)
    if low is not None:
        low = np.asarray(low).ravel()[offset:offset + field.dim]
        high = np.asarray(high).ravel()[offset:offset + field.dim]
    _check_range(where, field.range, low, high)


def _check_leaf(where: str, leaf: Any, space: spaces.Space[Any]) -> None:
    if isinstance(leaf, TextTag):
        if not isinstance(space, spaces.Text):
            raise AdapterResolutionError(f"{where}: a TextTag needs a Text space, not "
                                         f"{type(space).__name__}")
        return
    if isinstance(leaf, ImageTag):
        if not isinstance(space, spaces.Box) or len(space.shape) != 3:
            raise AdapterResolutionError(f"{where}: an ImageTag needs a 3-D Box, not {space}")
        return
    if not isinstance(space, _NUMERIC):
        raise AdapterResolutionError(f"{where}: a {type(leaf).__name__} needs a numeric "
                                     f"space (Box, Discrete, MultiBinary, MultiDiscrete), "
                                     f"not {type(space).__name__}")
    if isinstance(leaf, Split):
        _check_split(where, leaf, space)
        return
    assert isinstance(leaf, StateTag)
    _check_feature(where, leaf.role, _width(space), leaf.encoding)
    _check_range(where, leaf.range, *_bounds(space))


def check_observation(node: Any, space: spaces.Space[Any], where: str = "observation") -> None:
    """Check a tagged observation tree against its space.

    Raises:
        AdapterResolutionError: If a tag names a missing key or does not fit its leaf.
    """
    if isinstance(node, Mapping):
        if not isinstance(space, spaces.Dict):
            raise AdapterResolutionError(f"{where}: tags are a dict, the space is "
                                         f"{type(space).__name__}, not Dict")
        for key, child in node.items():
            if key not in space.spaces:
                raise AdapterResolutionError(f"{where}: the space has no key {key!r} (keys: "
                                             f"{', '.join(map(str, space.spaces))})")
            check_observation(child, space.spaces[key], f"{where}[{key!r}]")
        return
    if isinstance(node, tuple):
        if not isinstance(space, spaces.Tuple) or len(space.spaces) != len(node):
            raise AdapterResolutionError(f"{where}: {len(node)} tuple tags need a Tuple space "
                                         f"of that arity, not {space}")
        for index, (child, sub) in enumerate(zip(node, space.spaces, strict=True)):
            check_observation(child, sub, f"{where}[{index}]")
        return
    _check_leaf(where, node, space)


def check_action(action: Action, space: spaces.Space[Any]) -> None:
    """Check an action layout against the action space (a ``Box``).

    Raises:
        AdapterResolutionError: If the space is not a Box, the widths differ, or a component
            does not fit its slice.
    """
    if not isinstance(space, spaces.Box):
        raise AdapterResolutionError(f"action: the layout needs a Box action space, not "
                                     f"{type(space).__name__}")
    if action.dim != _width(space):
        raise AdapterResolutionError(f"action: the components' dims sum to {action.dim}, the "
                                     f"space has {_width(space)} elements")
    offset = 0
    for part in action.components:
        where = f"action[{offset}:{offset + part.dim}]"
        if part.role is not None:
            _check_feature(where, part.role, part.dim, part.encoding)
            _check_range(where, part.range, space.low.ravel()[offset:offset + part.dim],
                         space.high.ravel()[offset:offset + part.dim])
        offset += part.dim
