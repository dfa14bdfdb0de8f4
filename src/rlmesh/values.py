"""How values change representation: one walker over nested values, one coercion of actions.

Every conversion rlmesh makes on a nested value walks dicts, lists and tuples with
:func:`map_leaves` and changes only the leaves:

* numpy to plain Python values for ``rlmesh.RemoteEnv`` and ``rlmesh.Model`` (:func:`to_plain`);
* numpy to framework arrays and back for ``rlmesh.torch`` and ``rlmesh.jax``;
* values that cannot travel to their ``repr`` in ``info`` (:mod:`rlmesh.wire.lenient`);
* decoded contract values to JSON for ``rlmesh describe``.

Actions given as plain values, framework arrays or numpy arrays of another dtype are brought
to the action space's own representation by :func:`coerce_action` (one action) and
:func:`coerce_actions` (a batch, one per vector env lane). This module imports nothing of
rlmesh: every layer may use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.spacetypes.available import OneOf

__all__ = ["coerce_action", "coerce_actions", "map_leaves", "to_plain"]

_ARRAY_SPACES = (gs.Box, gs.MultiDiscrete, gs.MultiBinary)


def map_leaves(value: Any, leaf: Callable[[Any], Any], *, into_graphs: bool = True,
               into_object_arrays: bool = False, tuples_as_lists: bool = False,
               key: Callable[[Any], Any] | None = None, max_depth: int | None = None,
               too_deep: Callable[[Any], Any] | None = None) -> Any:
    """``value`` with ``leaf`` applied to everything that is not a dict, list or tuple.

    Args:
        value: Any nested value.
        leaf: Applied to each leaf (arrays and scalars included).
        into_graphs: Walk into ``GraphInstance`` tuples (rebuilt as such, or as lists with
            ``tuples_as_lists``); otherwise a graph instance is a leaf.
        into_object_arrays: Walk into numpy arrays of dtype ``object`` (rebuilt with the same
            shape); otherwise they are leaves.
        tuples_as_lists: Rebuild tuples as lists (for JSON).
        key: Applied to dict keys (default: unchanged).
        max_depth: Containers nested deeper than this are handed to ``too_deep``.
        too_deep: What a container beyond ``max_depth`` becomes (default: ``leaf``).
    """
    return _Walk(leaf, into_graphs, into_object_arrays, tuples_as_lists, key, max_depth,
                 too_deep or leaf).walk(value, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class _Walk:
    """One walk of :func:`map_leaves` (its options, fixed for the whole value)."""

    leaf: Callable[[Any], Any]
    into_graphs: bool
    into_object_arrays: bool
    tuples_as_lists: bool
    key: Callable[[Any], Any] | None
    max_depth: int | None
    too_deep: Callable[[Any], Any]

    def walk(self, value: Any, depth: int) -> Any:
        if isinstance(value, (dict, list, tuple)) or self._object_array(value):
            if self.max_depth is not None and depth >= self.max_depth:
                return self.too_deep(value)
            return self._container(value, depth + 1)
        return self.leaf(value)

    def _object_array(self, value: Any) -> bool:
        return (self.into_object_arrays and isinstance(value, np.ndarray)
                and value.dtype.kind == "O")

    def _container(self, value: Any, depth: int) -> Any:
        walk = self.walk
        if isinstance(value, dict):
            key = self.key
            return {(k if key is None else key(k)): walk(v, depth) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, depth) for v in value]
        if isinstance(value, np.ndarray):  # an object array
            array = np.empty(value.size, dtype=object)
            array[:] = [walk(v, depth) for v in value.ravel().tolist()] if value.size else []
            return array.reshape(value.shape)
        if isinstance(value, gs.GraphInstance) and not self.into_graphs:
            return self.leaf(value)
        items = [walk(v, depth) for v in value]
        if self.tuples_as_lists:
            return items
        return gs.GraphInstance(*items) if isinstance(value, gs.GraphInstance) else tuple(items)


def _plain_leaf(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_plain(value: Any) -> Any:
    """Numpy arrays inside ``value`` as (nested) lists, numpy scalars as Python scalars."""
    return map_leaves(value, _plain_leaf)


def coerce_action(space: gs.Space[Any] | None, action: Any) -> Any:
    """``action`` in the representation ``space`` uses.

    Plain values (lists, numbers) of an array space become arrays of its dtype, arrays of
    another dtype are cast, a 0-d array for a ``Discrete`` space becomes its scalar, and
    ``Dict``, ``Tuple``, ``Sequence`` and ``OneOf`` actions are coerced part by part. Anything
    else is returned unchanged, for the server to judge.
    """
    if isinstance(space, _ARRAY_SPACES):
        if isinstance(action, (list, tuple, int, float, bool)):
            return np.asarray(action, dtype=space.dtype)
        if isinstance(action, np.ndarray) and action.dtype != space.dtype:
            return action.astype(space.dtype)
        return action
    if isinstance(space, gs.Discrete):
        if isinstance(action, np.ndarray) and action.ndim == 0:
            return action.astype(space.dtype)[()]
        return action
    return _coerce_parts(space, action)


def _coerce_parts(space: gs.Space[Any] | None, action: Any) -> Any:
    """:func:`coerce_action` for the composite spaces, part by part."""
    if isinstance(space, gs.Dict) and isinstance(action, dict):
        return {k: coerce_action(space.spaces[k], v) if k in space.spaces else v
                for k, v in action.items()}
    if not isinstance(action, (list, tuple)):
        return action
    if isinstance(space, gs.Tuple):
        if len(action) != len(space.spaces):
            return tuple(action)
        return tuple(coerce_action(s, v) for s, v in zip(space.spaces, action, strict=True))
    if isinstance(space, gs.Sequence) and not space.stack:
        return tuple(coerce_action(space.feature_space, v) for v in action)
    if isinstance(space, OneOf) and len(action) == 2:
        index = int(action[0])
        if 0 <= index < len(space.spaces):
            return (index, coerce_action(space.spaces[index], action[1]))
    return action


def coerce_actions(space: gs.Space[Any] | None, actions: Any) -> Any:
    """A batch of actions (one per lane of a vector env) as arrays of ``space``'s dtype.

    ``space`` is the *single* action space; ``Dict`` and ``Tuple`` batches are coerced part by
    part.
    """
    if isinstance(space, (*_ARRAY_SPACES, gs.Discrete)):
        if isinstance(actions, (list, tuple)) or (isinstance(actions, np.ndarray)
                                                  and actions.dtype != space.dtype):
            return np.asarray(actions, dtype=space.dtype)
        return actions
    if isinstance(space, gs.Dict) and isinstance(actions, dict):
        return {k: coerce_actions(space.spaces.get(k), v) for k, v in actions.items()}
    if isinstance(space, gs.Tuple) and isinstance(actions, (list, tuple)) and len(
            actions) == len(space.spaces):
        return tuple(coerce_actions(s, v) for s, v in zip(space.spaces, actions, strict=True))
    return actions
