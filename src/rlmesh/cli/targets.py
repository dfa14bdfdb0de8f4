"""Turning a command-line target into what :class:`rlmesh.EnvServer` serves.

``rlmesh serve TARGET`` accepts, in this order:

* a registered Gymnasium env id (``CartPole-v1``, or ``ALE/Pong-v5`` once a module that
  registers it is imported with ``--import ale_py``): a factory calling ``gymnasium.make``;
* Gymnasium's own ``module:EnvId`` form (``ale_py:ALE/Pong-v5``): the module is imported
  and the id served, as ``gymnasium.make("ale_py:ALE/Pong-v5")`` does;
* ``module:Factory`` naming an ``rlmesh.EnvFactory`` (class or instance): the factory,
  its ``make()`` bound with ``--kwargs`` (validated before anything is built);
* ``module:callable`` naming a class or function: a factory calling it;
* ``module:instance`` naming an env: that env, shared by successive sessions.

The factories are module-level functions bound with :func:`functools.partial`, so they
re-import the modules that register ids in worker processes (``--workers``).
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import (
    find_highest_version,
    get_env_id,
    parse_env_id,
    registry,
)

from rlmesh.cli.imports import cwd_importable, import_attribute
from rlmesh.server.authored import HOOK, BoundFactory
from rlmesh.server.compat import import_old_gym, make_gym, wrap_gym_env, wrap_gym_factory
from rlmesh.server.sources import is_env_like
from rlmesh.wire.foreign import check_servable, qualified_name

__all__ = ["load_target", "parse_kwargs", "vectorized"]

_REGISTRARS = {"ALE": "ale_py"}
"""Modules known to register a namespace of ids, for the hint when none is registered."""


def parse_kwargs(text: str | None) -> dict[str, Any] | None:
    """Parse ``--kwargs``: a JSON object of keyword arguments (``None`` when absent).

    Raises:
        ValueError: If ``text`` is not valid JSON or not a JSON object.
    """
    if not text:
        return None
    return json_object(text, "--kwargs", """--kwargs '{"render_mode": "rgb_array"}'""")


def json_object(text: str, source: str, example: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object (``source`` and ``example`` word the errors).

    Raises:
        ValueError: If ``text`` is not valid JSON or not a JSON object.
    """
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc}); give a JSON object, for "
                         f"example {example}") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"{source} must be a JSON object, not {type(kwargs).__name__}")
    return kwargs


def load_target(
    target: str,
    kwargs: dict[str, Any] | None = None,
    *,
    imports: Sequence[str] = (),
    render_mode: str | None = None,
    max_episode_steps: int | None = None,
    compat: str | None = None,
) -> Any:
    """Resolve a command-line target into an env factory or an env instance.

    Args:
        target: ``ENV_ID``, ``module:ENV_ID``, ``module:callable`` or ``module:instance``
            (the attribute may be dotted).
        kwargs: Keyword arguments for ``gymnasium.make`` or the callable.
        imports: Modules to import first (importing them registers env ids).
        render_mode: For an id, passed to ``gymnasium.make``; for a callable, passed to it
            as the keyword argument ``render_mode``.
        max_episode_steps: For an id, passed to ``gymnasium.make``; for a callable, the env
            it returns is wrapped in ``gymnasium.wrappers.TimeLimit``.
        compat: ``"gym"``: the target is an env of the old ``gym`` package (an id made with
            its ``gym.make``, or a callable or instance), served through
            :class:`~rlmesh.server.oldgym.OldGymEnv` (``--compat gym``).

    Returns:
        A zero-argument factory (one env per session), or the env instance.

    Raises:
        ValueError: If a module does not import, the target names nothing servable, or an
            option cannot apply to it; the message says the way forward.
    """
    options = _options(kwargs, render_mode, max_episode_steps)
    cwd_importable()  # (a target in the current directory, as with python -m)
    modules = tuple(imports)
    for module in modules:
        _import(module, f"--import {module}")
    if compat is not None:
        return _old_gym_target(target, modules, options, kwargs, render_mode, max_episode_steps)
    if target in registry:
        return _id_factory(target, modules, options, max_episode_steps)
    return _module_target(target, modules, options, kwargs, render_mode, max_episode_steps)


