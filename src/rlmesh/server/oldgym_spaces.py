"""Spaces of the old ``gym`` package as Gymnasium spaces (for ``OldGymEnv``).

The old package's spaces are separate classes that Gymnasium's checks and rlmesh's wire
schemas do not accept, but they carry the same parameters. Each one is rebuilt here as its
Gymnasium counterpart with the same parameters: a ``Box`` keeps its dtype, shape and exact
bounds, a ``Discrete`` its ``start``, a ``Dict`` its key order. Classes are recognised by
name along their bases, so any release of ``gym`` (0.21 to 0.26) works and ``gym`` itself is
never imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces as gs

from rlmesh.errors import UnsupportedSpaceError
from rlmesh.wire.foreign import qualified_name

__all__ = ["CONVERTED_SPACES", "gymnasium_space"]


def _box(space: Any) -> gs.Space[Any]:
    dtype = np.dtype(space.dtype)
    low = np.asarray(space.low, dtype=dtype)
    high = np.asarray(space.high, dtype=dtype)
    return gs.Box(low=low, high=high, shape=tuple(space.shape), dtype=dtype)


def _discrete(space: Any) -> gs.Space[Any]:
    return gs.Discrete(int(space.n), start=int(getattr(space, "start", 0)))


def _multi_discrete(space: Any) -> gs.Space[Any]:
    return gs.MultiDiscrete(np.asarray(space.nvec), dtype=np.dtype(space.dtype))


def _multi_binary(space: Any) -> gs.Space[Any]:
    n = space.n
    return gs.MultiBinary(int(n) if np.ndim(n) == 0 else [int(k) for k in np.ravel(n)])


def _tuple(space: Any) -> gs.Space[Any]:
    return gs.Tuple([gymnasium_space(sub) for sub in space.spaces])


def _dict(space: Any) -> gs.Space[Any]:
    # A list of pairs keeps the old space's key order (a mapping would be sorted).
    return gs.Dict([(key, gymnasium_space(sub)) for key, sub in space.spaces.items()])


def _text(space: Any) -> gs.Space[Any]:
    charset = getattr(space, "character_set", None) or getattr(space, "_char_set", None)
    if charset is None:
        return gs.Text(int(space.max_length), min_length=int(space.min_length))
    return gs.Text(int(space.max_length), min_length=int(space.min_length),
                   charset=frozenset(charset))


def _sequence(space: Any) -> gs.Space[Any]:
    return gs.Sequence(gymnasium_space(space.feature_space))


def _graph(space: Any) -> gs.Space[Any]:
    edge = None if space.edge_space is None else gymnasium_space(space.edge_space)
    return gs.Graph(node_space=gymnasium_space(space.node_space), edge_space=edge)


_CONVERTERS: dict[str, Callable[[Any], gs.Space[Any]]] = {
    "Box": _box, "Discrete": _discrete, "MultiDiscrete": _multi_discrete,
    "MultiBinary": _multi_binary, "Tuple": _tuple, "Dict": _dict, "Text": _text,
    "Sequence": _sequence, "Graph": _graph,
}

CONVERTED_SPACES = tuple(_CONVERTERS)
"""The old ``gym`` space classes converted, by name."""


def _old_gym_kind(space: Any) -> str | None:
    """The name of the first base class of ``space`` that is one of the old package's spaces."""
    for base in type(space).__mro__:
        module = getattr(base, "__module__", "") or ""
        if (module == "gym" or module.startswith("gym.")) and base.__name__ in _CONVERTERS:
            return base.__name__
    return None


def gymnasium_space(space: Any) -> gs.Space[Any]:
    """The Gymnasium space equivalent to ``space``, a space of the old ``gym`` package.

    A Gymnasium space is returned as it is (an old env may already use them). Composite
    spaces are converted part by part.

    Args:
        space: A ``gym.spaces`` space (``Box``, ``Discrete``, ``MultiDiscrete``,
            ``MultiBinary``, ``Tuple``, ``Dict``, ``Text``, ``Sequence``, ``Graph``).

    Raises:
        UnsupportedSpaceError: For any other class, named with its module.
    """
    if isinstance(space, gs.Space):
        return space
    kind = _old_gym_kind(space)
    if kind is None:
        raise UnsupportedSpaceError(
            f"the space {qualified_name(type(space))} is not one of the old gym spaces rlmesh "
            f"converts to Gymnasium ({', '.join(CONVERTED_SPACES)}); give the env one of "
            "those, or port it to Gymnasium")
    return _CONVERTERS[kind](space)
