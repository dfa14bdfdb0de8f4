"""Binding keyword arguments to ``make()``: the signature floor under a :class:`ParamSpec`.

Two tiers check a binding before anything is built. Every keyword of ``make()`` is
presented from its signature, and the four scalar annotations (``int``, ``float``, ``str``,
``bool``) are checked (the **floor**); a declared :class:`~rlmesh.authoring.params.Param`
adds a domain (the **ceiling**). A keyword without a signature default is required.
:func:`resolve` applies both; with no ``ParamSpec`` at all the binding passes through
untouched.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from rlmesh.authoring.params import SCALAR_TYPES, ParamSpec, coerce_scalar
from rlmesh.errors import MissingParamError, UnknownParamError

__all__ = ["Surface", "annotation_name", "json_default", "raw_make", "resolve", "signature_tier",
           "uncovered", "wrap_make"]

_KEYWORDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_RAW = "__rlmesh_raw_make__"


def wrap_make(checked: Callable[..., Any], make: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``checked`` as the validating wrapper of the author's ``make``."""
    setattr(checked, _RAW, make)
    return checked


def raw_make(make: Any) -> Callable[..., Any] | None:
    """The ``make`` an ``EnvFactory`` author wrote, under its wrapper; ``None`` if not one."""
    raw: Callable[..., Any] | None = getattr(make, _RAW, None)
    return raw


class Surface:
    """The keyword surface of a callable: its named keywords and whether it takes ``**kw``.

    Args:
        func: The callable (a bound method, a function or a class); ``None`` for none.
    """

    def __init__(self, func: Callable[..., Any] | None) -> None:
        self.keywords: dict[str, inspect.Parameter] = {}
        self.var_keyword = func is None
        if func is None:
            return
        try:
            parameters = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):  # no signature to read: accept anything
            self.var_keyword = True
            return
        for parameter in parameters:
            if parameter.kind in _KEYWORDS and parameter.name != "self":
                self.keywords[parameter.name] = parameter
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                self.var_keyword = True

    def required(self, name: str) -> bool:
        """Whether keyword ``name`` has no default."""
        parameter = self.keywords.get(name)
        return parameter is not None and parameter.default is inspect.Parameter.empty


def annotation_name(parameter: inspect.Parameter) -> str | None:
    """A parameter's annotation as text (``None`` when it has none)."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        return annotation.strip()
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def json_default(value: Any) -> Any:
    """A signature default as JSON: plain values as they are, anything else as its ``repr``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [json_default(item) for item in value]
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return {key: json_default(item) for key, item in value.items()}
    return repr(value)


def signature_tier(func: Callable[..., Any] | None) -> list[dict[str, Any]]:
    """Every keyword of ``func``: ``name``, ``type``, ``required`` and (if any) ``default``."""
    tier = []
    for name, parameter in Surface(func).keywords.items():
        entry: dict[str, Any] = {"name": name, "type": annotation_name(parameter),
                                 "required": parameter.default is inspect.Parameter.empty}
        if not entry["required"]:
            entry["default"] = json_default(parameter.default)
        tier.append(entry)
    return tier


def _floor(name: str, parameter: inspect.Parameter, value: Any) -> Any:
    """``value`` checked against a scalar annotation of ``make()`` (others pass through)."""
    kind = annotation_name(parameter)
    if kind in SCALAR_TYPES:
        return coerce_scalar(name, kind, value)
    return value


def resolve(spec: ParamSpec | None, func: Callable[..., Any] | None,
            kwargs: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate ``kwargs`` for ``func`` under ``spec``; the binding to call it with.

    Args:
        spec: The declared parameters; ``None`` passes ``kwargs`` through unchecked.
        func: The callable the binding is for (its signature is the floor).
        kwargs: The binding.
        partial: Check only what is given (a variant's identity params): no
            :class:`~rlmesh.errors.MissingParamError`.

    Returns:
        The binding with declared values coerced (a Vector's list as a tuple).

    Raises:
        UnknownParamError: For keys neither declared nor keywords of ``func``, unless
            ``spec.extra`` is ``"passthrough"`` and ``func`` takes ``**kwargs``.
        MissingParamError: For a keyword of ``func`` without a default that is not given.
        ParamError: For a value that fails its type or choices.
    """
    if spec is None:
        return dict(kwargs)
    surface = Surface(func)
    bound: dict[str, Any] = {}
    unknown = []
    for name, value in kwargs.items():
        param = spec.get(name)
        if param is not None:
            bound[name] = param.coerce(value)
        elif name in surface.keywords:
            bound[name] = _floor(name, surface.keywords[name], value)
        elif spec.extra == "passthrough" and surface.var_keyword:
            bound[name] = value
        else:
            unknown.append(name)
    if unknown:
        raise UnknownParamError(unknown, _unknown_message(unknown, spec, surface))
    if not partial:
        for name in surface.keywords:
            if name not in bound and surface.required(name):
                raise MissingParamError(name)
    return bound


def _unknown_message(unknown: list[str], spec: ParamSpec, surface: Surface) -> str:
    known = sorted({*spec.names, *surface.keywords})
    names = ", ".join(map(repr, sorted(unknown)))
    why = ""
    if spec.extra == "passthrough" and not surface.var_keyword:
        why = " (extra='passthrough' needs **kwargs on make() to forward them to)"
    return (f"unknown parameter{'s' if len(unknown) > 1 else ''} {names}{why}; known: "
            f"{', '.join(known) or 'none'}")


def uncovered(spec: ParamSpec | None, func: Callable[..., Any] | None) -> list[str]:
    """Declared names that are no keyword of ``func``, which takes no ``**kwargs`` either."""
    if spec is None:
        return []
    surface = Surface(func)
    if surface.var_keyword:
        return []
    return [name for name in spec.names if name not in surface.keywords]
