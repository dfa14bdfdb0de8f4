"""``rlmesh.session``: drive episodes by hand, one call at a time, with results kept."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rlmesh.evaluation.policy import Predictor, as_policy
from rlmesh.evaluation.results import EpisodeResult, RunResult, success_of
from rlmesh.evaluation.run import endpoint_of, open_env

__all__ = ["EpisodeSession", "session"]


class EpisodeSession:
    """A model and a (single) env, stepped by hand; finished episodes are recorded.

    Example::

        with rlmesh.session(model, "127.0.0.1:5555") as s:
            s.reset(seed=0)
            while not s.done:
                s.step()              # the model's action; or s.step(my_action)
        print(s.episodes[0].reward)
    """

    def __init__(self, model: Any, env: Any) -> None:
        self.model = as_policy(model)
        self.env, self._owned = open_env(env)
        if hasattr(self.env, "single_action_space"):
            if self._owned:
                self.env.close()
            raise TypeError("rlmesh.session drives a single env; use rlmesh.run for vector "
                            "envs")
        self.model.bind(self.env.observation_space, self.env.action_space)
        self.model.load()
        self.endpoint = endpoint_of(self.env)
        self.episodes: list[EpisodeResult] = []
        self.observation: Any = None
        self.info: dict[str, Any] = {}
        self._predict: Predictor | None = None
        self._seed: int | None = None
        self._steps = 0
        self._reward = 0.0
        self._started = 0.0
        self._closed = False

    @property
    def done(self) -> bool:
        """Whether no episode is running (none started yet, or the last one ended)."""
        return self._predict is None

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        """Start an episode; returns its first observation."""
        self._predict = self.model.episode(seed)
        self._seed, self._steps, self._reward = seed, 0, 0.0
        self._started = time.perf_counter()
        self.observation, self.info = self.env.reset(seed=seed, options=options)
        return self.observation

    def predict(self, observation: Any = None) -> Any:
        """The model's action for ``observation`` (default: the latest observation)."""
        if self._predict is None:
            raise RuntimeError("call reset() first (no episode is running)")
        return self._predict(self.observation if observation is None else observation)

    def step(self, action: Any = None) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step with ``action`` (default: the model's); records the episode when it ends."""
        if self._predict is None:
            raise RuntimeError("call reset() first (no episode is running)")
        if action is None:
            action = self._predict(self.observation)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.observation, self.info = obs, info
        self._steps += 1
        self._reward += float(reward)
        if terminated or truncated:
            self.episodes.append(EpisodeResult(
                len(self.episodes), self._seed, self._steps, self._reward, bool(terminated),
                bool(truncated), success_of(info), time.perf_counter() - self._started,
                self.endpoint))
            self._predict = None
        return obs, float(reward), bool(terminated), bool(truncated), info

    def result(self) -> RunResult:
        """The finished episodes as a :class:`RunResult`."""
        return RunResult(episodes=list(self.episodes), planned=len(self.episodes),
                         settings={"env": self.endpoint, "policy": self.model.name})

    def close(self) -> None:
        """Close the model (and the env, if the session opened it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.model.close()
        if self._owned:
            self.env.close()

    def __enter__(self) -> EpisodeSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def session(model: Any, env: Any) -> EpisodeSession:
    """Drive ``env`` by hand with ``model`` (an env, a remote env, or an address)."""
    return EpisodeSession(model, env)
