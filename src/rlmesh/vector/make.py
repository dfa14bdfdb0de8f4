"""``rlmesh.make_vec``: many envs in local worker processes, as one vector env.

A drop-in for ``gymnasium.make_vec``: the same arguments in the same order, Gymnasium's
exceptions for an id that is not registered, and the same trajectories for the same seeds
and actions; only the default (and ``"async"``) vectorization runs rlmesh's worker
processes instead of Gymnasium's ``AsyncVectorEnv``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, VectorizeMode

from rlmesh.client.options import DEFAULT_TIMEOUT, ConnectOptions
from rlmesh.server.authored import authored
from rlmesh.server.sync_vector import LeanSyncVectorEnv
from rlmesh.server.workers import WorkerPool
from rlmesh.vector.autoreset import AutoresetMode
from rlmesh.vector.env import RemoteVectorEnv
from rlmesh.vector.inline import InlineChannel

__all__ = ["make_vec"]

_IGNORED = frozenset({"copy", "shared_memory", "context", "daemon"})
"""``AsyncVectorEnv`` options that change nothing here: rlmesh's workers are always separate
processes, and every step returns fresh arrays."""


def _shares(num_envs: int, num_workers: int) -> list[int]:
    base, extra = divmod(num_envs, num_workers)
    return [base + (1 if i < extra else 0) for i in range(num_workers)]


def _find_spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id`` (``module:EnvId`` imports the module first).

    Raises:
        gymnasium.error.Error: Gymnasium's own error (``NameNotFound``, ``VersionNotFound``,
            ...), as ``gymnasium.make`` raises it.
    """
    finder = getattr(gym.envs.registration, "_find_spec", None)
    if finder is not None:  # Gymnasium's resolution, deprecated versions and hints included
        spec: EnvSpec = finder(env_id)
        return spec
    module, _, name = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    return gym.spec(name)


def _wrapped(make: Callable[[], Any], wrappers: Sequence[Callable[[Any], Any]]) -> Any:
    """One sub-env: ``make()``, then each wrapper in order (runs in the worker)."""
    env = make()
    for wrapper in wrappers:
        env = wrapper(env)
    return env


