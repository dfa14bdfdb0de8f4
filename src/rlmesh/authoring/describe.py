"""``rlmesh.describe``: the ``rlmesh.describe.v1`` envelope of an env factory or a model.

One self-contained JSON document: the ``target`` it describes, its ``params`` (the declared
``param_spec`` and the ``signature_tier`` of every keyword), its ``variants``, the
``runtime`` it was generated under and, for an env, the ``env_spec`` of one representative
env and its ``env_tags`` (for a model, its ``model_spec``). :func:`describe_json` is the
canonical text: keys sorted, no whitespace, non-ASCII kept, so the same input gives the same
bytes; :func:`describe` is that text parsed. What can be described: an ``EnvFactory``
(class or instance), a ``Model`` (class or instance), a registered env id, a function or
class building an env, or an env instance.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from rlmesh.authoring.binding import raw_make, signature_tier
from rlmesh.authoring.gather import (
    badge,
    catalog,
    env_spec,
    json_safe,
    runtime,
    tags_json,
    variations,
)
from rlmesh.authoring.params import ParamSpec
from rlmesh.evaluation.policy import Policy
from rlmesh.server.authored import HOOK
from rlmesh.server.shapes import is_env_like

__all__ = ["DESCRIBE_METADATA_KEY", "DESCRIBE_SCHEMA_VERSION", "describe", "describe_json"]

DESCRIBE_METADATA_KEY = "rlmesh.describe.v1"
"""The key that names the envelope's format (where it is carried in metadata or a label)."""

DESCRIBE_SCHEMA_VERSION = 1
"""The envelope's ``schema_version``; within it, fields are only ever added."""

_KINDS = ("env", "model")
_ARTICLE = {"env": "an", "model": "a"}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _target(obj: Any) -> dict[str, Any]:
    """Where the envelope points back to: ``module:qualname`` (importable: ``entrypoint``)."""
    if isinstance(obj, str):
        return {"entrypoint": obj, "qualname": obj}
    named = obj if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")) \
        else type(obj)
    module = getattr(named, "__module__", None) or "?"
    qualname = f"{module}:{getattr(named, '__qualname__', type(named).__qualname__)}"
    importable = module != "__main__" and "<" not in qualname
    return {"entrypoint": qualname if importable else None, "qualname": qualname}


def _kind_of(obj: Any) -> str:
    is_model = isinstance(obj, Policy) or (isinstance(obj, type) and issubclass(obj, Policy))
    if is_model:
        return "model"
    if isinstance(obj, str) or getattr(obj, HOOK, None) is not None or callable(obj) \
            or is_env_like(obj):
        return "env"
    raise TypeError(f"rlmesh.describe takes an EnvFactory, a Model, an env id, an env or a "
                    f"function building one, not {type(obj).__qualname__}")


def _params(spec: Any, func: Callable[..., Any] | None) -> dict[str, Any]:
    param_spec = spec.to_dict() if isinstance(spec, ParamSpec) else None
    return {"param_spec": json_safe(param_spec), "signature_tier": signature_tier(func)}


def _variants(cls: Any, spec: ParamSpec | None,
              make: Callable[..., Any] | None) -> dict[str, Any]:
    entries, error = catalog(getattr(cls, "enumerate_variants", None), spec, make)
    axes, axes_error = variations(getattr(cls, "enumerate_params", None), spec)
    out: dict[str, Any] = {"catalog": entries, "variations": axes}
    if error is not None:
        out["catalog_error"] = error
    if axes_error is not None:
        out["variations_error"] = axes_error
    return out


def _factory_env(obj: Any) -> dict[str, Any]:
    """The env fields of an ``EnvFactory`` (class or instance)."""
    cls: Any = obj if isinstance(obj, type) else type(obj)
    make, spec = raw_make(cls.make), cls.params
    fields = {"params": _params(spec, make), "variants": _variants(cls, spec, make),
              "env_tags": tags_json(cls.tags)}

    def build() -> Any:
        factory = cls() if isinstance(obj, type) else obj
        try:
            entries = fields["variants"]["catalog"] or []
            first: dict[str, Any] = next(
                (e["params"] for e in entries if "error" not in e), {})
            try:
                return factory.make(**first)
            except (TypeError, ValueError):
                if not first:
                    raise
                return factory.make()
        finally:
            if isinstance(obj, type):
                factory.close()

    fields["env_spec"] = env_spec(build)
    return fields


