"""``rlmesh.Model`` and ``rlmesh.numpy.Model`` in a run: batching, plain values, lifecycle.

Runs are checked against hand-written Gymnasium loops; servers are real, in-process, on
127.0.0.1 port 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

import rlmesh
import rlmesh.numpy
from rlmesh.backends.plain import PlainModel
from rlmesh.models.model import Model as NumpyModel
from tests.support.episodes import hand_loop
from tests.support.runs import (
    SEEDS,
    VECTOR_TARGETS,
    Counting,
    Lifecycle,
    angle_batch,
    angle_loop,
    angle_policy,
    cartpole,
    make_target,
    outcomes,
)

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# == 3. models ================================================================================




@pytest.mark.parametrize("kind", VECTOR_TARGETS)
def test_predict_batch_is_used_for_vector_envs(serve: Any, closing: Any, kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    model = Counting(batch=True)
    assert model.batched
    result = rlmesh.run(model, env, seeds=SEEDS[:5])
    assert outcomes(result) == angle_loop(SEEDS[:5])
    assert model.single == []
    longest = max(e.steps for e in result.episodes)
    # one call per vector step: at least the longest episode, at most all steps
    assert longest <= len(model.batches) <= result.total_steps
    assert all(isinstance(b, np.ndarray) and b.shape == (env.num_envs, 4) for b in model.batches)
    # Without predict_batch every active lane calls predict once per step.
    per_lane = Counting(batch=False)
    assert not per_lane.batched
    result = rlmesh.run(per_lane, env, seeds=SEEDS[:5])
    assert outcomes(result) == angle_loop(SEEDS[:5])
    assert per_lane.batches == []
    assert len(per_lane.single) == result.total_steps


@pytest.mark.parametrize("kind", ["local", "remote", "address"])
def test_predict_batch_is_not_used_for_single_envs(serve: Any, closing: Any,
                                                   kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    model = Counting(batch=True)
    result = rlmesh.run(model, env, seeds=SEEDS[:3])
    assert outcomes(result) == angle_loop(SEEDS[:3])
    assert model.batches == []
    assert len(model.single) == result.total_steps


def test_overridden_predict_batch_counts_as_batched(closing: Any) -> None:
    calls: list[int] = []

    class Batched(NumpyModel):
        def predict(self, observation: Any) -> Any:
            raise AssertionError("predict must not be called on lanes")

        def predict_batch(self, observations: Any) -> Any:
            calls.append(len(observations))
            return angle_batch(observations)

    model = Batched()
    assert model.batched
    result = rlmesh.run(model, closing(SyncVectorEnv([cartpole] * 3)), seeds=SEEDS[:4])
    assert outcomes(result) == angle_loop(SEEDS[:4])
    assert calls and set(calls) == {3}
    # The default predict_batch loops over predict.
    plain = NumpyModel(angle_policy)
    assert plain.predict_batch(np.array([[0, 0, 0.1, 0], [0, 0, -0.1, 0]])).tolist() == [1, 0]


@pytest.mark.parametrize("kind", ["local", "remote", "sync-vector", "vector-endpoint", "fleet"])
@pytest.mark.parametrize("batch", [False, True], ids=["per-lane", "batch"])
def test_plain_model_sees_lists_numpy_model_sees_arrays(serve: Any, closing: Any, kind: str,
                                                        batch: bool) -> None:
    env, _ = make_target(kind, serve, closing)
    vector = kind in VECTOR_TARGETS
    for plain in (True, False):
        model = Counting(batch=batch, plain=plain)
        result = rlmesh.run(model, env, seeds=SEEDS[:3])
        assert outcomes(result) == angle_loop(SEEDS[:3])
        seen = model.batches if batch and vector else model.single
        assert seen
        for value in seen:
            if plain:
                assert type(value) is list
                rows = value if batch and vector else [value]
                assert all(type(r) is list and all(type(x) is float for x in r) for r in rows)
            else:
                assert isinstance(value, np.ndarray)
                assert value.dtype == np.float32
                assert value.shape == ((env.num_envs, 4) if batch and vector else (4,))


def test_model_classes_are_exported() -> None:
    assert rlmesh.Model is PlainModel and rlmesh.Model.plain
    assert rlmesh.numpy.Model is NumpyModel and not rlmesh.numpy.Model.plain
    assert issubclass(rlmesh.Model, rlmesh.numpy.Model)
    assert isinstance(rlmesh.RANDOM_SAMPLE, rlmesh.numpy.Model)
    with pytest.raises(TypeError, match="callable"):
        rlmesh.Model("not a function")  # type: ignore[arg-type]
    assert rlmesh.Model(angle_policy).name == "angle_policy"
    assert rlmesh.Model(angle_policy, name="mine").name == "mine"


def test_plain_model_may_return_plain_box_actions(closing: Any) -> None:
    """A plain model's list actions are converted to the action space (Pendulum float32)."""
    env = closing(gym.make("Pendulum-v1"))
    result = rlmesh.run(rlmesh.Model(lambda observation: [0.5]), env, seeds=[3, 4],
                        max_episode_steps=30)
    expected = hand_loop([3, 4], lambda o, s: np.array([0.5], np.float32), max_steps=30,
                         make=lambda: gym.make("Pendulum-v1"))
    assert outcomes(result) == expected


