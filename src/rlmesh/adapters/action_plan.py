"""The action side resolved: the model's action vector made into the env's.

Every env component is matched by role to a model component (or filled: an opaque one, or an
optional one no model emits); model components the env has no use for are dropped. Per
component, in a fixed order: the model's custom packing (``to_base``), the rotation
conversion, the range map, the model's then the env's ``scale``/``invert``/``threshold``,
the ``binary`` snap and the env's ``clip``; the env layout's ``clip`` bounds the whole vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from rlmesh.adapters.action import Action, Actuator
from rlmesh.adapters.advisory import Advisory, agreement
from rlmesh.adapters.env_index import uniform_range
from rlmesh.adapters.hostcode import load_callable
from rlmesh.adapters.model_leaves import CustomEncoding
from rlmesh.adapters.numeric import affine
from rlmesh.adapters.roles import fixed_width
from rlmesh.adapters.rotations import check_pair, convert
from rlmesh.errors import AdapterResolutionError

__all__ = ["ActionPlan", "plan_action"]

Step = Callable[[np.ndarray], np.ndarray]


def _convention(part: Actuator) -> list[Step]:
    """A side's literal transforms: scale, invert, threshold (in that order)."""
    steps: list[Step] = []
    if part.scale is not None:
        gain = part.scale
        steps.append(lambda v: v * gain)
    if part.invert:
        steps.append(lambda v: -v)
    if part.threshold is not None:
        shift = part.threshold
        steps.append(lambda v: v - shift)
    return steps


def _snap(value: np.ndarray) -> np.ndarray:
    """The binary decision: ``>= 0`` opens (``+1``), below closes (``-1``); never ``0``."""
    return np.where(value >= 0.0, 1.0, -1.0)


class ActionPlan:
    """A resolved action conversion: ``plan(model_action)`` gives the env's action."""

    def __init__(self, segments: list[tuple[slice, slice | None, list[Step], np.ndarray | None]],
                 model_dim: int, dtype: np.dtype[Any], clip: tuple[float, float] | None,
                 lines: list[str]) -> None:
        self._model_dim = model_dim
        self._dtype = dtype
        self._clip = clip
        self.lines = lines
        # Each segment fills its slice of one fresh env vector (no per-step concatenation).
        self._segments = [(target, where, tuple(steps), constant)
                          for target, where, steps, constant in segments]
        self._env_dim = segments[-1][0].stop if segments else 0

    def __call__(self, action: Any) -> np.ndarray:
        """The env action for one model action (see :class:`ActionPlan`)."""
        if isinstance(action, (dict, tuple)) or (
                not isinstance(action, np.ndarray) and hasattr(action, "keys")):
            raise TypeError(f"a model action is a flat array action of {self._model_dim} "
                            f"numbers, not {type(action).__qualname__}")
        flat = np.asarray(action, dtype=np.float64).ravel()
        if flat.size != self._model_dim:
            raise ValueError(f"the model's action must be a {self._model_dim}-dim vector "
                             f"(its spec's output), not {flat.size} numbers")
        out = np.empty(self._env_dim)
        for target, where, steps, constant in self._segments:
            if where is None:
                out[target] = constant
                continue
            value = flat[where]
            for step in steps:
                value = step(value)
            out[target] = value
        if self._clip is not None:
            np.clip(out, *self._clip, out=out)
        return out.astype(self._dtype)


def _rotation(env: Actuator, model: Actuator, where: str, trust: bool) -> tuple[list[Step], str]:
    if env.encoding is None and model.encoding is None:
        if env.dim != model.dim:
            raise AdapterResolutionError(f"{where}: the model emits {model.dim} dims, the env "
                                         f"takes {env.dim} dims")
        return [], ""
    if env.encoding is None or model.encoding is None:
        raise AdapterResolutionError(f"{where}: one side declares a rotation encoding and the "
                                     "other does not; declare it on both")
    steps: list[Step] = []
    source = model.encoding
    if isinstance(source, CustomEncoding):
        if source.to_base is None:
            raise AdapterResolutionError(f"{where}: CustomEncoding {source.name!r} on an action "
                                         "needs to_base")
        to_base = load_callable(source.to_base, trust=trust, where=where)
        steps.append(lambda v: np.asarray(to_base(v), dtype=np.float64).ravel())
        source = source.base
    assert isinstance(env.encoding, str)
    if source == env.encoding:
        return steps, ""
    check_pair(source, env.encoding)
    target = env.encoding
    steps.append(lambda v: convert(v, source, target))
    return steps, f" ({source}->{env.encoding})"


