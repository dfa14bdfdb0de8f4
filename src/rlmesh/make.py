"""``rlmesh.make_vec``: many envs in local worker processes, as one vector env."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rlmesh.channel import DEFAULT_TIMEOUT
from rlmesh.vector import RemoteVectorEnv
from rlmesh.workers import WorkerPool

__all__ = ["make_vec"]


def _shares(num_envs: int, num_workers: int) -> list[int]:
    base, extra = divmod(num_envs, num_workers)
    return [base + (1 if i < extra else 0) for i in range(num_workers)]


def make_vec(
    env_id_or_factory: str | Callable[[], Any],
    num_envs: int = 1,
    *,
    num_workers: int | None = None,
    vector_kwargs: dict[str, Any] | None = None,
    start_timeout: float = 60.0,
    timeout: float | None = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> RemoteVectorEnv:
    """Run ``num_envs`` envs in local worker processes and drive them as one vector env.

    A drop-in for ``gymnasium.make_vec(env_id, num_envs, vectorization_mode="async")``: each
    worker runs a ``SyncVectorEnv`` of its share of the sub-envs behind a unix socket, and the
    returned :class:`~rlmesh.RemoteVectorEnv` steps all workers at once. With the same seeds
    and actions it produces the same trajectories as Gymnasium's vector envs.

    Args:
        env_id_or_factory: A registered env id, or a zero-argument callable building one env.
        num_envs: Number of sub-envs.
        num_workers: Worker processes; defaults to one per CPU core but one (the caller needs
            a core too), at least 1 and at most ``num_envs``.
        vector_kwargs: ``{"autoreset_mode": ...}`` as for ``gymnasium.make_vec``.
        start_timeout: Seconds allowed for the workers to start.
        timeout: Seconds allowed for each step of the workers.
        **kwargs: Keyword arguments for ``gymnasium.make`` (with an env id).

    Returns:
        The vector env. Closing it stops the workers; so does interpreter exit, and the
        workers stop by themselves if this process dies.
    """
    if num_envs < 1:
        raise ValueError("num_envs must be >= 1")
    if isinstance(env_id_or_factory, str):
        factory: Callable[[], Any] = functools.partial(gym.make, env_id_or_factory, **kwargs)
    elif callable(env_id_or_factory):
        if kwargs:
            raise TypeError("keyword arguments for gymnasium.make need an env id, not a factory")
        factory = env_id_or_factory
    else:
        raise TypeError("make_vec needs a registered env id or a zero-argument callable")
    options = dict(vector_kwargs or {})
    mode = AutoresetMode(options.pop("autoreset_mode", AutoresetMode.NEXT_STEP))
    if options:
        raise TypeError(f"unsupported vector_kwargs: {sorted(options)}")
    if num_workers is not None and num_workers < 1:
        raise ValueError("num_workers must be >= 1 (or None for one per spare core)")
    # One core stays free for the caller, which steps every worker in turn.
    workers = num_workers or (os.cpu_count() or 1) - 1
    workers = max(1, min(workers, num_envs))
    commands = [["vector", str(size), mode.value, f"{{dir}}/worker{index}.sock"]
                for index, size in enumerate(_shares(num_envs, workers))]
    pool = WorkerPool(factory, commands, start_timeout)
    try:
        target = pool.addresses[0] if len(pool.addresses) == 1 else pool.addresses
        env = RemoteVectorEnv(target, connect_timeout=start_timeout, timeout=timeout)
    except BaseException:
        pool.close()
        raise
    env.attach(pool)
    return env
