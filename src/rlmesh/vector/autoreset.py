"""Gymnasium's ``AutoresetMode``, or a clear error where this Gymnasium is too old for it.

Every module of rlmesh's client side that needs Gymnasium 1.x's vector API imports the mode
from here, so that under an older Gymnasium (a stack that only serves envs, docs/old-gym.md)
the client side fails at import with one :class:`~rlmesh.errors.CompatError` naming the
versions, not a bare ``ImportError`` from deep inside.
"""

from __future__ import annotations

from rlmesh.spacetypes.available import client_side_error

__all__ = ["AutoresetMode"]

_error = client_side_error("rlmesh's vector envs (RemoteVectorEnv, make_vec, evaluate, the "
                           "numpy, torch and JAX faces)")
if _error is not None:
    raise _error

from gymnasium.vector import AutoresetMode  # noqa: E402  (after the version check)
