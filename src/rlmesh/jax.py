"""The JAX backend: remote envs and models with ``jax.Array`` values.

Example::

    from rlmesh.jax import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)          # a jax.Array on the default device

Observations are placed on ``device`` (default: JAX's default device) with
``jax.device_put``; arrays JAX cannot hold (strings, for instance) stay numpy. Actions may be
JAX arrays, :class:`rlmesh.Tensor` values, numpy arrays or Python values. Needs JAX: the
``jax`` extra (see ``docs/install.md``).

Between JAX and :class:`rlmesh.Tensor`: :func:`asarray` (over DLPack; JAX arrays are
immutable, so sharing is safe) and :func:`from_array` (a copy).
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Union

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    from rlmesh.extras import missing_extra

    raise missing_extra("rlmesh.jax", "JAX", "jax") from exc

from rlmesh.authoring.factory import JaxEnvFactory as EnvFactory
from rlmesh.backends.make import make_backend, make_remote_model
from rlmesh.errors import EncodeError
from rlmesh.extras import MissingExtraError, install_hint, missing_extra
from rlmesh.sandbox.options import SandboxBuild, SandboxInfo, SandboxRuntime
from rlmesh.sandbox.session import sandbox_classes
from rlmesh.spaces import space_from_spec
from rlmesh.tensor import PrimitiveValue, Tensor, from_numpy

__all__ = [
    "EnvFactory",
    "JaxValue",
    "Model",
    "RemoteEnv",
    "RemoteModel",
    "RemoteVectorEnv",
    "SandboxBuild",
    "SandboxEnv",
    "SandboxInfo",
    "SandboxModel",
    "SandboxRuntime",
    "SandboxVectorEnv",
    "asarray",
    "ensure_available",
    "from_array",
    "from_jax",
    "space_from_spec",
    "to_jax",
]

JaxValue = Union[  # noqa: UP007 - a runtime alias
    PrimitiveValue, jax.Array, list["JaxValue"], tuple["JaxValue", ...],
    dict[str, "JaxValue"]]
"""A value of the JAX backend: primitives, JAX arrays, and lists, tuples and dicts of them."""

MINIMUM_JAX = (0, 4, 30)
"""The oldest JAX this backend supports (the ``jax`` extra's floor)."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def ensure_available() -> None:
    """Check that JAX can be imported and is not older than :data:`MINIMUM_JAX`.

    Raises:
        ImportError: JAX is missing or too old (a ``MissingExtraError`` saying how to
            install a supported one).
    """
    try:
        module = importlib.import_module("jax")
    except ImportError as exc:
        raise missing_extra("rlmesh.jax", "JAX", "jax") from exc
    found = str(module.__version__)
    if _version(found) < MINIMUM_JAX:
        floor = ".".join(map(str, MINIMUM_JAX))
        raise MissingExtraError(f"rlmesh.jax needs JAX >= {floor}, found {found}: "
                                f"{install_hint('jax')}")


def asarray(tensor: Tensor | Any) -> Any:
    """``tensor`` as a ``jax.Array`` (immutable, like every JAX array).

    JAX imports the tensor over DLPack, sharing its memory where XLA can (rlmesh aligns its
    storage to 64 bytes) and copying otherwise. 64-bit dtypes stay 64-bit only with
    ``jax_enable_x64``; otherwise JAX itself narrows them.

    Args:
        tensor: An :class:`rlmesh.Tensor` (or anything ``jax.numpy.asarray`` takes).
    """
    if not isinstance(tensor, Tensor):
        return jnp.asarray(tensor)
    if tensor.dtype == "bfloat16":  # not exported over DLPack: through numpy
        return jnp.asarray(np.asarray(tensor))
    return jnp.from_dlpack(tensor)


def from_array(array: Any) -> Tensor | PrimitiveValue:
    """A JAX array as an rlmesh value: a :class:`rlmesh.Tensor` holding a copy of it.

    The array is brought to the CPU (when it is elsewhere) and waited for first.

    Args:
        array: A ``jax.Array``; a 0-d one becomes the Python scalar it holds.

    Raises:
        EncodeError: ``array`` is not a JAX array (a ``TypeError``).
        TensorError: Its dtype has no tensor dtype (a ``ValueError``).
    """
    if not isinstance(array, jax.Array):
        raise EncodeError(f"from_array() takes a jax.Array, not a {type(array).__name__}")
    if array.ndim == 0:
        return array.item()  # type: ignore[no-any-return]
    host = np.asarray(jax.device_get(array.block_until_ready()))
    return from_numpy(host)


def to_jax(array: np.ndarray[Any, Any], device: Any = None) -> Any:
    """``array`` on ``device`` (default: JAX's default device); strings stay numpy."""
    if array.dtype.kind in "SUOV":
        return array
    return jax.device_put(array, device)


def from_jax(value: Any) -> Any:
    """``value`` as numpy if it is a JAX array or an :class:`rlmesh.Tensor`."""
    if isinstance(value, (jax.Array, Tensor)):
        return np.asarray(value)
    return value


# One assignment a name, each with its docstring, so that the API reference (which reads
# this source without importing it) lists every class of the face.
_CLIENTS = make_backend("jax", to_jax, from_jax)
RemoteEnv = _CLIENTS[0]
"""``rlmesh.numpy.RemoteEnv`` (same arguments and behaviour) with JAX arrays as values."""
RemoteVectorEnv = _CLIENTS[1]
"""``rlmesh.numpy.RemoteVectorEnv`` (same arguments and behaviour) with JAX arrays as values."""
Model = _CLIENTS[2]
"""``rlmesh.numpy.Model`` whose ``predict`` sees and returns JAX arrays."""
RemoteModel = make_remote_model("jax", to_jax, from_jax)
_SANDBOX = sandbox_classes(RemoteEnv, RemoteVectorEnv, RemoteModel, module=__name__)
SandboxEnv = _SANDBOX.SandboxEnv
"""``rlmesh.numpy.SandboxEnv`` (an env in its own stack) with JAX arrays as values."""
SandboxVectorEnv = _SANDBOX.SandboxVectorEnv
"""``rlmesh.numpy.SandboxVectorEnv`` with JAX arrays as values."""
SandboxModel = _SANDBOX.SandboxModel
"""``rlmesh.numpy.SandboxModel`` (a model in its own stack) with JAX arrays as values."""
