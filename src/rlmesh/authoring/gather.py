"""The pieces of a describe envelope, each gathered best-effort.

Every gatherer returns JSON-ready values; one that fails returns an ``{"error": ...}``
badge (or the caller puts its message under a ``*_error`` key), so the envelope is always
produced. Floats that JSON cannot carry (``inf``, ``nan``) become the strings ``"inf"``,
``"-inf"`` and ``"nan"``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import platform
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rlmesh.authoring.binding import json_default, resolve
from rlmesh.authoring.params import ParamSpec
from rlmesh.authoring.variants import Variant
from rlmesh.protocol import LIBRARY_VERSION
from rlmesh.server.shapes import env_spaces, is_vector_env
from rlmesh.spacetypes.spec import space_spec

__all__ = ["badge", "catalog", "env_spec", "json_safe", "runtime", "tags_json", "variations"]

_FRAMEWORKS = ("numpy", "gymnasium", "torch", "jax")


def badge(exc: BaseException) -> dict[str, str]:
    """An error badge: ``{"error": "TypeName: message"}``."""
    return {"error": f"{type(exc).__qualname__}: {exc}"}


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings and tuples as lists (JSON-ready)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json_default(value)


def _space(space: Any) -> Any:
    return json_safe(space_spec(space)._to_dict())


def env_spec(build: Callable[[], Any], *, close: bool = True) -> dict[str, Any]:
    """The spaces of the env ``build()`` returns (closed afterwards), or an error badge.

    Args:
        build: Returns the env.
        close: Close it afterwards (``False``: the env is the caller's).
    """
    try:
        env = build()
    except Exception as exc:
        return badge(exc)
    try:
        if is_vector_env(env):
            return {"single_observation_space": _space(env.single_observation_space),
                    "single_action_space": _space(env.single_action_space),
                    "num_envs": int(env.num_envs)}
        observation_space, action_space = env_spaces(env)
        return {"observation_space": _space(observation_space),
                "action_space": _space(action_space), "num_envs": 1}
    except Exception as exc:
        return badge(exc)
    finally:
        if close:
            with contextlib.suppress(Exception):
                env.close()


def tags_json(tags: Any) -> Any:
    """Tags as JSON (``None`` stays ``None``), or an error badge."""
    if tags is None:
        return None
    try:
        if hasattr(tags, "to_dict"):
            return json_safe(tags.to_dict())
        if isinstance(tags, Mapping):
            return json_safe(dict(tags))
    except Exception as exc:
        return badge(exc)
    return {"error": f"tags of type {type(tags).__qualname__} have no JSON form"}


def catalog(variants: Callable[[], Iterable[Any]] | None, spec: ParamSpec | None,
            make: Callable[..., Any] | None) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The variant catalog and its error: each entry checked against ``spec`` and ``make``.

    An entry whose params do not validate keeps them verbatim and carries an ``error``; a
    repeated id, or an enumeration that raises, fails the whole catalog.
    """
    if variants is None:
        return [], None
    try:
        entries = list(variants())
    except Exception as exc:
        return None, badge(exc)["error"]
    out, seen = [], set()
    for entry in entries:
        if not isinstance(entry, Variant):
            return None, f"enumerate_variants() yielded {type(entry).__qualname__}, not Variant"
        if entry.id in seen:
            return None, f"variant id {entry.id!r} is repeated (ids must be unique)"
        seen.add(entry.id)
        item = json_safe(entry.to_dict())
        try:
            resolve(spec, make, entry.params, partial=True)
        except (TypeError, ValueError) as exc:
            item["error"] = badge(exc)["error"]
        out.append(item)
    return out, None


def variations(enumerate_params: Callable[[], Any] | None,
               spec: ParamSpec | None) -> tuple[dict[str, Any], str | None]:
    """The sweep axes: ``enumerate_params()`` if defined, else each declared choice list."""
    if enumerate_params is not None:
        try:
            axes = enumerate_params()
            if not isinstance(axes, Mapping):
                raise TypeError(f"enumerate_params() returned {type(axes).__qualname__}, "
                                "not a mapping of name -> values")
            return {str(key): json_safe(list(values)) for key, values in axes.items()}, None
        except Exception as exc:
            return {}, badge(exc)["error"]
    axes = {param.name: json_safe(list(param.choices)) for param in spec or ()
            if param.choices is not None}
    return axes, None


def runtime() -> dict[str, Any]:
    """What the envelope was generated under: Python, rlmesh, the OS and framework versions.

    Framework versions come from the installed distributions (nothing is imported).
    """
    versions = {}
    for name in _FRAMEWORKS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {"component": "rlmesh-python", "language": "python",
            "language_version": platform.python_version(), "package_version": LIBRARY_VERSION,
            "os": sys.platform, "os_version": platform.release(), "arch": platform.machine(),
            "framework_versions": versions}
