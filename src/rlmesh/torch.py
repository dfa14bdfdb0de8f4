"""The PyTorch backend: remote envs and models with ``torch.Tensor`` values.

Example::

    from rlmesh.torch import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555", device="cpu")
    obs, info = env.reset(seed=0)          # a torch.Tensor
    obs, reward, terminated, truncated, info = env.step(torch.tensor(1))

Observations become tensors without a copy (``torch.from_numpy`` on the freshly received
buffer, which rlmesh never reuses), then move to ``device`` if one is given. Arrays torch
cannot hold (strings, for instance) stay numpy. Actions may be tensors (on any device),
numpy arrays or Python values. Needs PyTorch: the ``torch`` extra (see ``docs/install.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    from rlmesh.extras import missing_extra

    raise missing_extra("rlmesh.torch", "PyTorch", "torch") from exc

from rlmesh.backends.make import make_backend, make_remote_model
from rlmesh.spaces import space_from_spec

__all__ = ["Model", "RemoteEnv", "RemoteModel", "RemoteVectorEnv", "from_tensor",
           "space_from_spec", "to_tensor"]


def to_tensor(array: np.ndarray[Any, Any], device: Any = None) -> Any:
    """A tensor sharing ``array``'s memory where torch can hold its dtype (then on ``device``)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    try:
        tensor = torch.from_numpy(array)
    except TypeError:  # a dtype torch has no tensor for: keep numpy
        return array
    return tensor if device is None else tensor.to(device)


def from_tensor(value: Any) -> Any:
    """``value`` as numpy if it is a tensor (detached, moved to the CPU)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


RemoteEnv, RemoteVectorEnv, Model = make_backend("torch", to_tensor, from_tensor)
RemoteModel = make_remote_model("torch", to_tensor, from_tensor)
