"""Layer 1, values <-> bytes: the codec, space schemas, and lenient encoding of ``info``.

Nothing here knows about sockets, sessions or envs; everything above encodes and decodes
through :mod:`rlmesh.wire.codec`.
"""

__all__: list[str] = []
