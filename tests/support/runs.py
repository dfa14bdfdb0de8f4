"""Runs of episodes, and what they are checked against: hand-written Gymnasium loops.

Every kind of env a run accepts (:data:`TARGETS`) is built by :func:`make_target`: local,
through a ``RemoteEnv``, an address, local and remote vector envs, and a fleet of single-env
endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import SyncVectorEnv

import rlmesh
import rlmesh.numpy
from rlmesh.models.model import Model as NumpyModel
from tests.support.episodes import Outcome, hand_loop

SEEDS = [7, 0, 42, 7, 3, 1234, 5, 99, 11, 2]
"""Reset seeds, with a repeat (the same seed must give the same episode twice)."""


def cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1")


def angle_policy(observation: Any) -> int:
    """Push right when the pole leans right (works on lists and arrays)."""
    return int(observation[2] > 0)


def angle_batch(observations: Any) -> Any:
    return np.array([angle_policy(o) for o in observations], dtype=np.int64)


def random_loop(seeds: Sequence[int], **kwargs: Any) -> list[Outcome]:
    return hand_loop(seeds, lambda observation, sampler: sampler.sample(), **kwargs)


def angle_loop(seeds: Sequence[int], **kwargs: Any) -> list[Outcome]:
    return hand_loop(seeds, lambda observation, sampler: angle_policy(observation), **kwargs)


def outcomes(result: rlmesh.RunResult) -> list[Outcome]:
    return [(e.steps, e.reward, e.terminated, e.truncated) for e in result.episodes]


def connect(address: str) -> rlmesh.numpy.RemoteEnv:
    return rlmesh.numpy.RemoteEnv(address, connect_timeout=5, timeout=10)


def connect_vec(address: str | Sequence[str]) -> rlmesh.numpy.RemoteVectorEnv:
    return rlmesh.numpy.RemoteVectorEnv(address, connect_timeout=5, timeout=10)


TARGETS = ["local", "remote", "remote-plain", "address", "sync-vector", "vector-endpoint",
           "vector-address", "fleet"]
VECTOR_TARGETS = ["sync-vector", "vector-endpoint", "fleet"]


def make_target(kind: str, serve: Any, closing: Any,
                make: Callable[[], gym.Env[Any, Any]] = cartpole) -> tuple[Any, str | None]:
    """An env (or address) of the given kind, and the endpoint its episodes should name."""
    if kind == "local":
        return closing(make()), None
    if kind == "sync-vector":
        return closing(SyncVectorEnv([make] * 3)), None
    if kind in ("remote", "remote-plain", "address"):
        address = serve(make).address
        if kind == "address":
            return address, address
        cls = rlmesh.numpy.RemoteEnv if kind == "remote" else rlmesh.RemoteEnv
        return closing(cls(address, connect_timeout=5, timeout=10)), address
    if kind in ("vector-endpoint", "vector-address"):
        address = serve(lambda: SyncVectorEnv([make] * 3)).address
        if kind == "vector-address":
            return address, address
        return closing(connect_vec(address)), address
    if kind == "fleet":
        addresses = [serve(make).address for _ in range(2)]
        return closing(connect_vec(addresses)), ",".join(addresses)
    raise AssertionError(kind)


def assert_endpoint_free(address: str) -> None:
    """An instance endpoint takes a new client: the previous connection was closed."""
    with rlmesh.numpy.RemoteEnv(address, connect_timeout=5, timeout=10) as env:
        env.reset(seed=0)


class Counting(NumpyModel):
    """Counts predict and predict_batch calls and records what they received."""

    def __init__(self, *, batch: bool, plain: bool = False) -> None:
        super().__init__(angle_policy, predict_batch=self.record_batch if batch else None,
                         name="counting")
        self.plain = plain
        self.single: list[Any] = []
        self.batches: list[Any] = []

    def predict(self, observation: Any) -> Any:
        self.single.append(observation)
        return super().predict(observation)

    def record_batch(self, observations: Any) -> Any:
        self.batches.append(observations)
        return angle_batch(observations)


class Lifecycle(NumpyModel):
    """Records load/reset/predict/close in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []

    def load(self) -> None:
        assert self.action_space is not None and self.observation_space is not None
        self.log.append(("load", self.action_space))

    def reset(self, seed: int | None = None) -> None:
        self.log.append(("reset", seed))

    def predict(self, observation: Any) -> Any:
        self.log.append("predict")
        return angle_policy(observation)

    def close(self) -> None:
        self.log.append(("close",))


class SuccessEnv(gym.Env[int, int]):
    """Episodes of ``3 + seed % 3`` steps; the final info says success iff the seed is even.

    Earlier steps always report success, so only the final info may count.
    """

    observation_space = gym.spaces.Discrete(16)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, key: str | None = "is_success") -> None:
        self.key = key
        self.seed_value = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.seed_value, self.t = seed or 0, 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        done = self.t >= 3 + self.seed_value % 3
        info: dict[str, Any] = {}
        if self.key is not None:
            info[self.key] = np.bool_(self.seed_value % 2 == 0) if done else True
        return self.t, 1.0, done, False, info


class Recorder(rlmesh.Hooks):
    """Logs every hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.observations: dict[int, list[Any]] = {}

    def on_episode_start(self, index: int, seed: int | None, observation: Any,
                         info: dict[str, Any], endpoint: str | None) -> None:
        self.calls.append(("start", index, seed, endpoint))
        self.observations[index] = [observation]

    def on_step(self, index: int, step: int, action: Any, observation: Any, reward: float,
                terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        self.calls.append(("step", index, step, int(action), reward, terminated, truncated))
        self.observations[index].append(observation)

    def on_episode_end(self, result: rlmesh.EpisodeResult) -> None:
        self.calls.append(("end", result.index, result))

    def on_run_end(self, result: rlmesh.RunResult) -> None:
        self.calls.append(("run_end", result))
