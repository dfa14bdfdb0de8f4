"""Envs and spaces from other APIs that rlmesh does not serve, and what to do about them.

rlmesh serves Gymnasium's single-agent API. Objects from neighbouring APIs look close
enough to pass a duck-typing check and then fail deep inside with a confusing message, so
they are recognised here by where their classes come from (without importing those
packages) and refused with a message that names the object and the way forward:

* a PettingZoo multi-agent env (AEC or Parallel API);
* an env or space from the legacy ``gym`` package (not ``gymnasium``);
* any other space class that has no wire schema.
"""

from __future__ import annotations

import sys
from typing import Any

from gymnasium.spaces import Space

from rlmesh.errors import UnsupportedSpaceError

__all__ = ["check_servable", "qualified_name", "space_problem"]

SUPPORTED_SPACES = ("Box, Discrete, MultiDiscrete, MultiBinary, Text, Dict, Tuple, Sequence, "
                    "Graph, OneOf")
"""The space classes rlmesh serves (from ``rlmesh.spaces``, which are ``gymnasium.spaces``)."""


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a class or function (``builtins`` ones by their bare name)."""
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return name if module in ("", "builtins") else f"{module}.{name}"


def _root_packages(cls: type) -> set[str]:
    """The top-level packages that ``cls`` and its base classes are defined in."""
    return {(getattr(base, "__module__", None) or "").partition(".")[0]
            for base in getattr(cls, "__mro__", (cls,))}


def _gym_version() -> str:
    version = getattr(sys.modules.get("gym"), "__version__", None)
    return f" {version}" if version else ""


def _legacy_gym(what: str) -> str:
    return (
        f"{what} comes from the legacy `gym{_gym_version()}` package, not Gymnasium; rlmesh "
        "serves Gymnasium envs and spaces. Serve it with rlmesh's old-gym adapter: rlmesh "
        "serve ENV_ID --compat gym, or EnvServer(env, compat=\"gym\") (docs/old-gym.md); "
        "or wrap the env with Shimmy's compatibility wrapper "
        "(pip install \"shimmy[gym-v26]\"): shimmy.GymV26CompatibilityV0(env=gym.make(...)), "
        "or gymnasium.make(\"GymV26Environment-v0\", env_id=...) after `import shimmy` (on "
        "the command line: rlmesh serve shimmy:GymV26Environment-v0 --kwargs "
        "'{\"env_id\": \"CartPole-v1\"}'); or port the env to Gymnasium (usually `import "
        "gymnasium as gym` instead of `import gym`)"
    )


def _is_pettingzoo(env: Any) -> bool:
    if "pettingzoo" in _root_packages(type(env)):
        return True
    # The PettingZoo API without PettingZoo's base classes: per-agent space methods.
    return hasattr(env, "possible_agents") and callable(getattr(env, "observation_space", None))


def _pettingzoo(env: Any) -> str:
    api = "AEC" if hasattr(env, "agent_iter") else "Parallel"
    metadata = getattr(env, "metadata", None)
    name = metadata.get("name") if isinstance(metadata, dict) else None
    called = f" ({name})" if isinstance(name, str) and name else ""
    try:
        agents = [str(agent) for agent in env.possible_agents]
    except Exception:  # an env that builds its agents lazily: say nothing about them
        agents = []
    listed = ", ".join(agents[:4]) + (f", ... ({len(agents)} agents)" if len(agents) > 4 else "")
    with_agents = f" with agents {listed}" if agents else ""
    return (
        f"{qualified_name(type(env))}{called} is a PettingZoo multi-agent env ({api} API)"
        f"{with_agents}; rlmesh serves single-agent Gymnasium envs and does not serve "
        "multi-agent envs yet. Serve a single-agent view of it instead: a Gymnasium env that "
        "wraps one agent (the others played by fixed policies inside it), or a SuperSuit or "
        "Shimmy conversion (for example supersuit.pettingzoo_env_to_vec_env_v1 turns a "
        "Parallel env with alike agents into a vector env with one sub-env per agent; "
        "pettingzoo.utils.aec_to_parallel converts an AEC env first)"
    )


def check_servable(env: Any) -> None:
    """Refuse an env from an API rlmesh does not serve, saying what to do instead.

    Only the class hierarchy and attributes are inspected; no package is imported.

    Args:
        env: The object about to be served (or returned by a factory).

    Raises:
        UnsupportedSpaceError: For a PettingZoo multi-agent env or a legacy ``gym`` env.
    """
    if _is_pettingzoo(env):
        raise UnsupportedSpaceError(_pettingzoo(env))
    if "gym" in _root_packages(type(env)):
        raise UnsupportedSpaceError(_legacy_gym(f"the env {qualified_name(type(env))}"))


def space_problem(space: Any) -> str:
    """Why ``space`` cannot be served, and the way forward (for ``UnsupportedSpaceError``).

    Args:
        space: An object that is not one of the supported space classes.

    Returns:
        The message: a legacy ``gym`` space, a ``Space`` subclass without a wire schema, or
        an object that is not a space at all, each by its fully qualified class name.
    """
    name = qualified_name(type(space))
    if "gym" in _root_packages(type(space)):
        return _legacy_gym(f"the space {name}")
    supported = (f"rlmesh serves these spaces (rlmesh.spaces, which are gymnasium.spaces): "
                 f"{SUPPORTED_SPACES}, nested freely")
    if isinstance(space, Space):
        return (f"the space {name} has no wire schema; {supported}. Describe its values with "
                "those (for example a Box, or a Dict or Tuple of them)")
    return f"{name} is not a Gymnasium space; {supported}"
