"""The PyTorch backend: remote envs and models with ``torch.Tensor`` values.

Example::

    from rlmesh.torch import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555", device="cpu")
    obs, info = env.reset(seed=0)          # a torch.Tensor
    obs, reward, terminated, truncated, info = env.step(torch.tensor(1))

Observations become tensors without a copy (``torch.from_numpy`` on the freshly received
buffer, which rlmesh never reuses), then move to ``device`` if one is given. Arrays torch
cannot hold (strings, for instance) stay numpy. Actions may be tensors (on any device),
:class:`rlmesh.Tensor` values, numpy arrays or Python values. Needs PyTorch: the ``torch``
extra (see ``docs/install.md``).

Between torch and :class:`rlmesh.Tensor`: :func:`as_tensor` (a view over DLPack, or a copy)
and :func:`from_tensor` (a copy).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Union

import numpy as np

try:
    import torch
    import torch.utils.dlpack
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    from rlmesh.extras import missing_extra

    raise missing_extra("rlmesh.torch", "PyTorch", "torch") from exc

from rlmesh.authoring.factory import TorchEnvFactory as EnvFactory
from rlmesh.backends.make import make_backend, make_remote_model
from rlmesh.extras import missing_extra
from rlmesh.sandbox.options import SandboxBuild, SandboxInfo, SandboxRuntime
from rlmesh.sandbox.session import sandbox_classes
from rlmesh.spaces import space_from_spec
from rlmesh.tensor import PrimitiveValue, Tensor

__all__ = [
    "EnvFactory",
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
    "TorchValue",
    "as_tensor",
    "ensure_available",
    "from_tensor",
    "space_from_spec",
    "to_tensor",
]

TorchValue = Union[  # noqa: UP007 - a runtime alias
    PrimitiveValue, torch.Tensor, list["TorchValue"], tuple["TorchValue", ...],
    dict[str, "TorchValue"]]
"""A value of the torch backend: primitives, torch tensors, and lists, tuples and dicts of them."""


def ensure_available() -> None:
    """Check that PyTorch can be imported.

    Raises:
        ImportError: It cannot (a ``MissingExtraError`` naming how to install it).
    """
    try:
        importlib.import_module("torch")
    except ImportError as exc:
        raise missing_extra("rlmesh.torch", "PyTorch", "torch") from exc


def as_tensor(tensor: Tensor | bool | int | float | Any, *, copy: bool = False) -> Any:
    """``tensor`` as a ``torch.Tensor``: sharing its memory, or a copy with ``copy=True``.

    The shared view comes over DLPack, flagged read-only, but torch does not enforce the flag:
    writing into it changes the :class:`rlmesh.Tensor` for every other view of it. Pass
    ``copy=True`` for a tensor you mean to modify.

    Args:
        tensor: An :class:`rlmesh.Tensor`, a Python scalar (or anything
            ``torch.as_tensor`` takes).
        copy: Return a tensor with memory of its own.
    """
    if not isinstance(tensor, Tensor):
        return torch.tensor(tensor) if copy else torch.as_tensor(tensor)
    if tensor.dtype == "bfloat16":  # not on DLPack: the raw bits, read as bfloat16
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The given buffer is not writable")
            view = torch.frombuffer(tensor.buffer, dtype=torch.bfloat16)
        shared = view.reshape(tensor.shape)
    else:
        shared = torch.utils.dlpack.from_dlpack(tensor)
    return shared.clone() if copy else shared


def from_tensor(tensor: Any) -> Tensor | PrimitiveValue | Any:
    """A torch tensor as an rlmesh value: a :class:`rlmesh.Tensor` holding a copy of it.

    The tensor is detached and brought to the CPU first. The result is read by numpy as an
    array (``numpy.asarray(from_tensor(t))``) without a further copy.

    Args:
        tensor: A ``torch.Tensor``; a 0-d one becomes the Python scalar it holds. Any other
            value is returned unchanged.
    """
    if not isinstance(tensor, torch.Tensor):
        return tensor
    cpu = tensor.detach().cpu().resolve_conj().resolve_neg().contiguous()
    if cpu.ndim == 0:
        return cpu.item()
    if cpu.dtype == torch.bfloat16:
        bits = cpu.view(torch.int16).numpy()
        return Tensor(bits, list(cpu.shape), "bfloat16")
    return Tensor.from_dlpack(cpu)


def to_tensor(array: np.ndarray[Any, Any], device: Any = None) -> Any:
    """A tensor sharing ``array``'s memory where torch can hold its dtype (then on ``device``)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    try:
        tensor = torch.from_numpy(array)
    except TypeError:  # a dtype torch has no tensor for: keep numpy
        return array
    return tensor if device is None else tensor.to(device)


def _to_numpy(value: Any) -> Any:
    """``value`` as numpy if it is a torch tensor or an :class:`rlmesh.Tensor`."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, Tensor):
        return np.asarray(value)
    return value


# One assignment a name, each with its docstring, so that the API reference (which reads
# this source without importing it) lists every class of the face.
_CLIENTS = make_backend("torch", to_tensor, _to_numpy)
RemoteEnv = _CLIENTS[0]
"""``rlmesh.numpy.RemoteEnv`` (same arguments and behaviour) with torch tensors as values."""
RemoteVectorEnv = _CLIENTS[1]
"""``rlmesh.numpy.RemoteVectorEnv`` (same arguments and behaviour) with torch tensors as values."""
Model = _CLIENTS[2]
"""``rlmesh.numpy.Model`` whose ``predict`` sees and returns torch tensors."""
RemoteModel = make_remote_model("torch", to_tensor, _to_numpy)
_SANDBOX = sandbox_classes(RemoteEnv, RemoteVectorEnv, RemoteModel, module=__name__)
SandboxEnv = _SANDBOX.SandboxEnv
"""``rlmesh.numpy.SandboxEnv`` (an env in its own stack) with torch tensors as values."""
SandboxVectorEnv = _SANDBOX.SandboxVectorEnv
"""``rlmesh.numpy.SandboxVectorEnv`` with torch tensors as values."""
SandboxModel = _SANDBOX.SandboxModel
"""``rlmesh.numpy.SandboxModel`` (a model in its own stack) with torch tensors as values."""
