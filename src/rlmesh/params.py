"""Declared construction parameters of an env factory: ``rlmesh.params``.

``Param``, ``ParamSpec`` and ``Vector`` declare what ``EnvFactory.make()`` takes; a bad
binding raises a :class:`ParamError` (a ``ValueError``) before anything is built:
:class:`MissingParamError` for a required parameter not given, :class:`UnknownParamError`
for a key nobody declared. ``PARAM_METADATA_KEY`` is the ``env.metadata`` key under which
``make()`` records the validated binding. See ``docs/authoring.md``.
"""

from __future__ import annotations

from rlmesh.authoring.params import PARAM_METADATA_KEY, Param, ParamSpec, Vector
from rlmesh.errors import MissingParamError, ParamError, UnknownParamError

__all__ = [
    "PARAM_METADATA_KEY",
    "MissingParamError",
    "Param",
    "ParamError",
    "ParamSpec",
    "UnknownParamError",
    "Vector",
]
