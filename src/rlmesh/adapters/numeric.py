"""Numeric inputs resolved: a :class:`State` or :class:`Concat` against the env's features.

Each part becomes a small chain of array steps, fixed at resolve time: read the env leaf
(and its slice), convert the rotation, keep ``index`` or ``dim``, map ``range``, apply
``scale`` and ``offset``. The parts are concatenated, padded, cast, reshaped and handed over
as an array or a list. A role the env lacks is filled when the part is ``optional``, and is
an error otherwise; both outcomes are decided here, before the first step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlmesh.adapters.advisory import Advisory, agreement
from rlmesh.adapters.env_index import EnvIndex, StateFeature, read_path
from rlmesh.adapters.hostcode import check_inverse_pair, load_callable
from rlmesh.adapters.model_leaves import Concat, CustomEncoding, State
from rlmesh.adapters.roles import ROTATION_DIMS
from rlmesh.adapters.rotations import check_pair, convert
from rlmesh.errors import AdapterResolutionError

__all__ = ["NumericPlan", "affine", "plan_numeric", "read_numbers"]

Step = Callable[[np.ndarray], np.ndarray]


def read_numbers(observation: Any, feature: StateFeature) -> np.ndarray:
    """The feature's elements as a flat float64 array.

    Raises:
        ValueError: If the value is bytes (only image inputs decode bytes) or missing.
    """
    try:
        value = read_path(observation, feature.path)
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"the observation has no {feature.label!r} for role "
                         f"{feature.role!r}") from exc
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(f"{feature.label}: bytes values are only valid for image inputs")
    flat = np.asarray(value, dtype=np.float64).ravel()
    return flat if feature.stop is None else flat[feature.start:feature.stop]


def _slice(start: int, stop: int) -> Step:
    return lambda v: v[start:stop]


def affine(source: tuple[float, float], target: tuple[float, float]) -> Step:
    """The map taking ``source``'s range onto ``target``'s."""
    (a, b), (c, d) = source, target
    gain = (d - c) / (b - a) if b != a else 0.0
    return lambda v: (v - a) * gain + c


class NumericPlan:
    """A resolved numeric input: ``plan(observation)`` gives the model's value.

    Every part's place in the output is fixed here: a step reads each part and writes it
    into its slice of one fresh vector (zero padding included), cast once to the leaf's
    dtype.
    """

    def __init__(self, parts: list[tuple[StateFeature | None, list[Step], np.ndarray | None]],
                 leaf: State | Concat, width: int, text: str,
                 shim: Callable[[Any], Any] | None,
                 widths: list[int] | None = None) -> None:
        self._parts = parts
        self._dtype = np.dtype(leaf.dtype)
        self._pad = (leaf.pad_to or width) - width
        self._reshape = leaf.reshape
        self._list = leaf.container == "list"
        self._shim = shim
        self.width = width
        self.text = text
        self._places: list[tuple[slice, StateFeature | None, tuple[Step, ...],
                                 np.ndarray | None]] | None = None
        if widths is not None:
            offsets = np.cumsum([0, *widths]).tolist()
            self._places = [(slice(offsets[i], offsets[i + 1]), feature, tuple(steps), constant)
                            for i, (feature, steps, constant) in enumerate(parts)]

    def __call__(self, observation: Any) -> Any:
        """The model's value for one observation."""
        if self._shim is not None or self._places is None:
            return self._joined(observation)
        out = np.zeros(self.width + self._pad, dtype=self._dtype) if self._pad else \
            np.empty(self.width, dtype=self._dtype)
        for where, feature, steps, constant in self._places:
            if feature is None:
                out[where] = constant
                continue
            value = read_numbers(observation, feature)
            for step in steps:
                value = step(value)
            out[where] = value
        if self._reshape is not None:
            out = out.reshape(self._reshape)
        return out.tolist() if self._list else out

    def _joined(self, observation: Any) -> Any:
        pieces: list[Any] = []
        for feature, steps, constant in self._parts:
            if feature is None:
                pieces.append(constant)
                continue
            value = read_numbers(observation, feature)
            for step in steps:
                value = step(value)
            pieces.append(value)
        out: np.ndarray = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        if self._shim is not None:
            return self._apply_shim(out)
        if self._pad:
            out = np.concatenate([out, np.zeros(self._pad)])
        out = out.astype(self._dtype, copy=False)
        if self._reshape is not None:
            out = out.reshape(self._reshape)
        return out.tolist() if self._list else out

    def _apply_shim(self, value: np.ndarray) -> np.ndarray:
        assert self._shim is not None
        out = np.asarray(self._shim(value))
        if out.shape != (self.width,):
            raise ValueError(f"a CustomEncoding from_base must return a flat width-"
                             f"{self.width} vector, not shape {out.shape}")
        return out.astype(self._dtype, copy=False)


