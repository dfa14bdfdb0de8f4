"""Values <-> bytes: the codec, space schemas, and lenient encoding of ``info``.

Nothing here knows about sockets, sessions or envs. :mod:`~rlmesh.wire.format` holds the
format's constants and dtype rules, :mod:`~rlmesh.wire.encoder` and :mod:`~rlmesh.wire.decoder`
turn values into a message and back, :mod:`~rlmesh.wire.schema` does the same for spaces, and
:mod:`~rlmesh.wire.lenient` makes ``info`` encodable.
"""

__all__: list[str] = []
