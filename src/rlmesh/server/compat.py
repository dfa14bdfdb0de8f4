"""``compat="gym"``: serving envs of the old ``gym`` package, by id, factory or instance.

``EnvServer(env, compat="gym")`` and ``rlmesh serve TARGET --compat gym`` take what they
take without it (an env id, a factory, an env instance), but build and wrap it the old way:
an id is made with the old package's ``gym.make``, and every env is wrapped in
:class:`~rlmesh.server.oldgym.OldGymEnv`. The factories are module-level functions bound with
:func:`functools.partial`, so that worker processes (``workers=``) can rebuild them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import gymnasium

from rlmesh.errors import CompatError
from rlmesh.server.oldgym import OldGymEnv, gym_release
from rlmesh.server.seam import Source
from rlmesh.server.shapes import is_env_like

__all__ = ["COMPAT_MODES", "import_old_gym", "make_gym", "with_compat", "wrap_gym_env",
           "wrap_gym_factory"]

COMPAT_MODES = ("gym",)
"""The values ``compat=`` (``--compat``) accepts besides ``None``."""

_INSTALL = ("rlmesh serve ENV_ID --compat gym --with gym==0.26.2 --with 'numpy<2' (an isolated "
            "stack of its own), or install gym==0.26.2 and numpy<2 beside rlmesh's server side")


def import_old_gym() -> ModuleType:
    """The old ``gym`` package.

    Raises:
        CompatError: If it is not installed here; the message says how to get it.
    """
    try:
        return importlib.import_module("gym")
    except ImportError as exc:
        raise CompatError(
            "--compat gym needs the old gym package in the server's environment, and it is "
            f"not installed ({exc}); serve it from a stack that has it: {_INSTALL}") from exc


def wrap_gym_env(env: Any, *, render_mode: str | None = None) -> Any:
    """``env`` as a Gymnasium env: an old ``gym`` env wrapped, a Gymnasium one as it is."""
    if isinstance(env, (gymnasium.Env, OldGymEnv)):
        return env
    if not is_env_like(env):
        raise TypeError(f"compat='gym' serves envs of the old gym package, not "
                        f"{type(env).__qualname__}")
    version = getattr(import_old_gym(), "__version__", None)
    return OldGymEnv(env, gym_version=version, render_mode=render_mode)


def make_gym(env_id: str, imports: Sequence[str] = (), **kwargs: Any) -> Any:
    """``gym.make(env_id, **kwargs)`` of the old package, as a Gymnasium env.

    Args:
        env_id: An id registered with the old package (``CartPole-v1``).
        imports: Modules to import first (they register ids).
        **kwargs: For ``gym.make``. Before gym 0.26, ``render_mode`` is kept for
            ``render()`` instead (those releases take the mode there), and
            ``max_episode_steps`` is a Gymnasium ``TimeLimit`` around the converted env.

    Raises:
        CompatError: If the old ``gym`` package is not installed.
    """
    gym = import_old_gym()
    for module in imports:
        importlib.import_module(module)
    version = str(getattr(gym, "__version__", "0"))
    if gym_release(version) >= (0, 26):
        return OldGymEnv(gym.make(env_id, **kwargs), gym_version=version)
    render_mode = kwargs.pop("render_mode", None)
    steps = kwargs.pop("max_episode_steps", None)  # not a gym.make option before 0.26
    env = OldGymEnv(gym.make(env_id, **kwargs), gym_version=version, render_mode=render_mode)
    return env if steps is None else gymnasium.wrappers.TimeLimit(env, int(steps))


def wrap_gym_factory(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, **kwargs)``, an old ``gym`` env, as a Gymnasium env."""
    return wrap_gym_env(factory(*args, **kwargs))


def with_compat(env: Any, compat: str | None) -> Any:
    """What ``EnvServer(env, compat=compat)`` serves in place of ``env``.

    Args:
        env: An env id, a zero-argument factory or an env instance of the old package.
        compat: ``None`` (``env`` unchanged) or ``"gym"``.

    Raises:
        ValueError: For an unknown ``compat``.
        TypeError: For a source (a model, for instance): there is no old env to wrap.
        CompatError: For an id or instance while the old ``gym`` package is missing.
    """
    if compat is None:
        return env
    if compat not in COMPAT_MODES:
        raise ValueError(f"compat must be one of {', '.join(COMPAT_MODES)} or None, not "
                         f"{compat!r}")
    if isinstance(env, Source):
        raise TypeError(f"compat={compat!r} wraps an old env, not a {type(env).__qualname__}")
    if isinstance(env, str):
        import_old_gym()  # fail now, in the caller, rather than in the first session
        return functools.partial(make_gym, env)
    if is_env_like(env) and not isinstance(env, type):
        return wrap_gym_env(env)
    if callable(env):
        return functools.partial(wrap_gym_factory, env)
    raise TypeError(f"compat={compat!r} needs an env id, a factory or an env of the old gym "
                    f"package, not {type(env).__qualname__}")
