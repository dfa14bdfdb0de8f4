"""One fleet server: an :class:`~rlmesh.EnvServer` living inside a Ray actor.

Ray runs :class:`FleetServer` in a worker process of the node it chose (the class is wrapped
with ``ray.remote`` by :mod:`rlmesh.scaleout.launch`; nothing here imports Ray at module
level). The constructor builds the server and starts it, so the actor is alive exactly when
its server listens; a restarted actor builds a new server at a new port. Ray's method calls
are the control plane only (where, which process, counters): clients never step through them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import gymnasium as gym

from rlmesh.scaleout.ports import RAY_WORKER_PORTS, bind_outside
from rlmesh.server.authored import authored
from rlmesh.server.options import ServeOptions
from rlmesh.server.server import EnvServer

__all__ = ["FleetServer", "ServerSpec", "env_factory"]


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """What every server of a fleet serves, and how.

    Attributes:
        env: A registered env id, an env factory (a callable returning an env) or an
            ``rlmesh.EnvFactory`` (class or instance).
        num_envs: Envs per server; more than one serves a ``SyncVectorEnv`` of them.
        token: The token clients must prove they hold (``None``: no authentication).
        options: The servers' :class:`~rlmesh.ServeOptions`.
        host: The address to bind; ``None`` binds the node's own address as Ray knows it.
        port_range: Bind ports from these bounds; ``None`` lets the kernel pick, never in
            Ray's worker port range.
        workers: Processes per server (``EnvServer(workers=...)``).
    """

    env: Any
    num_envs: int = 1
    token: str | None = None
    options: ServeOptions | None = None
    host: str | None = None
    port_range: tuple[int, int] | None = None
    workers: int = 1


def env_factory(env: Any, num_envs: int = 1) -> Any:
    """What an :class:`~rlmesh.EnvServer` of the fleet serves.

    Args:
        env: An env id, a factory, or an ``rlmesh.EnvFactory``.
        num_envs: More than one: a factory of ``SyncVectorEnv``s of that many envs.

    Raises:
        ValueError: If ``num_envs`` is below 1, or ``env`` is an env instance (a fleet
            needs to build an env in every server).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs_per_server must be >= 1, got {num_envs}")
    if hasattr(env, "step") and not isinstance(env, type):
        raise ValueError("a fleet builds its envs in every server: pass an env id or a "
                         "factory, not an env instance")
    if isinstance(env, str):
        env = functools.partial(gym.make, env)
    elif not callable(env) and authored(env) is None:
        raise TypeError(f"cannot serve {type(env).__name__} objects in a fleet: pass an env "
                        "id, a factory or an rlmesh.EnvFactory")
    if num_envs == 1:
        return env
    spec = authored(env)
    build = spec.build if spec is not None else env
    return functools.partial(_vector_of, build, num_envs)


def _vector_of(build: Any, num_envs: int) -> gym.vector.SyncVectorEnv:
    envs = gym.vector.SyncVectorEnv([build] * num_envs)
    spec = getattr(envs.envs[0], "spec", None)
    if spec is not None:  # the sub-envs' id, so clients see which env it is
        envs.spec = dataclasses.replace(
            spec, kwargs={**spec.kwargs, "num_envs": num_envs, "vectorization_mode": "sync"})
    return envs


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class FleetServer:
    """The body of a fleet's Ray actor: builds, starts and reports one server.

    Args:
        spec: What to serve and how.
        index: This server's slot in the fleet.
    """

    def __init__(self, spec: ServerSpec, index: int) -> None:
        import ray  # present: this runs inside a Ray worker

        context = ray.get_runtime_context()
        self.index = index
        self.node = str(context.get_node_id())
        host = spec.host or str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        factory = env_factory(spec.env, spec.num_envs)

        def bind(port: int) -> EnvServer:
            return EnvServer(factory, _join(host, port), options=spec.options,
                             token=spec.token, workers=spec.workers)

        self.server = bind_outside(bind, lambda s: int(s.address.rsplit(":", 1)[1]),
                                   lambda s: s.shutdown(), avoid=RAY_WORKER_PORTS,
                                   port_range=spec.port_range).start()

    def info(self) -> dict[str, Any]:
        """Where the server listens and what it did.

        Returns:
            ``index``, ``address``, ``pid``, ``node`` (Ray's node id) and ``stats``.
        """
        return {"index": self.index, "address": self.server.address, "pid": os.getpid(),
                "node": self.node, "stats": dict(self.server.stats)}

    def stop(self) -> None:
        """Shut the server down (the actor is killed after this)."""
        self.server.shutdown()
