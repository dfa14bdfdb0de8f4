"""The numpy backend: remote envs and models with numpy values, exactly as served.

Example::

    from rlmesh.numpy import RemoteEnv

    env = RemoteEnv("127.0.0.1:5555")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

This module is a public face: it re-exports :class:`rlmesh.client.env.RemoteEnv`,
:class:`rlmesh.vector.env.RemoteVectorEnv`, :class:`rlmesh.models.model.Model` and
:class:`rlmesh.models.remote.RemoteModel`. Nothing
inside rlmesh imports it.
"""

from __future__ import annotations

from rlmesh.client.env import RemoteEnv
from rlmesh.models.model import Model
from rlmesh.models.remote import RemoteModel
from rlmesh.spaces import space_from_spec
from rlmesh.vector.env import RemoteVectorEnv

__all__ = ["Model", "RemoteEnv", "RemoteModel", "RemoteVectorEnv", "space_from_spec"]
