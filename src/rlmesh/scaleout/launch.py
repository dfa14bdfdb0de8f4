"""Starting a fleet on Ray (:func:`serve`) and finding a named one (:func:`get_fleet`).

One placement group reserves a bundle of resources per server (``strategy`` spreads or packs
them over the nodes); one actor per bundle runs a :class:`~rlmesh.scaleout.actor.FleetServer`
that Ray restarts when its process or node dies (``max_restarts``). The handle waits until
every server listens, then follows them (:class:`~rlmesh.scaleout.fleet.RayFleet`).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping
from typing import Any

from rlmesh.errors import FleetError
from rlmesh.scaleout.actor import FleetServer, ServerSpec, env_factory
from rlmesh.scaleout.fleet import RayFleet
from rlmesh.scaleout.rayload import load_ray
from rlmesh.scaleout.records import NAMESPACE, FleetRecord, RecordKeeper, server_name
from rlmesh.server.options import ServeOptions

__all__ = ["get_fleet", "serve"]

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def _describe(env: Any) -> str:
    return env if isinstance(env, str) else getattr(env, "__qualname__", type(env).__name__)


def _token(token: str | None) -> str | None:
    if token == "auto":
        return secrets.token_urlsafe(24)
    return token


def serve(env: Any, num_servers: int, *, num_envs_per_server: int = 1,
          resources: Mapping[str, float] | None = None, strategy: str = "SPREAD",
          options: ServeOptions | None = None, max_restarts: int = -1,
          token: str | None = "auto", name: str | None = None, detached: bool = False,
          host: str | None = None, port_range: tuple[int, int] | None = None,
          workers_per_server: int = 1, runtime_env: Mapping[str, Any] | None = None,
          start_timeout: float = 300.0, poll_interval: float = 0.5) -> RayFleet:
    """Start ``num_servers`` rlmesh servers of ``env`` on the Ray cluster.

    Connects to a running cluster (``ray.init()`` rules: ``RAY_ADDRESS``, or a local one is
    started) unless Ray is initialised already.

    Args:
        env: A registered env id, an env factory or an ``rlmesh.EnvFactory``.
        num_servers: How many servers (slots).
        num_envs_per_server: Envs per server; more than one serves a vector env.
        resources: Ray resources reserved per server (default ``{"CPU": 1}``).
        strategy: How servers spread over nodes: ``PACK``, ``SPREAD``, ``STRICT_PACK`` or
            ``STRICT_SPREAD`` (Ray's placement strategies).
        options: The servers' :class:`~rlmesh.ServeOptions`.
        max_restarts: Restarts Ray grants each server (``-1``: no limit, ``0``: none).
        token: ``"auto"`` (default) protects the fleet with a random token (see
            :attr:`RayFleet.token`); a string is used as is; ``None`` means no token.
        name: Name the fleet so that other processes find it (:func:`get_fleet`).
        detached: Outlive this process (needs ``name``); else the fleet dies with it.
        host: The address servers bind; default the node's address as Ray knows it.
        port_range: Bind ports from these bounds (both included) instead of any free port.
        workers_per_server: Processes per server (``EnvServer(workers=...)``).
        runtime_env: Ray's runtime environment for the servers' actors.
        start_timeout: Seconds to wait for resources and for every server to listen.
        poll_interval: Seconds between two reads of the servers' state.

    Returns:
        The fleet's handle, every server listening.

    Raises:
        FleetError: If the cluster cannot place the servers in ``start_timeout``, or a
            server fails to start (the cause is chained).
        MissingExtraError: If Ray is not installed.
    """
    if num_servers < 1:
        raise ValueError(f"num_servers must be >= 1, got {num_servers}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if detached and not name:
        raise ValueError("a detached fleet needs a name, to be found and stopped later")
    env_factory(env, num_envs_per_server)  # refuse bad input before touching Ray
    ray = load_ray()
    if not ray.is_initialized():
        ray.init(namespace=NAMESPACE, log_to_driver=False)
    name = name or f"fleet-{secrets.token_hex(4)}"
    record = FleetRecord(name=name, num_servers=num_servers, token=_token(token),
                         placement_group=f"{name}/placement", env=_describe(env),
                         detached=detached)
    spec = ServerSpec(env=env, num_envs=num_envs_per_server, token=record.token,
                      options=options, host=host, port_range=port_range,
                      workers=workers_per_server)
    _refuse_taken(ray, record.name)
    group = _reserve(ray, record, dict(resources or {"CPU": 1}), strategy, start_timeout)
    started: list[Any] = []
    try:
        keeper = _keeper(ray, record)
        started.append(keeper)
        servers = _start_servers(ray, spec, record, group, dict(resources or {"CPU": 1}),
                                 max_restarts, runtime_env)
        started.extend(servers)
        _wait_constructed(ray, servers, start_timeout)
    except BaseException:
        _abandon(ray, started, group)
        raise
    return RayFleet(ray, servers, record, placement_group=group, keepers=(keeper,),
                    poll_interval=poll_interval)


def _reserve(ray: Any, record: FleetRecord, bundle: dict[str, float], strategy: str,
             timeout: float) -> Any:
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([dict(bundle) for _ in range(record.num_servers)],
                            strategy=strategy, name=record.placement_group,
                            lifetime="detached" if record.detached else None)
    ready, _ = ray.wait([group.ready()], timeout=timeout)
    if not ready:
        remove_placement_group(group)
        raise FleetError(f"the Ray cluster could not reserve {record.num_servers} x {bundle} "
                         f"({strategy}) in {timeout} s: too few resources? (resources= sets "
                         "what each server reserves)")
    return group


def _actor_options(record: FleetRecord) -> dict[str, Any]:
    options: dict[str, Any] = {"namespace": NAMESPACE}
    if record.detached:
        options["lifetime"] = "detached"
    return options


def _refuse_taken(ray: Any, name: str) -> None:
    try:
        ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return
    raise FleetError(f"a fleet named {name!r} exists already on this Ray cluster "
                     f"(rlmesh ray stop {name} stops it)")


def _keeper(ray: Any, record: FleetRecord) -> Any:
    import dataclasses

    keeper_class = ray.remote(num_cpus=0)(RecordKeeper)
    return keeper_class.options(name=record.name, **_actor_options(record)).remote(
        dataclasses.asdict(record))


def _start_servers(ray: Any, spec: ServerSpec, record: FleetRecord, group: Any,
                   bundle: dict[str, float], max_restarts: int,
                   runtime_env: Mapping[str, Any] | None) -> list[Any]:
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    cpus = float(bundle.get("CPU", 0))
    gpus = float(bundle.get("GPU", 0))
    custom = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")}
    server_class = ray.remote(FleetServer)
    servers = []
    for index in range(record.num_servers):
        options: dict[str, Any] = {
            **_actor_options(record), "name": server_name(record.name, index),
            "num_cpus": cpus, "num_gpus": gpus, "resources": custom,
            "max_restarts": max_restarts, "max_task_retries": 0,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_bundle_index=index)}
        if runtime_env is not None:
            options["runtime_env"] = dict(runtime_env)
        servers.append(server_class.options(**options).remote(spec, index))
    return servers


def _wait_constructed(ray: Any, servers: list[Any], timeout: float) -> None:
    calls = [server.info.remote() for server in servers]
    _, pending = ray.wait(calls, num_returns=len(calls), timeout=timeout)
    if pending:
        raise FleetError(f"{len(pending)} of {len(servers)} servers did not start in "
                         f"{timeout} s")
    for index, call in enumerate(calls):
        try:
            ray.get(call)
        except Exception as exc:
            raise FleetError(f"server {index} failed to start: {exc}") from exc


def _abandon(ray: Any, actors: list[Any], group: Any) -> None:
    from ray.util.placement_group import remove_placement_group

    for actor in actors:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)
    with contextlib.suppress(Exception):
        remove_placement_group(group)


def get_fleet(name: str, *, poll_interval: float = 0.5) -> RayFleet:
    """The handle of the named fleet running on the Ray cluster.

    Connects to the running cluster (``ray.init(address="auto")``) unless Ray is
    initialised already. :meth:`RayFleet.close` on this handle stops the fleet;
    :meth:`RayFleet.disconnect` leaves it running.

    Raises:
        FleetError: If no fleet of that name runs there.
        MissingExtraError: If Ray is not installed.
    """
    ray = load_ray()
    if not ray.is_initialized():
        ray.init(address="auto", namespace=NAMESPACE, log_to_driver=False)
    try:
        keeper = ray.get_actor(name, namespace=NAMESPACE)
        record = FleetRecord(**ray.get(keeper.get.remote(), timeout=30))
        servers = [ray.get_actor(server_name(name, k), namespace=NAMESPACE)
                   for k in range(record.num_servers)]
    except ValueError as exc:
        raise FleetError(f"no rlmesh fleet named {name!r} on this Ray cluster") from exc
    group = None
    with contextlib.suppress(Exception):
        from ray.util import get_placement_group

        group = get_placement_group(record.placement_group)
    return RayFleet(ray, servers, record, placement_group=group, keepers=(keeper,),
                    poll_interval=poll_interval)
