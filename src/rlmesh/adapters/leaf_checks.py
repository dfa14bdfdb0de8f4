"""Checks shared by the model-side leaves (each raises AdapterSpecError with the field's name)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlmesh.adapters.env_tags import _check_dim, check_range
from rlmesh.errors import AdapterSpecError

__all__ = ["check_choice", "check_fit", "check_normalize", "check_number", "dtype_name",
           "optional_dim"]

_FITS = ("stretch", "crop", "pad")
_FIT_ERROR = "fit must be stretch, crop, pad or a preference sequence of them"


def dtype_name(value: Any, where: str) -> str:
    """The canonical NumPy name of a dtype."""
    try:
        return str(np.dtype(value).name)
    except TypeError as exc:
        raise AdapterSpecError(f"{where}: {value!r} is not a NumPy dtype") from exc


def optional_dim(value: Any, where: str, minimum: int = 0) -> int | None:
    """``None``, or an integer of at least ``minimum``."""
    return None if value is None else _check_dim(value, where, minimum=minimum)


def check_normalize(value: Any) -> bool | tuple[float, float]:
    """``True``, ``False`` or a ``(low, high)`` pair with ``low < high``."""
    if isinstance(value, bool):
        return value
    pair = check_range(value, "Image normalize")
    if pair is None or pair[0] == pair[1]:
        raise AdapterSpecError(f"Image normalize is True, False or a (low, high) pair with "
                               f"low < high, not {value!r}")
    return pair


def check_fit(value: Any) -> str | tuple[str, ...] | None:
    """``None``, one fit mode, or a non-empty preference tuple of them."""
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(
        value, Sequence) else ()
    if not names or any(name not in _FITS for name in names):
        raise AdapterSpecError(f"Image {_FIT_ERROR}, not {value!r}")
    return value if isinstance(value, str) else names


def check_number(value: Any, where: str) -> None:
    """``None`` or a finite number (not a bool)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise AdapterSpecError(f"{where} must be a finite number, not {value!r}")


def check_choice(value: Any, choices: tuple[Any, ...], where: str) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise AdapterSpecError(f"{where} must be one of {', '.join(map(str, choices))}, not "
                               f"{value!r}")
