"""``python -m rlmesh.serve``: the lazy entrypoint a container runs, configured by env vars.

``TARGET`` (or ``--env TARGET``) is ``module:attr`` naming an ``rlmesh.EnvFactory`` (class
or instance), a ``Model`` (class or instance), a function or class building an env, or an
env instance; or a registered Gymnasium env id. Flags win over the variables:

* ``RLMESH_ADDRESS`` (``--address``): where to listen; default ``127.0.0.1:50051``
  (loopback, as everywhere in rlmesh): a container needs ``0.0.0.0:50051``, and a token
  (``RLMESH_TOKEN``) to be served beyond its host safely;
* ``RLMESH_MAKE_KWARGS`` (``--kwargs-json``): a JSON object, ``make()``'s keywords (a
  model class's constructor keywords), validated before anything is built;
* ``RLMESH_NUM_ENVS``: serve a Gymnasium vector env of that many envs;
* ``RLMESH_VECTORIZATION_MODE``: ``sync`` (the default) or ``async`` for that vector env;
* ``RLMESH_FRAMEWORK`` (``--framework``): ``numpy``, ``torch`` or ``jax`` actions (an
  ``EnvFactory`` of ``rlmesh.torch``/``rlmesh.jax`` says so itself);
* ``RLMESH_DEVICE`` (``--device``): where torch/JAX actions go (``cuda:0``).

It serves until SIGTERM or SIGINT and exits 0; a bad target, JSON, count or parameter
exits 2 with one line saying what is wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from rlmesh.authoring.binding import resolve
from rlmesh.authoring.factory import vector_factory
from rlmesh.cli.imports import import_attribute
from rlmesh.cli.targets import json_object, load_target
from rlmesh.models.model import Model
from rlmesh.server.authored import HOOK
from rlmesh.server.server import EnvServer, stop_on_signals

__all__ = ["DEFAULT_ADDRESS", "Plan", "main", "plan", "prepare"]

DEFAULT_ADDRESS = "127.0.0.1:50051"
"""Loopback, as everywhere in rlmesh; a container sets ``RLMESH_ADDRESS=0.0.0.0:50051``."""

_FRAMEWORKS = ("numpy", "torch", "jax")
_SERVING_KEYS = ("num_envs", "vectorization_mode")


@dataclasses.dataclass
class Plan:
    """What to serve where, read from the flags and the environment."""

    target: str
    address: str
    kwargs: dict[str, Any]
    num_envs: int
    mode: str | None
    framework: str | None
    device: str | None


def _kwargs(text: str | None, source: str) -> dict[str, Any]:
    if not text:
        return {}
    kwargs = json_object(text, source, """'{"task_id": 3}'""")
    serving = sorted(set(kwargs) & set(_SERVING_KEYS))
    if serving:
        raise ValueError(f"{', '.join(serving)} in {source} control serving, not the env: "
                         "set RLMESH_NUM_ENVS / RLMESH_VECTORIZATION_MODE instead")
    return kwargs


def _num_envs(text: str | None) -> int:
    if text is None or not text.strip():
        return 1
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"RLMESH_NUM_ENVS must be an integer >= 1, not {text!r}") from None
    if value < 1:
        raise ValueError(f"RLMESH_NUM_ENVS must be >= 1, not {value}")
    return value


def plan(args: argparse.Namespace, environ: Mapping[str, str]) -> Plan:
    """Combine the flags and the environment into a :class:`Plan`.

    Raises:
        ValueError: For a missing or doubled target, bad JSON, a bad count, mode or
            framework.
    """
    if args.target and args.env and args.target != args.env:
        raise ValueError(f"two targets: {args.target!r} and --env {args.env!r}; give one")
    target = args.target or args.env
    if not target:
        raise ValueError("no target: python -m rlmesh.serve module:Factory (or an env id)")
    source = "--kwargs-json" if args.kwargs_json else "RLMESH_MAKE_KWARGS"
    kwargs = _kwargs(args.kwargs_json or environ.get("RLMESH_MAKE_KWARGS"), source)
    mode = environ.get("RLMESH_VECTORIZATION_MODE") or None
    if mode not in (None, "sync", "async"):
        raise ValueError(f"RLMESH_VECTORIZATION_MODE must be sync or async, not {mode!r}")
    framework = args.framework or environ.get("RLMESH_FRAMEWORK") or None
    if framework not in (None, *_FRAMEWORKS):
        raise ValueError(f"the framework must be one of {', '.join(_FRAMEWORKS)}, not "
                         f"{framework!r}")
    device = args.device or environ.get("RLMESH_DEVICE") or None
    if framework in (None, "numpy"):
        device = None  # (numpy actions live on the CPU: a device changes nothing)
    return Plan(target=target, address=args.address or environ.get("RLMESH_ADDRESS")
                or DEFAULT_ADDRESS, kwargs=kwargs,
                num_envs=_num_envs(environ.get("RLMESH_NUM_ENVS")), mode=mode,
                framework=None if framework == "numpy" else framework, device=device)


def _resolve(target: str) -> Any:
    """The object ``module:attr`` names, or ``None`` for an env id (or Gymnasium's forms)."""
    if target in gym.registry or ":" not in target:
        return None
    try:
        return import_attribute(target, "TARGET")
    except ValueError:
        if target.partition(":")[2] in gym.registry:  # Gymnasium's module:EnvId
            return None
        raise


def _model(obj: Any, run: Plan) -> Any:
    """A model to serve: a class built with the keywords (validated), or the instance."""
    if run.num_envs > 1 or run.mode is not None:
        raise ValueError("RLMESH_NUM_ENVS and RLMESH_VECTORIZATION_MODE apply to envs, not "
                         "to a model")
    if not isinstance(obj, type):
        if run.kwargs:
            raise ValueError(f"{run.target!r} is a model instance, built already: "
                             "RLMESH_MAKE_KWARGS cannot apply")
        return obj
    params = getattr(obj, "params", None)
    if params is not None:
        run.kwargs = resolve(params, obj, run.kwargs)
    return obj(**run.kwargs)


def prepare(run: Plan) -> Any:
    """Build what :func:`main` serves: a server, or a model / factory to ``serve()``.

    Raises:
        ValueError: For a target that is not servable or keywords that do not fit it.
    """
    obj = _resolve(run.target)
    if obj is not None and getattr(obj, HOOK, None) is not None:
        factory = obj() if isinstance(obj, type) else obj
        run.kwargs = factory.resolve_params(**run.kwargs)  # fails before anything is built
        return factory
    if isinstance(obj, Model) or (isinstance(obj, type) and issubclass(obj, Model)):
        return _model(obj, run)
    target = load_target(run.target, run.kwargs or None)
    if run.num_envs > 1 or run.mode is not None:
        if not callable(target) or hasattr(target, "step"):
            raise ValueError("RLMESH_NUM_ENVS needs an env id or a factory, not an env "
                             "instance")
        target = vector_factory(target, run.num_envs, run.mode)
    return EnvServer(target, run.address, framework=run.framework, device=run.device)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rlmesh.serve", description="Serve an EnvFactory, env or model "
        "until SIGTERM; configured by RLMESH_* environment variables (flags win).")
    parser.add_argument("target", nargs="?", metavar="TARGET",
                        help="module:attr (an EnvFactory, Model, env factory or env) or an "
                             "env id")
    parser.add_argument("--env", metavar="TARGET", help="the same as TARGET")
    parser.add_argument("--address", help=f"where to listen (RLMESH_ADDRESS; default "
                                          f"{DEFAULT_ADDRESS})")
    parser.add_argument("--kwargs-json", metavar="JSON",
                        help="make()'s keywords as a JSON object (RLMESH_MAKE_KWARGS)")
    parser.add_argument("--framework", help="numpy, torch or jax (RLMESH_FRAMEWORK)")
    parser.add_argument("--device", help="torch/JAX action device (RLMESH_DEVICE)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 0 then, 2 for a target or setting that does not work."""
    args = _parser().parse_args(argv)
    try:
        run = plan(args, os.environ)
        served = prepare(run)
    except (ValueError, TypeError) as exc:
        print(f"rlmesh.serve: error: {exc}", file=sys.stderr)
        return 2
    stop_on_signals()
    if isinstance(served, EnvServer):
        served.serve()
    elif isinstance(served, Model):
        served.serve(run.address)
    else:
        served.serve(run.address, num_envs=run.num_envs, vectorization_mode=run.mode,
                     framework=run.framework, device=run.device, **run.kwargs)
    return 0
