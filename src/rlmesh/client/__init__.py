"""The client side of one connection: handshake, request/reply, the remote env.

:class:`rlmesh.numpy.RemoteEnv` is defined in :mod:`rlmesh.client.env`; the request/reply
channel in :mod:`rlmesh.client.channel`.
"""

__all__: list[str] = []
