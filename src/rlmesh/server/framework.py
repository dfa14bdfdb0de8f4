"""``EnvServer(framework=, device=)``: actions handed to the env as torch or JAX arrays.

Actions travel as numpy values and are checked against the action space as such; an env
whose ``step`` needs a framework's arrays (one calling ``action.to(...)``, say) is served
with ``framework="torch"`` or ``"jax"``, and every array inside an action is converted just
before ``step`` (on ``device`` when one is given). Observations need no declaration: the
wire encodes a served env's torch and JAX values either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlmesh.extras import missing_extra
from rlmesh.values import map_leaves

__all__ = ["FRAMEWORKS", "ActionConverter", "action_converter"]

FRAMEWORKS = ("numpy", "torch", "jax")
ActionConverter = Callable[[Any], Any]


def action_converter(framework: str | None, device: Any = None) -> ActionConverter | None:
    """The conversion of actions for an env served with ``framework`` (``None``: none).

    Raises:
        ValueError: If ``framework`` is unknown, or ``device`` is given without a framework
            that has devices (torch or JAX).
        MissingExtraError: If the framework is not installed.
    """
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(map(repr, FRAMEWORKS))} "
                         f"(or None), not {framework!r}")
    if device is not None and framework not in ("torch", "jax"):
        raise ValueError(f"device={device!r} needs framework='torch' or 'jax': numpy actions "
                         "(the default) have no device")
    if framework == "torch":
        put = _torch_put(device)
    elif framework == "jax":
        put = _jax_put(device)
    else:
        return None

    def leaf(value: Any) -> Any:
        if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "biuf":
            return put(np.asarray(value))
        return value

    return lambda action: map_leaves(action, leaf, into_graphs=False)


def _torch_put(device: Any) -> ActionConverter:
    try:
        import torch
    except ImportError as exc:
        raise missing_extra("EnvServer(framework='torch')", "PyTorch", "torch") from exc
    return lambda array: torch.as_tensor(array, device=device)


def _jax_put(device: Any) -> ActionConverter:
    try:
        import jax
    except ImportError as exc:
        raise missing_extra("EnvServer(framework='jax')", "JAX", "jax") from exc
    return lambda array: jax.device_put(array, device)