def _component(env: Actuator, model: Actuator, env_range: tuple[float, float] | None,
               where: str, trust: bool) -> tuple[list[Step], str]:
    if model.clip:
        raise AdapterResolutionError(f"{where}: clip is env-side only (a safety bound); remove "
                                     "it from the model's actuator")
    steps, note = _rotation(env, model, where, trust)
    if model.range is not None and env_range is not None and model.range != env_range:
        steps.append(affine(model.range, env_range))
        note += f" range{model.range}->{env_range}"
    steps += _convention(model) + _convention(env)
    if env.binary or model.binary:
        steps.append(_snap)
        note += " binary"
    if env.clip:
        if env_range is None:
            raise AdapterResolutionError(f"{where}: clip=True needs the env actuator's range")
        low, high = env_range
        steps.append(lambda v: np.minimum(np.maximum(v, low), high))
    return steps, note


def _geometry(env: Actuator, model: Actuator, where: str) -> list[Advisory]:
    """The frame and reference rules between an env and a model actuator.

    Agreement passes silently, a value only the model states passes with a caution, and two
    different values are an error.
    """
    notes = [agreement(where, f"emits {model.role!r}", name, getattr(model, name),
                       getattr(env, name)) for name in ("frame", "reference")]
    return [note for note in notes if note is not None]


def _geometry_note(env: Actuator, model: Actuator) -> str:
    """The explain() suffix of the agreed geometry: ``@frame``, ``~reference``."""
    frame, reference = model.frame or env.frame, model.reference or env.reference
    return (f"@{frame}" if frame else "") + (f"~{reference}" if reference else "")


def _model_offsets(model_action: Action) -> dict[str, tuple[int, Actuator]]:
    """Where each roled model component starts; a fixed-width role must have its width."""
    offsets, start = {}, 0
    for part in model_action.components:
        if part.role is not None:
            fixed = fixed_width(part.role)
            if fixed is not None and part.dim != fixed:
                raise AdapterResolutionError(
                    f"model action[{start}:{start + part.dim}]: role {part.role!r} is {fixed} "
                    f"wide, the model declares dim={part.dim}")
            offsets[part.role] = (start, part)
        start += part.dim
    return offsets


def plan_action(env_action: Action, space: spaces.Space[Any], model_action: Action, *,
                trust: bool = False) -> tuple[ActionPlan, list[Advisory]]:
    """Resolve the model's action layout into the env's.

    Raises:
        AdapterResolutionError: If an env component has no model counterpart (and is not
            optional), widths or encodings cannot be bridged, a model actuator clips, or the
            two sides name different frames or references.
    """
    assert isinstance(space, spaces.Box)
    offsets = _model_offsets(model_action)
    advisories: list[Advisory] = []
    segments: list[tuple[slice, slice | None, list[Step], np.ndarray | None]] = []
    lines, used, offset = [], set(), 0
    low, high = space.low.ravel(), space.high.ravel()
    for part in env_action.components:
        stop = offset + part.dim
        where = f"action[{offset}:{stop}]"
        found = offsets.get(part.role) if part.role is not None else None
        if found is None:
            if part.role is not None and not part.optional:
                raise AdapterResolutionError(
                    f"{where}: the env needs {part.role!r} and the model emits no such "
                    "component (mark the env actuator optional=True to fill it)")
            segments.append((slice(offset, stop), None, [],
                             np.full(part.dim, part.fill, dtype=np.float64)))
            lines.append(f"  env[{offset}:{stop}] <- fill({part.fill:g})")
        else:
            begin, model = found
            used.add(part.role)
            env_range = part.range or uniform_range(low[offset:stop], high[offset:stop])
            steps, note = _component(part, model, env_range, where, trust)
            advisories += _geometry(part, model, where)
            note += _geometry_note(part, model)
            segments.append((slice(offset, stop), slice(begin, begin + model.dim), steps, None))
            lines.append(f"  \"{part.role}\" env[{offset}:{stop}] <- model[{begin}:"
                         f"{begin + model.dim}]{note}")
        offset = stop
    advisories += [Advisory(f"action: the model's {role!r} has no env counterpart; dropped",
                            level="info", path=role) for role in offsets if role not in used]
    if env_action.clip is not None:
        lines.append(f"  clip {list(env_action.clip)}")
    return ActionPlan(segments, model_action.dim, space.dtype, env_action.clip,
                      lines), advisories
