"""The spaces rlmesh serves: Gymnasium's own classes, with a spec each.

``Box``, ``Discrete``, ``MultiBinary``, ``MultiDiscrete``, ``Text``, ``Dict`` and ``Tuple`` are
thin subclasses of Gymnasium's (``isinstance(space, gymnasium.spaces.Box)`` holds, and
sampling, seeding and ``contains`` are Gymnasium's) that add ``space.spec``, ``space.kind``
and ``space.to_gymnasium_space()``. ``Graph``, ``Sequence``, ``OneOf`` and ``Space`` are
Gymnasium's, re-exported. Every space here crosses the wire exactly (see
``docs/protocol.md``)::

    from rlmesh import spaces

    observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "id": spaces.Discrete(5)})
    spaces.space_from_spec(observation_space.spec) == observation_space   # True
"""

from __future__ import annotations

from gymnasium.spaces import Graph, GraphInstance, Sequence, Space

from rlmesh.spacetypes.available import OneOf
from rlmesh.spacetypes.classes import Box, Dict, Discrete, MultiBinary, MultiDiscrete, Text, Tuple
from rlmesh.spacetypes.convert import from_gymnasium_space, space_from_spec, to_gymnasium_space
from rlmesh.spacetypes.spec import SpaceSpec

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
    "SpaceSpec",
    "Text",
    "Tuple",
    "from_gymnasium_space",
    "space_from_spec",
    "to_gymnasium_space",
]
