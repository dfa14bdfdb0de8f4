"""Scale-out: fleets of rlmesh servers placed, restarted and torn down by a cluster manager.

Ray is the one engine today (the ``rlmesh.ray`` face). Ray places the servers, restarts the
ones whose process or node dies and kills them at the end; every step still travels over
rlmesh's own protocol, straight from the client to the server. A fleet handle is a live
:class:`~rlmesh.vector.endpoints.EndpointSet` (slot ``k`` is server ``k``), so clients can
follow a server to the new address it gets after a restart.

Modules: ``rayload`` (importing Ray, or the error naming the extra), ``ports`` (binding a
server outside Ray's worker ports), ``actor`` (the server inside a Ray actor), ``records``
(what the cluster remembers of a named fleet), ``watch`` (reading the servers' state from
Ray), ``fleet`` (:class:`RayFleet`, the handle) and ``launch`` (``serve`` and ``get_fleet``).
It sits beside :mod:`rlmesh.sandbox`, above the models, evaluation, vector, client and server
layers. See ``docs/architecture.md`` and ``docs/ray.md``.
"""

__all__: list[str] = []
