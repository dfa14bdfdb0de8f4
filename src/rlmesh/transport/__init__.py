"""Layer 1, bytes <-> peer: addresses and sockets, framing, and the same-host shared memory.

A transport moves whole frames (a header and a body) between two peers; it knows nothing of
what the frames mean.
"""

__all__: list[str] = []