def _plain_env(obj: Any) -> dict[str, Any]:
    """The env fields of an env id, an env instance, or a function building an env."""
    if isinstance(obj, str):
        build: Callable[[], Any] = lambda: gym.make(obj)  # noqa: E731
        func = None
    elif is_env_like(obj) and not isinstance(obj, type):
        return {"params": _params(None, None), "variants": _variants(None, None, None),
                "env_tags": None, "env_spec": env_spec(lambda: obj, close=False)}
    else:
        build, func = obj, obj
    return {"params": _params(None, func), "variants": _variants(None, None, func),
            "env_tags": None, "env_spec": env_spec(build)}


def _model(obj: Any) -> dict[str, Any]:
    cls = obj if isinstance(obj, type) else type(obj)
    spec = getattr(obj, "spec", None)
    try:
        model_spec = None if spec is None else json_safe(
            spec.to_dict() if hasattr(spec, "to_dict") else dict(spec))
    except Exception as exc:
        model_spec = badge(exc)
    own_init = next((klass.__dict__["__init__"] for klass in cls.__mro__
                     if "__init__" in klass.__dict__), None)
    init = own_init if own_init is not None and not own_init.__module__.startswith(
        "rlmesh.") else None
    params = getattr(cls, "params", None)
    params = params if isinstance(params, ParamSpec) else None
    return {"model_spec": model_spec, "params": _params(params, init),
            "variants": _variants(cls, params, init)}


def _generated_at(value: str | datetime.datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError("generated_at needs a timezone (RFC 3339)")
        return value.isoformat().replace("+00:00", "Z")
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError(f"generated_at must be an RFC 3339 timestamp "
                         f"(2026-06-28T19:30:00Z), not {value!r}")
    return value


def describe_json(obj: Any, *, kind: str | None = None,
                  generated_at: str | datetime.datetime | None = None) -> str:
    """The canonical ``rlmesh.describe.v1`` text of ``obj`` (sorted keys, no whitespace).

    Args:
        obj: An ``EnvFactory`` or ``Model`` (class or instance), an env id, an env, or a
            function building one.
        kind: ``"env"`` or ``"model"`` to insist on one (default: told from ``obj``).
        generated_at: An RFC 3339 timestamp to record; omit it for an artifact that
            depends on its input only.

    Raises:
        ValueError: For a ``kind`` that is unknown or does not match, or a bad timestamp.
        TypeError: For an ``obj`` that is none of these.
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind must be 'env' or 'model', not {kind!r}")
    found = _kind_of(obj)
    if kind is not None and kind != found:
        raise ValueError(f"{_target(obj)['qualname']} is {_ARTICLE[found]} {found}, not "
                         f"{_ARTICLE[kind]} {kind}")
    envelope: dict[str, Any] = {"schema_version": DESCRIBE_SCHEMA_VERSION, "kind": found,
                                "target": _target(obj), "runtime": runtime()}
    stamp = _generated_at(generated_at)
    if stamp is not None:
        envelope["generated_at"] = stamp
    if found == "model":
        envelope.update(_model(obj))
    elif getattr(obj, HOOK, None) is not None:
        envelope.update(_factory_env(obj))
    else:
        envelope.update(_plain_env(obj))
    return json.dumps(json_safe(envelope), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def describe(obj: Any, *, kind: str | None = None,
             generated_at: str | datetime.datetime | None = None) -> dict[str, Any]:
    """The ``rlmesh.describe.v1`` envelope of ``obj``, parsed (see :func:`describe_json`)."""
    parsed: Mapping[str, Any] = json.loads(describe_json(obj, kind=kind,
                                                         generated_at=generated_at))
    return dict(parsed)
