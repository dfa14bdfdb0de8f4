"""Value backends: plain Python values, and the machinery of the torch and JAX faces.

The public faces are the top-level modules :mod:`rlmesh.numpy`, :mod:`rlmesh.torch` and
:mod:`rlmesh.jax`, and ``rlmesh.RemoteEnv`` (plain values, :mod:`rlmesh.backends.plain`).
"""

__all__: list[str] = []
