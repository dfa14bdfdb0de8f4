"""The client side of one connection: handshake, request/reply, the remote env.

:class:`rlmesh.numpy.RemoteEnv` is defined in :mod:`rlmesh.client.env`; the request/reply
channel in :mod:`rlmesh.client.channel`, on top of :mod:`rlmesh.client.exchange` and
:mod:`rlmesh.client.resuming`.
"""

__all__: list[str] = []