def _options(kwargs: dict[str, Any] | None, render_mode: str | None,
             max_episode_steps: int | None) -> dict[str, Any]:
    """The keyword arguments an env is built with; refuses options given twice."""
    options = dict(kwargs or {})
    for name, value in (("render_mode", render_mode), ("max_episode_steps", max_episode_steps)):
        if value is not None and name in options:
            raise ValueError(f"{name} is given twice: in --kwargs and as "
                             f"--{name.replace('_', '-')}; keep one")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"--max-episode-steps must be >= 1, not {max_episode_steps}")
    if render_mode is not None:
        options["render_mode"] = render_mode
    return options


_MISSING: Any = object()


def _imported(target: str) -> tuple[str, str, Any]:
    """``module:attribute`` split, the module imported, and the attribute (``_MISSING``)."""
    module, _, attribute = target.partition(":")
    if not (module and attribute):
        raise ValueError(f"target {target!r} is not of the form module:callable or "
                         "module:ENV_ID")
    _import(module, target)
    try:
        return module, attribute, import_attribute(target, "target")
    except ValueError:
        return module, attribute, _MISSING


def _module_target(target: str, modules: tuple[str, ...], options: dict[str, Any],
                   kwargs: dict[str, Any] | None, render_mode: str | None,
                   max_episode_steps: int | None) -> Any:
    """Resolve ``module:attribute`` (or Gymnasium's ``module:ENV_ID``)."""
    if ":" not in target:
        raise ValueError(_unregistered(target, f"{target!r} is not a registered Gymnasium "
                                               "env id, nor module:callable"))
    module, attribute, obj = _imported(target)
    if obj is _MISSING:
        if attribute in registry:  # Gymnasium's module:EnvId form
            return _id_factory(attribute, (*modules, module), options, max_episode_steps)
        raise _no_attribute(module, attribute)
    if getattr(obj, HOOK, None) is not None:
        return _authored(obj, target, options, max_episode_steps)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "step")):
        return functools.partial(_make_with, obj, modules, options, max_episode_steps)
    return _instance(obj, target, kwargs, render_mode, max_episode_steps)


def _authored(obj: Any, target: str, options: dict[str, Any],
              max_episode_steps: int | None) -> BoundFactory:
    """An ``EnvFactory`` bound with ``options`` as its ``make()`` keywords."""
    if max_episode_steps is not None:
        raise ValueError(f"{target!r} is an rlmesh.EnvFactory: its make() decides how episodes "
                         "end, so --max-episode-steps cannot apply")
    return BoundFactory(obj, **options)


def _old_gym_target(target: str, modules: tuple[str, ...], options: dict[str, Any],
                    kwargs: dict[str, Any] | None, render_mode: str | None,
                    max_episode_steps: int | None) -> Any:
    """``--compat gym``: ``target`` resolved against the old ``gym`` package, then wrapped."""
    import_old_gym()  # a missing gym fails here, with the way to get it
    if max_episode_steps is not None:
        options = {**options, "max_episode_steps": max_episode_steps}
    if ":" not in target:
        return functools.partial(make_gym, target, modules, **options)
    module, attribute, obj = _imported(target)
    if obj is _MISSING:  # the old package's module:ENV_ID form
        return functools.partial(make_gym, attribute, (*modules, module), **options)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "step")):
        options.pop("max_episode_steps", None)
        factory = functools.partial(wrap_gym_factory, obj)
        return functools.partial(_make_with, factory, modules, options, max_episode_steps)
    return _instance(wrap_gym_env(obj), target, kwargs, render_mode, max_episode_steps)


def _no_attribute(module: str, attribute: str) -> ValueError:
    if all(part.isidentifier() for part in attribute.split(".")):
        return ValueError(f"{module!r} has no attribute {attribute!r} (nor is {attribute!r} "
                          "a registered env id)")
    return ValueError(_unregistered(attribute, f"no env id {attribute!r} is registered after "
                                               f"importing {module!r}", after_import=True))


