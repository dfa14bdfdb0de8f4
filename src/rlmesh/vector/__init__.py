"""Many envs as one ``gymnasium.vector.VectorEnv``: ``RemoteVectorEnv``, ``make_vec``.

``rlmesh.RemoteVectorEnv`` and ``rlmesh.vector.RemoteVectorEnv`` are
:class:`rlmesh.vector.env.RemoteVectorEnv` (loaded on first use, so that importing one module
of this package loads no other).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmesh.vector.env import RemoteVectorEnv
    from rlmesh.vector.make import make_vec

__all__ = ["RemoteVectorEnv", "make_vec"]


def __getattr__(name: str) -> Any:
    if name == "RemoteVectorEnv":
        from rlmesh.vector.env import RemoteVectorEnv

        return RemoteVectorEnv
    if name == "make_vec":
        from rlmesh.vector.make import make_vec

        return make_vec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
