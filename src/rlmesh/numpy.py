"""The numpy backend: remote envs and models with numpy values, exactly as served.

Example::

    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

This module is a public face: it re-exports :class:`rlmesh.client.env.RemoteEnv`,
:class:`rlmesh.vector.env.RemoteVectorEnv`, :class:`rlmesh.models.model.Model` and
:class:`rlmesh.models.remote.RemoteModel`, and converts between numpy and
:class:`rlmesh.Tensor` (:func:`asarray`, :func:`from_array`). Nothing inside rlmesh
imports it.
"""

from __future__ import annotations

import importlib
from typing import Any, Union

import numpy as np

from rlmesh.authoring.factory import EnvFactory
from rlmesh.client.env import RemoteEnv
from rlmesh.errors import EncodeError
from rlmesh.extras import missing_extra
from rlmesh.models.model import Model
from rlmesh.models.remote import RemoteModel
from rlmesh.sandbox.options import SandboxBuild, SandboxInfo, SandboxRuntime
from rlmesh.sandbox.session import SandboxEnv, SandboxModel, SandboxVectorEnv
from rlmesh.spaces import space_from_spec
from rlmesh.tensor import PrimitiveValue, Tensor, from_numpy
from rlmesh.vector.env import RemoteVectorEnv

__all__ = ["EnvFactory", "Model", "NumpyValue", "RemoteEnv", "RemoteModel", "RemoteVectorEnv",
           "SandboxBuild", "SandboxEnv", "SandboxInfo", "SandboxModel", "SandboxRuntime",
           "SandboxVectorEnv",
           "asarray", "ensure_available", "from_array", "space_from_spec"]

NumpyValue = Union[  # noqa: UP007 - a runtime alias
    PrimitiveValue, np.ndarray[Any, Any], list["NumpyValue"], tuple["NumpyValue", ...],
    dict[str, "NumpyValue"]]
"""A value of the numpy backend: primitives, numpy arrays, and lists, tuples and dicts of them."""


def ensure_available() -> None:
    """Check that numpy can be imported (it always can: rlmesh depends on it).

    Raises:
        ImportError: numpy is missing (a ``MissingExtraError`` naming how to install it).
    """
    try:
        importlib.import_module("numpy")
    except ImportError as exc:  # pragma: no cover - numpy is a dependency of rlmesh
        raise missing_extra("rlmesh.numpy", "numpy", "numpy") from exc


def asarray(tensor: Tensor | Any) -> np.ndarray[Any, Any]:
    """A writable numpy array holding a copy of ``tensor``'s elements.

    Writable, as Gymnasium's observations are (``obs /= 255.0`` works). For a read-only view
    without a copy use ``numpy.asarray(tensor)``, ``numpy.from_dlpack(tensor)`` or
    ``tensor.buffer``.

    Args:
        tensor: An :class:`rlmesh.Tensor` (or anything ``numpy.array`` accepts).

    Raises:
        ImportError: A ``bfloat16`` tensor without the ``ml_dtypes`` package.
    """
    return np.array(tensor, copy=True)


def from_array(array: Any) -> Tensor | PrimitiveValue:
    """``array`` as an rlmesh value: a :class:`rlmesh.Tensor` holding a copy of its elements.

    Args:
        array: A numpy array or numpy scalar. A scalar, or a 0-d array, becomes the Python
            scalar it holds.

    Raises:
        EncodeError: ``array`` is not a numpy array or scalar (a ``TypeError``).
        TensorError: Its dtype has no tensor dtype (a ``ValueError``).
    """
    if isinstance(array, np.generic):
        return array.item()  # type: ignore[no-any-return]
    if not isinstance(array, np.ndarray):
        raise EncodeError(f"from_array() takes a numpy array or scalar, not a "
                          f"{type(array).__name__}")
    if array.ndim == 0:
        return array.item()  # type: ignore[no-any-return]
    return from_numpy(array)