def make_vec(
    env_id_or_factory: str | EnvSpec | Callable[[], Any],
    num_envs: int = 1,
    vectorization_mode: str | VectorizeMode | None = None,
    vector_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[Callable[[Any], Any]] | None = None,
    *,
    num_workers: int | None = None,
    start_timeout: float = 60.0,
    timeout: float | None = DEFAULT_TIMEOUT,
    batch_size: int | None = None,
    local_envs: int = 0,
    **kwargs: Any,
) -> gym.vector.VectorEnv[Any, Any, Any]:
    """Run ``num_envs`` envs in local worker processes and drive them as one vector env.

    A drop-in for ``gymnasium.make_vec(env_id, num_envs, vectorization_mode="async")``: each
    worker runs a ``SyncVectorEnv`` of its share of the sub-envs behind a unix socket, and the
    returned :class:`~rlmesh.RemoteVectorEnv` steps all workers at once. With the same seeds
    and actions it produces the same trajectories as Gymnasium's vector envs.

    Args:
        env_id_or_factory: A registered env id (``"module:EnvId"`` imports the module
            first), an ``EnvSpec``, a zero-argument callable building one env, or an
            ``rlmesh.EnvFactory`` (class or instance).
        num_envs: Number of sub-envs.
        vectorization_mode: ``None`` or ``"async"``: rlmesh's worker processes. ``"sync"``
            and ``"vector_entry_point"`` are Gymnasium's own (in this process), returned
            from ``gymnasium.make_vec`` unchanged.
        vector_kwargs: ``{"autoreset_mode": ...}``; ``AsyncVectorEnv``'s ``copy``,
            ``shared_memory``, ``context`` and ``daemon`` are accepted and change nothing.
        wrappers: Callables applied to each sub-env in order (``gymnasium.make_vec``'s
            ``wrappers``); they run in the workers.
        num_workers: Worker processes; defaults to one per CPU core but one (the caller needs
            a core too), at least 1 and at most ``num_envs``.
        start_timeout: Seconds allowed for the workers to start.
        timeout: Seconds allowed for each step of the workers.
        batch_size: Lanes each ``recv()`` returns, for async stepping (``async_reset``,
            ``send``, ``recv``; ``docs/async-stepping.md``); default ``num_envs``. Each
            worker answers for all its sub-envs at once, so pass ``num_workers`` too.
        local_envs: Sub-envs stepped in this process, after the workers have their actions
            and while they step theirs (the last ``local_envs`` lanes). The caller's core
            otherwise waits during a step; on few cores this is what lets ``make_vec`` beat
            stepping every sub-env in this process (``docs/performance.md``). These sub-envs
            are not isolated: one that crashes the interpreter takes this process with it.
            Default 0 (every sub-env in a worker); at most ``num_envs - 1``.
        **kwargs: Keyword arguments for ``gymnasium.make`` (with an env id or spec), or the
            ``make()`` binding of an ``EnvFactory``.

    Returns:
        The vector env. Closing it stops the workers; so does interpreter exit, and the
        workers stop by themselves if this process dies.

    Raises:
        gymnasium.error.Error: For an env id that is not registered (``NameNotFound``...).
        ValueError: For an unknown vectorization mode or a bad count.
        TypeError: For arguments that do not apply.
    """
    if num_envs < 1:
        raise ValueError("num_envs must be >= 1")
    mode = VectorizeMode.ASYNC if vectorization_mode is None else _vectorize_mode(
        vectorization_mode)
    if mode != VectorizeMode.ASYNC:
        for name, value in (("batch_size", batch_size), ("local_envs", local_envs or None)):
            if value is not None:
                raise TypeError(f"{name} needs rlmesh's worker processes, not "
                                f"vectorization_mode={mode.value!r}")
        if callable(env_id_or_factory) and not isinstance(env_id_or_factory, EnvSpec):
            raise TypeError(f"vectorization_mode={mode.value!r} needs an env id: Gymnasium's "
                            "make_vec builds it")
        return gym.make_vec(env_id_or_factory, num_envs, mode, vector_kwargs, wrappers,
                            **kwargs)
    spec, factory = _factory(env_id_or_factory, kwargs)
    if wrappers:
        factory = functools.partial(_wrapped, factory, list(wrappers))
    autoreset = _autoreset_mode(vector_kwargs)
    local = _local_count(local_envs, num_envs)
    remote = num_envs - local
    workers = _worker_count(num_workers, remote)
    commands = [["vector", str(size), autoreset.value, f"{{dir}}/worker{index}.sock"]
                for index, size in enumerate(_shares(remote, workers))]
    pool = WorkerPool(factory, commands, start_timeout)
    try:
        if local:
            env = _with_local(pool.addresses, factory, local, autoreset, start_timeout,
                              timeout, batch_size)
        else:
            target = pool.addresses[0] if len(pool.addresses) == 1 else pool.addresses
            env = RemoteVectorEnv(target, connect_timeout=start_timeout, timeout=timeout,
                                  batch_size=batch_size)
    except BaseException:
        pool.close()
        raise
    env.attach(pool)
    if spec is not None:  # as gymnasium.make_vec records how the vector env was made
        made = copy.deepcopy(spec)
        made.kwargs = {**made.kwargs, **kwargs, "num_envs": num_envs,
                       "vectorization_mode": VectorizeMode.ASYNC.value}
        env.spec = made
    return env


