"""One connection to an endpoint of either shape: a ``RemoteEnv`` or a ``RemoteVectorEnv``.

``rlmesh.run`` and ``rlmesh.evaluate`` accept addresses without knowing what they serve; the
contract tells, and the matching client is returned.
"""

from __future__ import annotations

from rlmesh.client.env import RemoteEnv
from rlmesh.client.options import ConnectOptions
from rlmesh.errors import EndpointKindError
from rlmesh.vector.env import RemoteVectorEnv

__all__ = ["connect_endpoint"]


def connect_endpoint(address: str,
                     options: ConnectOptions | None = None) -> RemoteEnv | RemoteVectorEnv:
    """A numpy ``RemoteEnv``, or a ``RemoteVectorEnv`` for a vector endpoint, at ``address``.

    Raises:
        RLMeshError: As the client's constructor (the endpoint cannot be reached, ...).
    """
    try:
        return RemoteEnv(address, options=options)
    except EndpointKindError:
        return RemoteVectorEnv(address, options=options)
