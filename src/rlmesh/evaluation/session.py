"""``rlmesh.Session``: a model and one env, stepped by hand (the reference rlmesh's loop).

``rlmesh.session(model, env)`` and ``model.session(env)`` return one. It connects lazily (at
the first call that needs the env), resets to ``(obs, info)`` like Gymnasium, predicts with
the model, steps the env, keeps every finished episode, and plays whole episodes with
:meth:`Session.run`. :class:`rlmesh.EpisodeSession` is the same loop with rlmesh's older
``reset() -> obs``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from rlmesh.adapters.resolution import role_reader
from rlmesh.adapters.tags import EnvTags
from rlmesh.errors import AdapterResolutionError, EnvClosedError
from rlmesh.evaluation.adapting import attach, env_metadata
from rlmesh.evaluation.hooks import HookList
from rlmesh.evaluation.policy import Policy, Predictor, as_policy
from rlmesh.evaluation.results import EpisodeResult, RunResult, success_of
from rlmesh.evaluation.run import endpoint_of, horizon_for, open_env, plan_seeds
from rlmesh.evaluation.watching import LiveViewer, cut_by_viewer, start_viewer
from rlmesh.viewer.view import as_view

__all__ = ["Reader", "Session"]


class Reader:
    """Reads roles off raw observations: ``reader(obs) -> {role: value}``.

    What :meth:`Session.reader` returns: the roles are those the env's adapter tags name
    (``rlmesh.adapters``).

    Args:
        adapter: ``observation -> {role: value}``.
        roles: The roles (or model-input leaves) it reads.
        bridge: How values reach this process's framework (``None``: as they are).
    """

    def __init__(self, adapter: Any, roles: Any, bridge: Any = None) -> None:
        self._read = adapter
        self.roles = tuple(roles)
        self.bridge = bridge

    def __call__(self, observation: Any) -> dict[Any, Any]:
        """The roles of ``observation``."""
        return dict(self._read(observation))


class Session:
    """Drive ``env`` with ``model`` by hand; a context manager that closes what it opened.

    Args:
        model: An :class:`rlmesh.Model`, ``rlmesh.RANDOM_SAMPLE``, a ``RemoteModel`` or a
            callable ``observation -> action``.
        env: A Gymnasium env (local or remote) or an endpoint address.
        max_episode_steps: Truncate episodes after this many steps.
        max_episode_seconds: Truncate episodes after this many seconds.
        hooks: :class:`rlmesh.RunHooks` or :class:`rlmesh.Hooks` watching the episodes.
        close_env: Close ``env`` on :meth:`close` even if the caller passed it in.
        instruction: Text for the model's ``text/instruction`` inputs, delivered by its
            adapter in place of the env's.
        execution_horizon: Actions executed per predicted chunk (1: every step predicts).
        view: Watch the session live (``"terminal"``, ``"http"``, ``"http:PORT"``,
            ``"both"``, ``True`` or an :class:`rlmesh.View`; see :func:`rlmesh.run`). It
            starts when the env connects and closes with the session. Its skip truncates the
            episode (``step`` returns ``truncated=True``); its quit does too, and
            :meth:`run` then stops (:attr:`quit_requested` tells a hand-written loop).
        trust_entrypoints: Allow ``module:callable`` entrypoints in a model's spec.
    """

    def __init__(self, model: Any, env: Any, *, max_episode_steps: int | None = None,
                 max_episode_seconds: float | None = None, hooks: Any = None,
                 close_env: bool = False, instruction: str | None = None,
                 execution_horizon: int = 1, view: Any = None,
                 trust_entrypoints: bool = False) -> None:
        _check_limits(max_episode_steps, max_episode_seconds, execution_horizon)
        as_view(view)
        self._view = view
        self.viewer: LiveViewer | None = None
        self.model: Policy = as_policy(model)
        self.model.execution_horizon = horizon_for(self.model, execution_horizon)
        self.max_episode_steps = max_episode_steps
        self.max_episode_seconds = max_episode_seconds
        self.instruction = instruction
        self.execution_horizon = execution_horizon
        self.trust_entrypoints = trust_entrypoints
        self.hooks = HookList(hooks)
        self.episodes: list[EpisodeResult] = []
        self.observation: Any = None
        self.info: dict[str, Any] = {}
        self.endpoint: str | None = None
        self._target, self._close_env = env, close_env
        self._env: Any = None
        self._owned = False
        self._predict: Predictor | None = None
        self._seed: int | None = None
        self._steps, self._reward, self._started = 0, 0.0, 0.0
        self._predict_ns = self._step_ns = self._last_predict_ns = 0
        self._closed = False
        self._readers: dict[tuple[Any, ...], Reader] = {}

    # -- connecting ---------------------------------------------------------------------------

    @property
    def env(self) -> Any:
        """The env (connected on first use)."""
        if self._closed:
            raise EnvClosedError("this session is closed")
        if self._env is None:
            self._open()
        return self._env

    def _open(self) -> None:
        env, owned = open_env(self._target)
        if hasattr(env, "single_action_space"):
            if owned:
                env.close()
            raise TypeError("a session drives a single env; use rlmesh.run for vector envs")
        self._env, self._owned = env, owned
        self.model.bind(env.observation_space, env.action_space)
        attach(self.model, env_metadata(env), env.observation_space, env.action_space,
               instruction=self.instruction, trust_entrypoints=self.trust_entrypoints)
        self.model.load()
        self.endpoint = endpoint_of(env)
        self.viewer = start_viewer(self._view, env, env.observation_space)

    # -- the loop -----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether no episode is running (none started yet, or the last one ended)."""
        return self._predict is None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        """Start an episode (ending a running one unfinished); returns ``(obs, info)``."""
        env = self.env
        self._predict = self.model.episode(seed)
        self._seed, self._steps, self._reward = seed, 0, 0.0
        self._predict_ns = self._step_ns = self._last_predict_ns = 0
        self._started = time.perf_counter()
        self.observation, self.info = env.reset(seed=seed, options=options)
        self.hooks.on_episode_start(len(self.episodes), seed, self.observation, self.info,
                                    self.endpoint)
        if self.viewer is not None:
            self.viewer.on_reset(self.observation)
        return self.observation, self.info

    @property
    def quit_requested(self) -> bool:
        """Whether the live viewer's quit was pressed (a hand-written loop should stop)."""
        return self.viewer is not None and self.viewer.should_quit()

    def predict(self, observation: Any = None) -> Any:
        """The model's action for ``observation`` (default: the latest observation)."""
        predict = self._running()
        started = time.perf_counter_ns()
        action = predict(self.observation if observation is None else observation)
        self._last_predict_ns = time.perf_counter_ns() - started
        self._predict_ns += self._last_predict_ns
        return action

    def step(self, action: Any = None) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step with ``action`` (default: the model's); records the episode when it ends."""
        self._running()
        if action is None:
            action = self.predict()
        started = time.perf_counter_ns()
        obs, reward, terminated, truncated, info = self.env.step(action)
        step_ns = time.perf_counter_ns() - started
        self._step_ns += step_ns
        predict_ns, self._last_predict_ns = self._last_predict_ns, 0
        self.observation, self.info = obs, info
        self._steps += 1
        self._reward += float(reward)
        truncated = bool(truncated) or self._over_limit()
        if self.viewer is not None and cut_by_viewer(self.viewer, obs, reward, self._steps,
                                                     terminated, truncated):
            truncated = not terminated
        if self.hooks.watches_steps:
            self.hooks.on_step(len(self.episodes), self._steps, action, obs, float(reward),
                               bool(terminated), truncated, info,
                               timing=(predict_ns / 1e6, step_ns / 1e6))
        if terminated or truncated:
            self._record(bool(terminated), truncated)
        return obs, float(reward), bool(terminated), truncated, info

    def _running(self) -> Predictor:
        if self._closed:
            raise EnvClosedError("this session is closed")
        if self._predict is None:
            raise RuntimeError("call reset() first (no episode is running)")
        return self._predict

    def _over_limit(self) -> bool:
        steps, seconds = self.max_episode_steps, self.max_episode_seconds
        return ((steps is not None and self._steps >= steps) or
                (seconds is not None and time.perf_counter() - self._started >= seconds))

    def _record(self, terminated: bool, truncated: bool) -> None:
        result = EpisodeResult(
            len(self.episodes), self._seed, self._steps, self._reward, terminated, truncated,
            success_of(self.info), time.perf_counter() - self._started, self.endpoint,
            predict_ms=self._predict_ns / 1e6, step_ms=self._step_ns / 1e6)
        self.episodes.append(result)
        self._predict = None
        self.hooks.on_episode_end(result)

    def run(self, seeds: Sequence[int | None] | None = None, *,
            max_episodes: int | None = None, hooks: Any = None) -> RunResult:
        """Play whole episodes (one per seed; see :func:`rlmesh.run`) and return them.

        ``hooks`` watch these episodes only, after the session's own hooks.
        """
        own = self.hooks
        if hooks is not None:
            self.hooks = HookList([*own.hooks, *HookList(hooks).hooks])
        try:
            first = len(self.episodes)
            plan = plan_seeds(seeds, max_episodes)
            for seed in plan:
                self.reset(seed=seed)
                while not self.done:
                    self.step()
                if self.quit_requested:
                    break
            result = RunResult(episodes=self.episodes[first:], planned=len(plan),
                               settings={"env": self.endpoint, "policy": self.model.name},
                               interrupted=self.quit_requested)
            self.hooks.on_run_end(result)
        finally:
            self.hooks = own
        return result

    def result(self) -> RunResult:
        """Every finished episode as a :class:`RunResult`."""
        return RunResult(episodes=list(self.episodes), planned=len(self.episodes),
                         settings={"env": self.endpoint, "policy": self.model.name})

    def read(self, observation: Any, item: Any) -> Any:
        """Read one role (or model leaf) off a raw observation of this session's env.

        ``item`` is a role string (``rlmesh.adapters.EEF_POS``: the env's value as it is) or a
        model leaf (``rlmesh.adapters.State(EEF_ROT, encoding="rot6d")``: as a model with
        that leaf would get it). The env must publish adapter tags.

        Raises:
            AdapterResolutionError: If the env publishes no tags or does not tag the role.
            ValueError: If the observation lacks it.
        """
        values = self.reader(item)(observation)
        role = item if isinstance(item, str) else getattr(item, "role", item)
        if role not in values:
            raise ValueError(f"the observation has no value for {role!r}")
        return values[role]

    def reader(self, *items: Any) -> Reader:
        """A :class:`Reader` of ``items`` (roles or model leaves) for this session's env."""
        key = tuple(items)
        cached = self._readers.get(key)
        if cached is not None:
            return cached
        tags = EnvTags.from_metadata(env_metadata(self.env))
        if tags is None:
            raise AdapterResolutionError("the env publishes no adapter tags, so it has no roles "
                                         "to read; serve it with EnvServer(env, tags=...)")
        reader = Reader(role_reader(tags, self.env.observation_space, key), key)
        self._readers[key] = reader
        return reader

    def close(self) -> None:
        """Close the model, and the env if the session opened it (or ``close_env``)."""
        if self._closed:
            return
        self._closed = True
        if self.viewer is not None:
            self.viewer.close()
        if self._env is None:
            return
        self.model.finish()
        if self._owned or self._close_env:
            self._env.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _check_limits(steps: int | None, seconds: float | None, horizon: int) -> None:
    if steps is not None and steps < 1:
        raise ValueError("max_episode_steps must be >= 1")
    if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError("max_episode_seconds must be a positive number of seconds")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError("execution_horizon must be an int >= 1")