def test_plain_model_batch_actions_are_converted_like_single_actions(closing: Any) -> None:
    """Plain batch actions (float lists) get the float32 dtype, as single actions do."""
    def make() -> gym.Env[Any, Any]:
        return gym.make("Pendulum-v1")

    expected = hand_loop([3, 4], lambda o, s: np.array([0.5], np.float32), max_steps=30,
                         make=make)
    env = closing(SyncVectorEnv([make] * 2))
    per_lane = rlmesh.Model(lambda observation: [0.5])
    assert outcomes(rlmesh.run(per_lane, env, seeds=[3, 4], max_episode_steps=30)) == expected
    batched = rlmesh.Model(lambda observation: [0.5],
                           predict_batch=lambda observations: [[0.5]] * len(observations))
    assert outcomes(rlmesh.run(batched, env, seeds=[3, 4], max_episode_steps=30)) == expected




@pytest.mark.parametrize("kind", ["local", "address", "sync-vector", "vector-endpoint"])
def test_model_load_reset_close_hooks(serve: Any, closing: Any, kind: str) -> None:
    env, _ = make_target(kind, serve, closing)
    model = Lifecycle()
    seeds = SEEDS[:5]
    result = rlmesh.run(model, env, seeds=seeds)
    assert outcomes(result) == angle_loop(seeds)
    log = model.log
    assert log[0] == ("load", gym.spaces.Discrete(2))  # the single-env space, also for lanes
    assert log[-1] == ("close",)
    assert log.count(("close",)) == 1 and sum(e[0] == "load" for e in log if e != "predict") == 1
    resets = [e[1] for e in log if isinstance(e, tuple) and e[0] == "reset"]
    if kind in [*VECTOR_TARGETS, "vector-endpoint"]:
        assert sorted(resets) == sorted(seeds)  # lanes start episodes as they free up
        assert resets[:3] == seeds[:3]
    else:
        assert resets == seeds
        # every episode: reset, then exactly its steps' predictions
        chunks: list[int] = []
        for entry in log[1:-1]:
            if entry == "predict":
                chunks[-1] += 1
            else:
                chunks.append(0)
        assert chunks == [e.steps for e in result.episodes]
    assert log.count("predict") == result.total_steps
    assert model.name == "Lifecycle" and result.settings["policy"] == "Lifecycle"


def test_model_without_predict_raises_clearly(closing: Any) -> None:
    bare = NumpyModel()
    with pytest.raises(NotImplementedError, match=r"no predict.*override predict"):
        rlmesh.run(bare, closing(cartpole()), seeds=[0])

    class NoPredict(rlmesh.Model):
        def __init__(self) -> None:
            super().__init__()
            self.closed = 0

        def close(self) -> None:
            self.closed += 1

    broken = NoPredict()
    with pytest.raises(NotImplementedError, match="NoPredict has no predict"):
        rlmesh.run(broken, closing(cartpole()), seeds=[0])
    assert broken.closed == 1  # closed despite the error
    with pytest.raises(NotImplementedError):
        rlmesh.run(NoPredict(), closing(SyncVectorEnv([cartpole] * 2)), seeds=[0])


def test_subclass_with_per_episode_state(closing: Any) -> None:
    """A model overriding ``episode`` gets a fresh closure per episode, with its seed."""

    def alternating(seed: int) -> Callable[[Any], int]:
        state = [seed % 2]

        def act(observation: Any) -> int:
            state[0] += 1
            return state[0] % 2

        return act

    class Alternate(NumpyModel):
        def episode(self, seed: int | None) -> Callable[[Any], Any]:
            return alternating(seed or 0)

    expected = []
    for seed in SEEDS[:4]:
        act = alternating(seed)
        expected += hand_loop([seed], lambda observation, sampler, act=act: act(observation))
    for env in (closing(cartpole()), closing(SyncVectorEnv([cartpole] * 2))):
        assert outcomes(rlmesh.run(Alternate(), env, seeds=SEEDS[:4])) == expected


