"""``rlmesh.run``: a model plays planned episodes on one env (local, remote, or vector).

On a vector env every lane plays its own episodes: a lane that finishes is reset (with the
next episode's seed) while the others go on, so results per seed equal those of a single env.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlmesh.errors import EndpointKindError
from rlmesh.evaluation.hooks import HookList, Hooks
from rlmesh.evaluation.identity import EnvIdentity, provenance
from rlmesh.evaluation.results import EpisodeResult, RunResult
from rlmesh.models.model import Model, Predictor, as_model

__all__ = ["plan_seeds", "run"]


def plan_seeds(seeds: Sequence[int | None] | None, max_episodes: int | None,
               seed: int | None = None) -> list[int | None]:
    """One seed per planned episode.

    The count is ``max_episodes``, else ``len(seeds)``, else 1. With ``seed`` (and no
    ``seeds``) episode ``i`` gets ``seed + i``.

    Raises:
        ValueError: For a negative count, or fewer ``seeds`` than episodes.
    """
    if seeds is not None and seed is not None:
        raise ValueError("pass seeds or seed, not both")
    count = max_episodes if max_episodes is not None else (
        len(seeds) if seeds is not None else 1)
    if count < 0:
        raise ValueError("max_episodes must be >= 0")
    if seeds is None:
        return [None if seed is None else seed + i for i in range(count)]
    seeds = list(seeds)
    if len(seeds) < count:
        raise ValueError(f"{count} episodes planned but only {len(seeds)} seeds given")
    for s in seeds:
        if s is not None and not isinstance(s, (int, np.integer)):
            raise TypeError(f"seeds must be ints or None, not {type(s).__qualname__}")
    return [None if s is None else int(s) for s in seeds[:count]]


def run(model: Any, env: Any, *, seeds: Sequence[int | None] | None = None,
        max_episodes: int | None = None, max_episode_steps: int | None = None,
        hooks: Hooks | Sequence[Hooks] | None = None) -> RunResult:
    """Let ``model`` play episodes on ``env`` and collect the results.

    Args:
        model: An :class:`rlmesh.Model`, ``rlmesh.RANDOM_SAMPLE``, or a plain callable
            ``observation -> action``.
        env: A Gymnasium env or vector env (local or remote), or an endpoint address (a
            single-env or vector endpoint; the connection is closed afterwards).
        seeds: Reset seed of each episode (``None`` entries: the env's own randomness).
        max_episodes: Episodes to play; default ``len(seeds)``, else 1.
        max_episode_steps: Cut episodes longer than this (they count as truncated).
        hooks: :class:`rlmesh.Hooks` to call along the way.

    Returns:
        The episodes in plan order. Ctrl+C stops the run and returns the finished episodes
        (``interrupted`` is then set).
    """
    model = as_model(model)
    plan = plan_seeds(seeds, max_episodes)
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError("max_episode_steps must be >= 1")
    hook = HookList(hooks)
    env, owned = _open(env)
    endpoint = _endpoint(env)
    result = RunResult(planned=len(plan), settings={
        "env": endpoint or _describe(env), **EnvIdentity.of_env(env).settings(),
        "policy": model.name, "seeds": plan, "max_episode_steps": max_episode_steps,
        **provenance()})
    try:
        vector = hasattr(env, "single_action_space") and hasattr(env, "num_envs")
        if vector:
            model.bind(env.single_observation_space, env.single_action_space)
        else:
            model.bind(env.observation_space, env.action_space)
        model.load()
        try:
            if vector:
                play_lanes(model, env, list(enumerate(plan)), max_episode_steps, hook,
                           endpoint, result.episodes.append)
            else:
                for index, seed in enumerate(plan):
                    result.episodes.append(play_episode(
                        model, env, index, seed, max_episode_steps, hook, endpoint))
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            model.close()
    finally:
        if owned:
            env.close()
    result.episodes.sort(key=lambda e: e.index)
    hook.on_run_end(result)
    return result


def play_episode(model: Model, env: Any, index: int, seed: int | None,
                 max_steps: int | None, hooks: HookList, endpoint: str | None
                 ) -> EpisodeResult:
    """Play one episode on a single env."""
    started = time.perf_counter()
    predict = model.episode(seed)
    observation, info = env.reset(seed=seed)
    hooks.on_episode_start(index, seed, observation, info, endpoint)
    watch = hooks.watches_steps
    film = hooks.watches_frames
    if film:
        hooks.on_frame(index, env.render())
    step = env.step
    total, steps = 0.0, 0
    terminated = truncated = False
    while True:
        action = predict(observation)
        observation, reward, terminated, truncated, info = step(action)
        steps += 1
        total += float(reward)
        if watch:
            hooks.on_step(index, steps, action, observation, float(reward), bool(terminated),
                          bool(truncated), info)
        if film:
            hooks.on_frame(index, env.render())
        if terminated or truncated:
            break
        if max_steps is not None and steps >= max_steps:
            truncated = True
            break
    result = EpisodeResult(index, seed, steps, total, bool(terminated), bool(truncated),
                           success_of(info), time.perf_counter() - started, endpoint)
    hooks.on_episode_end(result)
    return result


def play_lanes(model: Model, env: Any, episodes: list[tuple[int, int | None]],
               max_steps: int | None, hooks: HookList, endpoint: str | None,
               done: Any) -> None:
    """Play ``episodes`` on the lanes of a vector env, each lane one episode at a time."""
    lanes = int(env.num_envs)
    queue = list(reversed(episodes))
    state: list[_Lane | None] = [None] * lanes
    seeds: list[int | None] = [None] * lanes
    for k in range(lanes):
        if queue:
            index, seed = queue.pop()
            state[k] = _Lane(index, seed, model.episode(seed))
            seeds[k] = seed
    observations, infos = env.reset(seed=seeds)
    for k, lane in enumerate(state):
        if lane is not None:
            hooks.on_episode_start(lane.index, lane.seed, _pick(observations, k),
                                   _lane_info(infos, k), endpoint)
    batch = model.batch() if model.batched else None
    idle = env.single_action_space
    watch = hooks.watches_steps
    film = hooks.watches_frames
    if film:
        _film(env, state, hooks)
    while any(lane is not None for lane in state):
        if batch is not None:
            actions = batch(observations)
            if isinstance(actions, list):  # a batch given as a list
                actions = np.asarray(actions)
        else:
            actions = np.stack([np.asarray(
                lane.predict(_pick(observations, k)) if lane is not None else idle.sample())
                for k, lane in enumerate(state)])
        observations, rewards, terms, truncs, infos = env.step(actions)
        if film:  # (the frame a lane shows after its last step is its final one)
            _film(env, state, hooks)
        finished = np.zeros(lanes, dtype=bool)
        for k, lane in enumerate(state):
            if lane is None:
                finished[k] = bool(terms[k] or truncs[k])
                continue
            lane.steps += 1
            lane.total += float(rewards[k])
            term, trunc = bool(terms[k]), bool(truncs[k])
            if watch:
                hooks.on_step(lane.index, lane.steps, _pick(actions, k),
                              _pick(observations, k), float(rewards[k]), term, trunc,
                              _lane_info(infos, k))
            if not (term or trunc or (max_steps is not None and lane.steps >= max_steps)):
                continue
            finished[k] = True
            result = EpisodeResult(lane.index, lane.seed, lane.steps, lane.total, term,
                                   trunc or not term, success_of(_final_info(infos, k)),
                                   time.perf_counter() - lane.started, endpoint)
            hooks.on_episode_end(result)
            done(result)
            state[k] = None
            if queue:
                index, seed = queue.pop()
                state[k] = _Lane(index, seed, model.episode(seed))
        if finished.any():  # a fresh, seeded start for every lane that ended
            seeds = [None] * lanes
            for k in map(int, np.flatnonzero(finished)):
                fresh_lane = state[k]
                if fresh_lane is not None:
                    seeds[k] = fresh_lane.seed
            observations, fresh = env.reset(seed=seeds, options={"reset_mask": finished})
            for k in map(int, np.flatnonzero(finished)):
                lane = state[k]
                if lane is not None:
                    hooks.on_episode_start(lane.index, lane.seed, _pick(observations, k),
                                           _lane_info(fresh, k), endpoint)
            if film:
                _film(env, [state[k] if finished[k] else None for k in range(lanes)], hooks)


def _film(env: Any, state: list[_Lane | None], hooks: HookList) -> None:
    """Hand each listed lane's current frame to the hooks."""
    frames = env.render()
    if frames is None:
        return
    for k, lane in enumerate(state):
        if lane is not None and k < len(frames):
            hooks.on_frame(lane.index, frames[k])


class _Lane:
    """The episode a vector env lane is playing."""

    __slots__ = ("index", "predict", "seed", "started", "steps", "total")

    def __init__(self, index: int, seed: int | None, predict: Predictor) -> None:
        self.index, self.seed, self.predict = index, seed, predict
        self.steps, self.total, self.started = 0, 0.0, time.perf_counter()


def success_of(info: Any) -> bool | None:
    """``is_success`` (or ``success``) from an episode's final info, when present."""
    if not isinstance(info, dict):
        return None
    value = info.get("is_success", info.get("success"))
    if value is None:
        return None
    try:
        return bool(value)
    except (TypeError, ValueError):
        return None


def _pick(batch: Any, k: int) -> Any:
    """Lane ``k`` of a batched value (array, dict or tuple of batches)."""
    if isinstance(batch, dict):
        return {key: _pick(value, k) for key, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_pick(value, k) for value in batch)
    return batch[k]


def _final_info(infos: Any, k: int) -> dict[str, Any]:
    """Lane ``k``'s last info of its episode: ``final_info`` under same-step autoreset."""
    if isinstance(infos, dict) and isinstance(infos.get("final_info"), dict):
        mask = infos.get("_final_info")
        if mask is None or bool(mask[k]):
            return _lane_info(infos["final_info"], k)
    return _lane_info(infos, k)


def _lane_info(infos: Any, k: int) -> dict[str, Any]:
    """Lane ``k``'s entries of a Gymnasium vector info (keys with a ``_key`` mask)."""
    if not isinstance(infos, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not bool(mask[k]):
            continue
        try:
            out[key] = _lane_info(value, k) if isinstance(value, dict) else value[k]
        except (TypeError, IndexError, KeyError):
            out[key] = value
    return out


def _open(env: Any) -> tuple[Any, bool]:
    """``env`` itself, or a connection to the address it names (then owned)."""
    if not isinstance(env, str):
        return env, False
    return connect_endpoint(env), True


def connect_endpoint(address: str, **options: Any) -> Any:
    """A numpy ``RemoteEnv``, or ``RemoteVectorEnv`` for a vector endpoint, at ``address``."""
    from rlmesh.numpy import RemoteEnv, RemoteVectorEnv

    try:
        return RemoteEnv(address, **options)
    except EndpointKindError:
        return RemoteVectorEnv(address, **options)


def _endpoint(env: Any) -> str | None:
    address = getattr(env, "address", None)
    if isinstance(address, list):
        return ",".join(map(str, address))
    return str(address) if address is not None else None


def _describe(env: Any) -> str:
    spec = getattr(env, "spec", None)
    return str(getattr(spec, "id", None) or type(env).__qualname__)
