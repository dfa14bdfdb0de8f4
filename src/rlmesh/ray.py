"""rlmesh on a Ray cluster: fleets of env servers that Ray places, restarts and stops.

Ray reserves resources for each server, runs it in an actor on the node it chose and restarts
it when its process or node dies; the clients step every env over rlmesh's own protocol,
straight to the servers. Needs the ``ray`` extra; ``import rlmesh`` does not import Ray, and
``import rlmesh.ray`` only does on first use::

    import rlmesh
    import rlmesh.ray

    with rlmesh.ray.serve("CartPole-v1", 8) as fleet:   # 8 servers, a random token
        envs = fleet.vector_env()                       # a RemoteVectorEnv over them
        result = fleet.evaluate(rlmesh.RANDOM_SAMPLE, episodes=100, seed=0)

A fleet is a live endpoint set (``addresses``, ``version``, ``wait_changed``): clients that
take one follow a restarted server to its new address. See ``docs/ray.md``.
"""

from __future__ import annotations

from rlmesh.scaleout.fleet import RayFleet
from rlmesh.scaleout.launch import get_fleet, serve
from rlmesh.scaleout.rayload import load_ray

__all__ = ["RayFleet", "get_fleet", "load_ray", "serve"]