def _wanted(encoding: Any) -> tuple[str, ...] | None:
    if encoding is None:
        return None
    if isinstance(encoding, CustomEncoding):
        return (encoding.base,)
    return (encoding,) if isinstance(encoding, str) else tuple(encoding)


def _rotation_steps(part: State, feature: StateFeature, where: str) -> tuple[list[Step], int,
                                                                             str]:
    wanted = _wanted(part.encoding)
    if wanted is None:
        return [], feature.width, ""
    for name in wanted:
        if name not in ROTATION_DIMS:
            raise AdapterResolutionError(f"{where}: unknown rotation encoding {name!r}")
    if feature.encoding is None:
        raise AdapterResolutionError(
            f"{where}: role {part.role!r} wants encoding {wanted[0]!r}, but the env declares no "
            f"rotation encoding for {feature.label}")
    native = feature.encoding[0]
    if native in wanted:
        return [], feature.width, ""
    target = wanted[0]
    check_pair(native, target)
    return ([lambda v: convert(v, native, target)], ROTATION_DIMS[target],
            f" ({native}->{target})")


def _plan_part(part: State, feature: StateFeature, where: str,
               advisories: list[Advisory]) -> tuple[list[Step], int, str]:
    steps, width, note = _rotation_steps(part, feature, where)
    if part.index is not None:
        if part.index >= width:
            raise AdapterResolutionError(f"{where}: index {part.index} is past the {width} "
                                         f"elements of {feature.label}")
        steps.append(_slice(part.index, part.index + 1))
        width, note = 1, f"{note}[{part.index}]"
    elif part.dim is not None:
        if part.dim > width:
            raise AdapterResolutionError(f"{where}: dim {part.dim} is more than the {width} "
                                         f"elements {feature.label} has")
        steps.append(_slice(0, part.dim))
        width = part.dim
    if part.range is not None and feature.range is not None and part.range != feature.range:
        steps.append(affine(feature.range, part.range))
        note += f" range{feature.range}->{part.range}"
    if part.range is not None and part.scale is not None:
        advisories.append(Advisory(f"{where}: both range and scale rescale {part.role!r}",
                                   level="info", path=where))
    if part.scale is not None or part.offset is not None:
        gain, shift = part.scale if part.scale is not None else 1.0, part.offset or 0.0
        steps.append(lambda v: v * gain + shift)
        note += f" *{gain:g}+{shift:g}"
    caution = agreement(where, f"reads {part.role!r}", "frame", part.frame, feature.frame)
    if caution is not None:
        advisories.append(caution)
    frame = part.frame or feature.frame
    return steps, width, note + (f"@{frame}" if frame else "")


def _absent_width(part: State, where: str) -> int:
    if part.index is not None:
        return 1
    if part.dim is not None:
        return part.dim
    wanted = _wanted(part.encoding)
    if wanted and wanted[0] in ROTATION_DIMS:
        return ROTATION_DIMS[wanted[0]]
    raise AdapterResolutionError(f"{where}: the env has no {part.role!r} and the zero fill's "
                                 "width is unknown; set index=, dim= or encoding=")