def _instance(obj: Any, target: str, kwargs: dict[str, Any] | None, render_mode: str | None,
              max_episode_steps: int | None) -> Any:
    """``obj`` if it is an env instance no option was given for."""
    if not is_env_like(obj):
        check_servable(obj)
        raise ValueError(f"{target!r} is a {qualified_name(type(obj))}, not an env, an env "
                         "class or a function returning an env")
    for given, option in ((kwargs, "--kwargs"), (render_mode, "--render-mode"),
                          (max_episode_steps, "--max-episode-steps")):
        if given:
            raise ValueError(f"{target!r} is an env instance, built already, so {option} "
                             "cannot apply; name a class or function building the env "
                             "(module:callable) to have it built with options")
    return obj


def vectorized(target: Any, num_envs: int) -> Callable[[], Any]:
    """A factory of ``SyncVectorEnv``s of ``num_envs`` envs from ``target`` (``--num-envs``).

    The vector env carries its sub-envs' spec (with ``num_envs``), as
    ``gymnasium.make_vec`` records it, so clients and ``rlmesh eval`` see which env it is.

    Raises:
        ValueError: If ``target`` is an env instance rather than a factory.
    """
    if not callable(target) or hasattr(target, "step"):
        raise ValueError("--num-envs needs an env id or a factory, not an env instance")
    return functools.partial(_make_vector, target, num_envs)


def _make_vector(factory: Callable[[], Any], num_envs: int) -> Any:
    envs = gym.vector.SyncVectorEnv([factory] * num_envs)
    spec = getattr(envs.envs[0], "spec", None)
    if spec is not None:
        envs.spec = copy.deepcopy(spec)
        envs.spec.kwargs = {**spec.kwargs, "num_envs": num_envs, "vectorization_mode": "sync"}
    return envs


def _import(module: str, what: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import {module!r} for {what}: {exc}") from exc


def _id_factory(env_id: str, imports: tuple[str, ...], options: dict[str, Any],
                max_episode_steps: int | None) -> Callable[[], Any]:
    if max_episode_steps is not None:
        options = {**options, "max_episode_steps": max_episode_steps}
    return functools.partial(_make_registered, env_id, imports, options)


def _make_registered(env_id: str, imports: tuple[str, ...], options: dict[str, Any]) -> Any:
    """``gymnasium.make(env_id, **options)`` once ``imports`` have registered it."""
    for module in imports:
        importlib.import_module(module)
    return gym.make(env_id, **options)


def _make_with(factory: Callable[..., Any], imports: tuple[str, ...], options: dict[str, Any],
               max_episode_steps: int | None) -> Any:
    """``factory(**options)``, in a ``TimeLimit`` of ``max_episode_steps`` when given."""
    for module in imports:
        importlib.import_module(module)
    env = factory(**options)
    if max_episode_steps is None:
        return env
    if not isinstance(env, gym.Env):
        check_servable(env)  # a foreign env: say so rather than that it is not a gym.Env
        raise ValueError(f"--max-episode-steps wraps the env in gymnasium.wrappers.TimeLimit, "
                         f"which needs a gymnasium.Env, but {qualified_name(factory)} built a "
                         f"{qualified_name(type(env))}; derive the env from gymnasium.Env, or "
                         "end its episodes itself")
    return gym.wrappers.TimeLimit(env, max_episode_steps)


def _unregistered(env_id: str, problem: str, *, after_import: bool = False) -> str:
    """The message for an id nobody registered: Gymnasium's own hint and the way forward."""
    try:
        gym.spec(env_id)
        hint = ""
    except gym.error.Error as exc:
        hint = f" (Gymnasium: {exc})"
    try:
        namespace, name, version = parse_env_id(env_id)
    except gym.error.Error:
        namespace, name, version = None, env_id, None
    if version is None and (latest := find_highest_version(namespace, name)) is not None:
        hint = f" (did you mean {get_env_id(namespace, name, latest)!r}?)"
    if after_import:
        return f"{problem}{hint}; check the id, or name a class or function in the module"
    if namespace is not None and any(spec.namespace == namespace
                                     for spec in registry.values()):
        return f"{problem}{hint}; check the id"  # the namespace's package is imported
    module = _REGISTRARS.get(namespace or "", "MODULE")
    which = " (MODULE being that package)" if module == "MODULE" else ""
    return (f"{problem}{hint}. If a package registers it, import that first: rlmesh serve "
            f"{module}:{env_id}, or rlmesh serve {env_id} --import {module}{which}; or serve "
            "module:callable, a class or function building the env")
