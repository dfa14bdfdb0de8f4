"""Where the viewer's frames come from: ``render()``, image observations, tagged camera roles.

:func:`find_sources` lists what an env offers, in the order the viewer cycles through them:
``"render"`` when the env renders to arrays, then every declared image role (when the env
publishes adapter tags), then every image-shaped leaf of the observation (its dict key, ``"a/b"``
when nested; ``"observation"`` when the observation itself is an image). Each
:class:`Source` reads its frame from the env or from the latest observation. On a vector env
the viewer shows lane 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from rlmesh.adapters.env_index import index_env
from rlmesh.adapters.resolution import role_reader
from rlmesh.adapters.tags import EnvTags

__all__ = ["RENDER", "Source", "find_sources"]

RENDER = "render"
"""The name of the ``env.render()`` source."""

_RENDERING = ("rgb_array", "rgb_array_list", "rgb")


@dataclass(frozen=True)
class Source:
    """One thing the viewer can show.

    Args:
        name: What the HUD and the source selector call it.
        read: ``(env, observation) -> frame`` (any array :func:`~rlmesh.viewer.frames.as_rgb`
            takes, or ``None``); the observation is one lane's.
    """

    name: str
    read: Callable[[Any, Any], Any]


def _lane0(value: Any) -> Any:
    """The first lane's entry of a batch (a vector env's frames come as a list or a batch)."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return None if value is None else np.asarray(value)[0]


def _render(vector: bool) -> Callable[[Any, Any], Any]:
    def read(env: Any, observation: Any) -> Any:
        frame = env.render()
        if isinstance(frame, list) and frame and not vector:  # rgb_array_list
            frame = frame[-1]
        return _lane0(frame) if vector else frame
    return read


def _key(path: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    def read(env: Any, observation: Any) -> Any:
        value = observation
        for part in path:
            value = value[part]
        return value
    return read


def _looks_like_image(space: spaces.Space[Any]) -> bool:
    """A Box whose shape is HWC or CHW with 1, 3 or 4 channels, or a 2-D uint8 grid."""
    if not isinstance(space, spaces.Box):
        return False
    shape = space.shape
    if len(shape) == 2:
        return space.dtype == np.uint8 and min(shape) >= 8
    if len(shape) != 3:
        return False
    channels_last = shape[2] in (1, 3, 4) and min(shape[:2]) >= 8
    channels_first = shape[0] in (1, 3, 4) and min(shape[1:]) >= 8
    return channels_last or channels_first


def _image_leaves(space: spaces.Space[Any], path: tuple[str, ...] = ()
                  ) -> list[tuple[str, ...]]:
    if isinstance(space, spaces.Dict):
        found: list[tuple[str, ...]] = []
        for key, sub in space.spaces.items():
            found.extend(_image_leaves(sub, (*path, str(key))))
        return found
    return [path] if _looks_like_image(space) else []


def _roles(metadata: Mapping[str, Any], space: spaces.Space[Any]) -> list[Source]:
    """A source per image role the env tags (none when it publishes no valid tags)."""
    try:
        tags = EnvTags.from_metadata(metadata)
    except Exception:
        return []
    if tags is None:
        return []
    try:
        cameras = list(index_env(tags.observation, space).cameras)
    except Exception:
        return []
    found = []
    for role in cameras:
        try:
            reader = role_reader(tags, space, (role,))
        except Exception:
            continue
        found.append(Source(role, _role(reader, role)))
    return found


def _role(reader: Callable[[Any], dict[Any, Any]], role: str) -> Callable[[Any, Any], Any]:
    def read(env: Any, observation: Any) -> Any:
        return reader(observation).get(role)
    return read


def renders(env: Any) -> bool:
    """Whether ``env.render()`` gives arrays (its ``render_mode`` is an ``rgb_array`` mode)."""
    return getattr(env, "render_mode", None) in _RENDERING


def find_sources(env: Any, observation_space: spaces.Space[Any],
                 metadata: Mapping[str, Any] | None = None,
                 vector: bool = False) -> list[Source]:
    """Every source ``env`` offers, ``"render"`` first when it renders to arrays.

    Args:
        env: The env (single or vector).
        observation_space: One lane's observation space.
        metadata: Where the env publishes adapter tags (its contract's metadata).
        vector: Whether ``env`` is a vector env (frames and observations of lane 0).
    """
    found = [Source(RENDER, _render(vector))] if renders(env) else []
    roles = _roles(metadata or {}, observation_space)
    found.extend(roles)
    names = {source.name for source in found}
    for path in _image_leaves(observation_space):
        name = "/".join(path) or "observation"
        if name not in names:
            found.append(Source(name, _key(path)))
    return found