def _factory(env_id_or_factory: Any, kwargs: dict[str, Any]
             ) -> tuple[EnvSpec | None, Callable[[], Any]]:
    """The spec (for an id or spec) and a factory of one sub-env.

    An ``rlmesh.EnvFactory`` (class or instance) builds the sub-envs, with ``kwargs`` as
    its ``make()`` binding (validated here, before any worker starts).
    """
    factory = authored(env_id_or_factory, **kwargs)
    if factory is not None:
        return None, factory.build
    if isinstance(env_id_or_factory, (str, EnvSpec)):
        spec = _find_spec(env_id_or_factory) if isinstance(env_id_or_factory, str) \
            else env_id_or_factory
        return spec, functools.partial(gym.make, spec, **kwargs)
    if callable(env_id_or_factory):
        if kwargs:
            raise TypeError("keyword arguments for gymnasium.make need an env id, not a factory")
        return None, env_id_or_factory
    raise TypeError("make_vec needs a registered env id, an EnvSpec or a zero-argument "
                    "callable")


def _autoreset_mode(vector_kwargs: dict[str, Any] | None) -> AutoresetMode:
    """The autoreset mode of ``vector_kwargs``, refusing options that mean something else."""
    options = {k: v for k, v in (vector_kwargs or {}).items() if k not in _IGNORED}
    autoreset = AutoresetMode(options.pop("autoreset_mode", AutoresetMode.NEXT_STEP))
    if options:
        raise TypeError(f"unsupported vector_kwargs: {sorted(options)} (rlmesh's workers take "
                        f"autoreset_mode; {', '.join(sorted(_IGNORED))} change nothing)")
    return autoreset


class _Joined(RemoteVectorEnv):
    """The workers' vector endpoints and, last, an in-process one (``local_envs``)."""

    def __init__(self, addresses: list[str], inline: InlineChannel, **kwargs: Any) -> None:
        self._inline = inline
        super().__init__(addresses, **kwargs)

    def _connect(self, addresses: list[str], options: ConnectOptions
                 ) -> tuple[list[Any], BaseException | None]:
        channels, error = super()._connect(addresses, options)
        return [*channels, self._inline], error


def _with_local(addresses: list[str], factory: Callable[[], Any], local: int,
                autoreset: AutoresetMode, start_timeout: float, timeout: float | None,
                batch_size: int | None) -> RemoteVectorEnv:
    """The workers' endpoints joined with ``local`` sub-envs of this process."""
    sync = LeanSyncVectorEnv([factory] * local,
                             autoreset_mode=gym.vector.AutoresetMode(autoreset.value))
    inline = InlineChannel(sync)
    try:
        return _Joined(list(addresses), inline, connect_timeout=start_timeout,
                       timeout=timeout, batch_size=batch_size)
    except BaseException:
        inline.close()
        raise


def _local_count(local_envs: int, num_envs: int) -> int:
    """Validated ``local_envs``: from 0 to ``num_envs - 1`` (a worker steps at least one)."""
    if isinstance(local_envs, bool) or not isinstance(local_envs, int):
        raise TypeError(f"local_envs must be an int, got {type(local_envs).__qualname__}")
    if not 0 <= local_envs < num_envs:
        raise ValueError(f"local_envs must be from 0 to num_envs - 1 = {num_envs - 1} (a "
                         f"worker steps at least one sub-env), got {local_envs}")
    return local_envs


def _worker_count(num_workers: int | None, num_envs: int) -> int:
    """Worker processes to start: as asked, or one per core but one (the caller's)."""
    if num_workers is not None and num_workers < 1:
        raise ValueError("num_workers must be >= 1 (or None for one per spare core)")
    workers = num_workers or (os.cpu_count() or 1) - 1
    return max(1, min(workers, num_envs))


def _vectorize_mode(value: str | VectorizeMode) -> VectorizeMode:
    try:
        return VectorizeMode(value)
    except ValueError:
        raise ValueError(f"Invalid vectorization mode: {value!r}, valid modes: "
                         f"{[mode.value for mode in VectorizeMode]}") from None
