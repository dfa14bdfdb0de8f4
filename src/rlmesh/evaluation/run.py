"""``rlmesh.run``: a model plays planned episodes on one env (local, remote, or vector).

A single env plays the episodes one after another (:func:`play_episode`); on a vector env
every lane plays its own (:mod:`rlmesh.evaluation.lanes`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlmesh.errors import RLMeshWarning
from rlmesh.evaluation.adapting import attach, env_metadata
from rlmesh.evaluation.hooks import HookList
from rlmesh.evaluation.identity import EnvIdentity, provenance
from rlmesh.evaluation.lanes import play_lanes
from rlmesh.evaluation.policy import Policy, Predictor, as_policy
from rlmesh.evaluation.results import EpisodeResult, RunResult, success_of
from rlmesh.evaluation.watching import LiveViewer, cut_by_viewer, start_viewer
from rlmesh.server.authored import authored
from rlmesh.vector.connect import connect_endpoint
from rlmesh.viewer.view import as_view

__all__ = ["endpoint_of", "horizon_for", "open_env", "plan_seeds", "play_episode", "run"]


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
        hooks: Any = None, max_episode_seconds: float | None = None, close_env: bool = False,
        instruction: str | None = None, trust_entrypoints: bool = False,
        execution_horizon: int = 1, view: Any = None) -> RunResult:
    """Let ``model`` play episodes on ``env`` and collect the results.

    Args:
        model: An :class:`rlmesh.Model`, ``rlmesh.RANDOM_SAMPLE``, or a plain callable
            ``observation -> action``.
        env: A Gymnasium env or vector env (local or remote), or an endpoint address (a
            single-env or vector endpoint; the connection is closed afterwards).
        seeds: Reset seed of each episode (``None`` entries: the env's own randomness).
        max_episodes: Episodes to play; default ``len(seeds)``, else 1.
        max_episode_steps: Cut episodes longer than this (they count as truncated).
        hooks: :class:`rlmesh.Hooks` or :class:`rlmesh.RunHooks` (one or a list) to call
            along the way.
        max_episode_seconds: Cut episodes running longer than this (single envs).
        close_env: Close ``env`` afterwards even though the caller passed it in.
        instruction: Text for the model's ``text/instruction`` inputs, delivered by its
            adapter in place of the env's (kept in the result's settings).
        trust_entrypoints: Allow ``module:callable`` entrypoints in a model's spec.
        execution_horizon: Actions executed per predicted chunk; more than 1 needs a model
            with a chunk corner (otherwise a warning, and every step predicts).
        view: Watch the run live: ``"terminal"``, ``"http"``, ``"http:PORT"``, ``"both"``,
            ``True`` (the terminal) or an :class:`rlmesh.View` (``docs/viewer.md``). Its skip
            truncates the episode shown; its quit ends the run (``interrupted`` is set, the
            truncated episode is kept). On a vector env it shows lane 0. Best effort: a
            viewer that fails warns and the run goes on.

    Returns:
        The episodes in plan order. Ctrl+C stops the run and returns the finished episodes
        (``interrupted`` is then set).

    Raises:
        ValueError: For a ``view=`` string that names no viewer.
        TypeError: For a ``view=`` value of the wrong type.
    """
    _check_options(max_episode_seconds, execution_horizon, view)
    model = as_policy(model)
    model.execution_horizon = horizon_for(model, execution_horizon)
    plan = plan_seeds(seeds, max_episodes)
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError("max_episode_steps must be >= 1")
    hook = HookList(hooks)
    env, owned = open_env(env)
    endpoint = endpoint_of(env)
    result = RunResult(planned=len(plan), settings={
        "env": endpoint or _describe(env), **EnvIdentity.of_env(env).settings(),
        "policy": model.name, "seeds": plan, "max_episode_steps": max_episode_steps,
        **({"instruction": instruction} if instruction is not None else {}),
        **provenance()})
    try:
        vector = hasattr(env, "single_action_space") and hasattr(env, "num_envs")
        observation_space, action_space = ((env.single_observation_space,
                                            env.single_action_space) if vector else
                                           (env.observation_space, env.action_space))
        model.bind(observation_space, action_space)
        attach(model, env_metadata(env), observation_space, action_space, instruction=instruction,
               trust_entrypoints=trust_entrypoints)
        model.load()
        viewer = None
        try:
            if vector and max_episode_seconds is not None:
                raise ValueError("max_episode_seconds applies to single envs")
            viewer = start_viewer(view, env, observation_space, vector)
            if vector:
                play_lanes(model, env, list(enumerate(plan)), max_episode_steps, hook,
                           endpoint, result.episodes.append, viewer)
            else:
                _play_plan(model, env, plan, max_episode_steps, hook, endpoint,
                           max_episode_seconds, viewer, result)
            result.interrupted = result.interrupted or (
                viewer is not None and viewer.should_quit())
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            if viewer is not None:
                viewer.close()
            model.finish()
    finally:
        if owned or close_env:
            env.close()
    result.episodes.sort(key=lambda e: e.index)
    hook.on_run_end(result)
    return result


def _play_plan(model: Policy, env: Any, plan: list[int | None], max_steps: int | None,
               hooks: HookList, endpoint: str | None, max_seconds: float | None,
               viewer: LiveViewer | None, result: RunResult) -> None:
    """Play the planned episodes one after another (until the viewer's quit, if any)."""
    for index, seed in enumerate(plan):
        result.episodes.append(play_episode(model, env, index, seed, max_steps, hooks,
                                            endpoint, max_seconds, viewer))
        if viewer is not None and viewer.should_quit():
            return


def play_episode(model: Policy, env: Any, index: int, seed: int | None,
                 max_steps: int | None, hooks: HookList, endpoint: str | None,
                 max_seconds: float | None = None,
                 viewer: LiveViewer | None = None) -> EpisodeResult:
    """Play one episode on a single env: its own episode of ``model``, however it ends.

    A live ``viewer`` sees every step; its skip or quit truncates the episode.
    """
    episode, predict = model.start(seed)
    try:
        return _play(predict, env, index, seed, max_steps, hooks, endpoint,
                     max_seconds, viewer)
    finally:
        model.close_episode(episode)


def _play(predict: Predictor, env: Any, index: int, seed: int | None, max_steps: int | None,
          hooks: HookList, endpoint: str | None, max_seconds: float | None,
          viewer: LiveViewer | None) -> EpisodeResult:
    started = time.perf_counter()
    observation, info = env.reset(seed=seed)
    hooks.on_episode_start(index, seed, observation, info, endpoint)
    if viewer is not None:
        viewer.on_reset(observation)
    watch = hooks.watches_steps
    film = hooks.watches_frames
    if film and hooks.wants_frame(index):
        hooks.on_frame(index, env.render())
    step = env.step
    total, steps = 0.0, 0
    terminated = truncated = False
    clock = time.perf_counter_ns
    predict_ns = step_ns = 0
    while True:
        t0 = clock()
        action = predict(observation)
        t1 = clock()
        observation, reward, terminated, truncated, info = step(action)
        t2 = clock()
        predict_ns += t1 - t0
        step_ns += t2 - t1
        steps += 1
        total += float(reward)
        if watch:
            hooks.on_step(index, steps, action, observation, float(reward), bool(terminated),
                          bool(truncated), info, timing=((t1 - t0) / 1e6, (t2 - t1) / 1e6))
        if film and hooks.wants_frame(index):
            hooks.on_frame(index, env.render())
        if viewer is not None and cut_by_viewer(viewer, observation, reward, steps,
                                                terminated, truncated):
            truncated = not terminated
        if terminated or truncated:
            break
        if ((max_steps is not None and steps >= max_steps) or
                (max_seconds is not None and time.perf_counter() - started >= max_seconds)):
            truncated = True
            break
    result = EpisodeResult(index, seed, steps, total, bool(terminated), bool(truncated),
                           success_of(info), time.perf_counter() - started, endpoint,
                           predict_ms=predict_ns / 1e6, step_ms=step_ns / 1e6)
    hooks.on_episode_end(result)
    return result


def open_env(env: Any) -> tuple[Any, bool]:
    """``env`` itself, a connection to the address it names, or an env built by it.

    An address or an ``EnvFactory`` (class or instance) gives an owned env (closed
    afterwards).
    """
    if isinstance(env, str):
        return connect_endpoint(env), True
    factory = authored(env)
    if factory is not None:
        return factory.build(), True
    return env, False


def endpoint_of(env: Any) -> str | None:
    """The address of a remote env (a comma-joined list for a fleet), ``None`` for a local one."""
    address = getattr(env, "address", None)
    if isinstance(address, list):
        return ",".join(map(str, address))
    return str(address) if address is not None else None


def _describe(env: Any) -> str:
    spec = getattr(env, "spec", None)
    return str(getattr(spec, "id", None) or type(env).__qualname__)


def _check_options(max_episode_seconds: float | None, execution_horizon: int,
                   view: Any) -> None:
    """Refuse what cannot run; warn about a horizon no model here can use."""
    if max_episode_seconds is not None and not (
            max_episode_seconds > 0 and math.isfinite(max_episode_seconds)):
        raise ValueError("max_episode_seconds must be a positive number of seconds")
    if isinstance(execution_horizon, bool) or not isinstance(execution_horizon, int) or \
            execution_horizon < 1:
        raise ValueError("execution_horizon must be an int >= 1")
    as_view(view)


def horizon_for(model: Policy, execution_horizon: int) -> int:
    """The horizon ``model`` replays with: 1 (and a warning) if it has no chunk corner."""
    if execution_horizon > 1 and not model.chunked:
        warnings.warn("execution_horizon needs a model with a chunk corner (predict_chunk or "
                      "predict_chunk_batch); every step predicts", RLMeshWarning, stacklevel=3)
        return 1
    return execution_horizon