def _shim(leaf: State | Concat, where: str, trust: bool,
          check: bool) -> Callable[[Any], Any] | None:
    """The observation-side repack of a :class:`CustomEncoding`, after its checks."""
    customs = [p for p in leaf.parts if isinstance(p.encoding, CustomEncoding)]
    if not customs:
        return None
    if len(leaf.parts) > 1:
        raise AdapterResolutionError(f"{where}: a CustomEncoding must be the sole part of its "
                                     "State (a field inside a longer vector has no fixed offset)")
    if leaf.pad_to is not None or leaf.reshape is not None:
        raise AdapterResolutionError(f"{where}: a CustomEncoding State takes no pad_to/reshape")
    if leaf.container != "array":
        raise AdapterResolutionError(f"{where}: a CustomEncoding State needs container='array'")
    encoding = customs[0].encoding
    assert isinstance(encoding, CustomEncoding)
    if encoding.from_base is None:
        raise AdapterResolutionError(f"{where}: CustomEncoding {encoding.name!r} on an "
                                     "observation needs from_base")
    from_base = load_callable(encoding.from_base, trust=trust, where=where)
    if check and encoding.to_base is not None:
        to_base = load_callable(encoding.to_base, trust=trust, where=where)
        check_inverse_pair(encoding, from_base, to_base, where)
    return from_base


def plan_numeric(leaf: State | Concat, index: EnvIndex, where: str, *, trust: bool = False,
                 check_inverse: bool = True) -> tuple[NumericPlan, list[Advisory]]:
    """Resolve a numeric input against the env's features.

    Raises:
        AdapterResolutionError: If a required role is missing, an encoding cannot be
            converted, a width does not fit, or ``pad_to``/``reshape`` cannot hold the result.
    """
    advisories: list[Advisory] = []
    parts: list[tuple[StateFeature | None, list[Step], np.ndarray | None]] = []
    texts, width, widths = [], 0, []
    for part in leaf.parts:
        feature = index.states.get(part.role)
        if feature is None:
            if not part.optional:
                offered = ", ".join(sorted(index.states)) or "none"
                raise AdapterResolutionError(
                    f"{where}: the env has no {part.role!r} (it offers: {offered}); mark the "
                    "part optional=True to zero fill")
            size = _absent_width(part, where)
            parts.append((None, [], np.full(size, part.fill, dtype=np.float64)))
            texts.append(f"zeros({size})" if part.fill == 0 else f"fill({part.fill:g}x{size})")
            advisories.append(Advisory(f"{where}: {part.role!r} is absent from the env; "
                                       f"zero-filled ({size})", level="warn", path=where))
            width += size
            widths.append(size)
            continue
        steps, size, note = _plan_part(part, feature, where, advisories)
        parts.append((feature, steps, None))
        texts.append(f"{feature.label}{note}")
        width += size
        widths.append(size)
    _check_shape(leaf, width, where)
    shim = _shim(leaf, where, trust, check_inverse)
    text = texts[0] if len(texts) == 1 and isinstance(leaf, State) else \
        f"concat({', '.join(texts)})"
    if leaf.pad_to is not None and leaf.pad_to > width:
        text += f" pad_to({leaf.pad_to})"
    return NumericPlan(parts, leaf, width, text, shim, widths), advisories


def _check_shape(leaf: State | Concat, width: int, where: str) -> None:
    if leaf.pad_to is not None and leaf.pad_to < width:
        raise AdapterResolutionError(f"{where}: the parts are {width} wide, longer than "
                                     f"pad_to={leaf.pad_to}")
    if leaf.reshape is not None:
        try:
            np.empty(max(width, leaf.pad_to or 0)).reshape(leaf.reshape)
        except ValueError as exc:
            raise AdapterResolutionError(f"{where}: cannot reshape {width} elements to "
                                         f"{leaf.reshape}") from exc
