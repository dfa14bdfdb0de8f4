"""The JAX backend: remote envs and models with ``jax.Array`` values.

Example::

    from rlmesh.jax import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)          # a jax.Array on the default device

Observations are placed on ``device`` (default: JAX's default device) with
``jax.device_put``; arrays JAX cannot hold (strings, for instance) stay numpy. Actions may be
JAX arrays, numpy arrays or Python values. Needs JAX: the ``jax`` extra (see
``docs/install.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import jax
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    from rlmesh.extras import missing_extra

    raise missing_extra("rlmesh.jax", "JAX", "jax") from exc

from rlmesh.backends.make import make_backend, make_remote_model
from rlmesh.spaces import space_from_spec

__all__ = ["Model", "RemoteEnv", "RemoteModel", "RemoteVectorEnv", "from_jax", "space_from_spec",
           "to_jax"]


def to_jax(array: np.ndarray[Any, Any], device: Any = None) -> Any:
    """``array`` on ``device`` (default: JAX's default device); strings stay numpy."""
    if array.dtype.kind in "SUOV":
        return array
    return jax.device_put(array, device)


def from_jax(value: Any) -> Any:
    """``value`` as numpy if it is a JAX array."""
    if isinstance(value, jax.Array):
        return np.asarray(value)
    return value


RemoteEnv, RemoteVectorEnv, Model = make_backend("jax", to_jax, from_jax)
RemoteModel = make_remote_model("jax", to_jax, from_jax)
