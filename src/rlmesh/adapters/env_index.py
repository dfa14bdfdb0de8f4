"""What a tagged env offers, by role: its cameras, numeric features and texts.

:func:`index_env` walks the env's tags beside its observation space (checked first by
:mod:`.join`) and lists every tagged feature with where it lives in an observation (a path of
``Dict`` keys and ``Tuple`` indices, and a slice for a :class:`~rlmesh.adapters.Split` field),
its width, encoding and range. The resolver matches model leaves against this index; the
runtime reads values through :func:`read_path`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from rlmesh.adapters.env_tags import Field, ImageTag, Split, StateTag, TextTag
from rlmesh.adapters.images import Camera
from rlmesh.adapters.join import check_observation
from rlmesh.errors import AdapterResolutionError

__all__ = ["EnvIndex", "Path", "StateFeature", "TextFeature", "index_env", "label_of",
           "read_path", "uniform_range"]

Path = tuple[Any, ...]
"""Where a leaf lives in an observation: ``Dict`` keys and ``Tuple`` indices, outermost first."""


def label_of(path: Path) -> str:
    """How ``path`` is shown: ``agent.eef_pos``, ``cams[1]``, ``<root>`` for the whole obs."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "<root>"


def read_path(observation: Any, path: Path) -> Any:
    """The leaf of ``observation`` at ``path``.

    Raises:
        KeyError: If a key on the way is missing.
    """
    value = observation
    for step in path:
        value = value[step]
    return value


def uniform_range(low: Any, high: Any) -> tuple[float, float] | None:
    """``(low, high)`` when every bound is finite and equal across elements, else ``None``."""
    low, high = np.asarray(low, dtype=float).ravel(), np.asarray(high, dtype=float).ravel()
    if low.size == 0 or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return None
    if np.ptp(low) != 0 or np.ptp(high) != 0:
        return None
    return float(low[0]), float(high[0])


@dataclass(frozen=True)
class StateFeature:
    """A numeric feature: a whole leaf, or one slice of a flat leaf.

    Attributes:
        path: Where its leaf lives.
        role: Its role.
        start: First element of its slice (0 for a whole leaf).
        stop: One past its last element (``None``: the whole leaf, flattened).
        width: Its element count.
        encoding: Its rotation encodings (native first), or ``None``.
        range: ``(low, high)`` from the tag or the space's finite uniform bounds.
        frame: Coordinate frame of an absolute pose.
    """

    path: Path
    role: str
    start: int
    stop: int | None
    width: int
    encoding: tuple[str, ...] | None
    range: tuple[float, float] | None
    frame: str | None

    @property
    def label(self) -> str:
        """How it is shown (``proprio[3:7]`` for a slice)."""
        base = label_of(self.path)
        return base if self.stop is None else f"{base}[{self.start}:{self.stop}]"


@dataclass(frozen=True)
class TextFeature:
    """A text feature (a ``Text`` leaf)."""

    path: Path
    role: str

    @property
    def label(self) -> str:
        """How it is shown."""
        return label_of(self.path)


@dataclass
class EnvIndex:
    """Every tagged feature of an env's observation, by role."""

    cameras: dict[str, Camera] = field(default_factory=dict)
    states: dict[str, StateFeature] = field(default_factory=dict)
    texts: dict[str, TextFeature] = field(default_factory=dict)
    camera_paths: dict[str, Path] = field(default_factory=dict)

    def _claim(self, role: str, where: str) -> None:
        if role in self.cameras or role in self.states or role in self.texts:
            raise AdapterResolutionError(f"{where}: the env tags role {role!r} more than once")


def _shape3(shape: Any) -> tuple[int, int, int]:
    height, width, channels = (int(n) for n in shape)
    return height, width, channels


def _encodings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _bounds(space: spaces.Space[Any], start: int, stop: int | None) -> Any:
    if not isinstance(space, spaces.Box):
        return None
    low, high = space.low.ravel(), space.high.ravel()
    end = low.size if stop is None else stop
    return uniform_range(low[start:end], high[start:end])


def _width(space: spaces.Space[Any]) -> int:
    return 1 if isinstance(space, spaces.Discrete) else int(np.prod(space.shape or ()))


def _add_leaf(index: EnvIndex, leaf: Any, space: spaces.Space[Any], path: Path) -> None:
    where = label_of(path)
    if isinstance(leaf, ImageTag):
        index._claim(leaf.role, where)
        assert isinstance(space, spaces.Box)
        low, high = uniform_range(space.low, space.high) or (None, None)
        index.cameras[leaf.role] = Camera(
            path=where, role=leaf.role, shape=_shape3(space.shape),
            layout=leaf.layout, dtype=space.dtype, low=low, high=high,
            upside_down=leaf.upside_down)
        index.camera_paths[leaf.role] = path
    elif isinstance(leaf, TextTag):
        index._claim(leaf.role, where)
        index.texts[leaf.role] = TextFeature(path, leaf.role)
    elif isinstance(leaf, StateTag):
        index._claim(leaf.role, where)
        index.states[leaf.role] = StateFeature(
            path, leaf.role, 0, None, _width(space), _encodings(leaf.encoding),
            leaf.range or _bounds(space, 0, None), leaf.frame)
    elif isinstance(leaf, Split):
        offset = 0
        for item in leaf.fields:
            _add_field(index, item, space, path, offset)
            offset += item.dim


def _add_field(index: EnvIndex, item: Field, space: spaces.Space[Any], path: Path,
               offset: int) -> None:
    if item.role is None:
        return
    stop = offset + item.dim
    index._claim(item.role, f"{label_of(path)}[{offset}:{stop}]")
    index.states[item.role] = StateFeature(
        path, item.role, offset, stop, item.dim, _encodings(item.encoding),
        item.range or _bounds(space, offset, stop), item.frame)


def _walk(index: EnvIndex, node: Any, space: spaces.Space[Any], path: Path) -> None:
    if isinstance(node, Mapping):
        assert isinstance(space, spaces.Dict)
        for key, child in node.items():
            _walk(index, child, space.spaces[key], (*path, key))
    elif isinstance(node, tuple):
        assert isinstance(space, spaces.Tuple)
        for i, child in enumerate(node):
            _walk(index, child, space.spaces[i], (*path, i))
    else:
        _add_leaf(index, node, space, path)


def index_env(observation: Any, space: spaces.Space[Any]) -> EnvIndex:
    """Index an env's tagged observation tree against its space.

    Raises:
        AdapterResolutionError: If a tag does not fit its space, or a role is tagged twice.
    """
    check_observation(observation, space)
    index = EnvIndex()
    _walk(index, observation, space, ())
    return index
