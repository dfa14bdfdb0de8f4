"""The spaces rlmesh serves: Gymnasium's own classes, re-exported.

Every space here crosses the wire exactly (see ``docs/protocol.md``)::

    from rlmesh import spaces

    observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "id": spaces.Discrete(5)})
"""

from __future__ import annotations

from gymnasium.spaces import (
    Box,
    Dict,
    Discrete,
    Graph,
    GraphInstance,
    MultiBinary,
    MultiDiscrete,
    OneOf,
    Sequence,
    Space,
    Text,
    Tuple,
)

__all__ = [
    "Box",
    "Dict",
    "Discrete",
    "Graph",
    "GraphInstance",
    "MultiBinary",
    "MultiDiscrete",
    "OneOf",
    "Sequence",
    "Space",
    "Text",
    "Tuple",
]
