"""``rlmesh.session``: driving a model's episodes by hand, step by step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

import rlmesh
import rlmesh.numpy
from tests.support.episodes import hand_loop
from tests.support.runs import (
    SEEDS,
    Counting,
    Lifecycle,
    angle_loop,
    angle_policy,
    assert_endpoint_free,
    cartpole,
    connect,
    connect_vec,
    make_target,
    outcomes,
    random_loop,
)

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# == 8. rlmesh.session ========================================================================


@pytest.mark.parametrize("kind", ["local", "remote", "address"])
def test_session_drives_episodes_by_hand(serve: Any, closing: Any, kind: str) -> None:
    env, endpoint = make_target(kind, serve, closing)
    model = Lifecycle()
    with rlmesh.EpisodeSession(model, env) as s:  # (rlmesh's own: eager, reset -> obs)
        assert isinstance(s, rlmesh.Session)
        assert model.log == [("load", gym.spaces.Discrete(2))]
        assert s.done and s.episodes == []
        observation = s.reset(seed=7)
        assert not s.done
        assert isinstance(observation, np.ndarray) and observation.shape == (4,)
        assert model.log[-1] == ("reset", 7)
        steps = 0
        while not s.done:  # explicit predict, then step with that action
            action = s.predict()
            assert action == angle_policy(s.observation)
            assert s.predict(s.observation) == action
            _, reward, terminated, truncated, info = s.step(action)
            assert type(reward) is float and isinstance(info, dict)
            steps += 1
        assert terminated or truncated
        s.reset(seed=0)
        while not s.done:  # the model's action
            s.step()
        assert [(e.index, e.seed) for e in s.episodes] == [(0, 7), (1, 0)]
        assert outcomes(s.result()) == angle_loop([7, 0])
        assert s.episodes[0].steps == steps
        assert {e.endpoint for e in s.episodes} == {endpoint}
        result = s.result()
        assert result.planned == 2 and result.complete
        assert result.settings["policy"] == "Lifecycle"
        with pytest.raises(RuntimeError, match="reset"):
            s.step()
        with pytest.raises(RuntimeError, match="reset"):
            s.predict()
    assert model.log.count(("close",)) == 1 and model.log[-1] == ("close",)
    s.close()  # idempotent
    assert model.log.count(("close",)) == 1
    assert [e[1] for e in model.log if isinstance(e, tuple) and e[0] == "reset"] == [7, 0]


def test_session_step_without_action_uses_the_model(closing: Any) -> None:
    model = Counting(batch=False)
    s = rlmesh.session(model, closing(cartpole()))
    s.reset(seed=3)
    while not s.done:
        s.step()
    assert len(model.single) == s.episodes[0].steps
    assert outcomes(s.result()) == angle_loop([3])
    # An explicit action is taken as given: always push left.
    s.reset(seed=3)
    while not s.done:
        s.step(0)
    assert len(model.single) == s.episodes[0].steps  # the model was not asked
    assert outcomes(s.result())[1] == hand_loop([3], lambda o, sampler: 0)[0]
    s.close()


def test_session_random_sample_matches_run(serve: Any, closing: Any) -> None:
    address = serve(cartpole).address
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, address) as s:
        for seed in SEEDS[:4]:
            s.reset(seed=seed)
            while not s.done:
                s.step()
    assert outcomes(s.result()) == random_loop(SEEDS[:4])
    with rlmesh.session(rlmesh.Model(angle_policy), address) as s:  # plain model, numpy env
        s.reset(seed=1)
        assert type(s.predict()) is int
        while not s.done:
            s.step()
    assert outcomes(s.result()) == angle_loop([1])


def test_session_step_before_reset_raises(closing: Any) -> None:
    with rlmesh.session(rlmesh.RANDOM_SAMPLE, closing(cartpole())) as s:
        with pytest.raises(RuntimeError, match=r"reset\(\) first"):
            s.step()
        with pytest.raises(RuntimeError, match=r"reset\(\) first"):
            s.step(0)
        with pytest.raises(RuntimeError, match=r"reset\(\) first"):
            s.predict()
        assert s.episodes == []


def test_session_on_an_address_closes_its_connection(serve: Any) -> None:
    address = serve(cartpole()).address  # one instance
    s = rlmesh.session(rlmesh.RANDOM_SAMPLE, address)
    s.reset(seed=0)
    with pytest.raises(rlmesh.EnvBusyError):
        connect(address)
    s.close()
    assert_endpoint_free(address)


def test_session_refuses_vector_envs(serve: Any, closing: Any) -> None:
    with pytest.raises(TypeError, match="single env"):
        rlmesh.EpisodeSession(rlmesh.RANDOM_SAMPLE, closing(SyncVectorEnv([cartpole] * 2)))
    lazy = rlmesh.session(rlmesh.RANDOM_SAMPLE, closing(SyncVectorEnv([cartpole] * 2)))
    with pytest.raises(TypeError, match="single env"):  # (refused at first use)
        lazy.reset(seed=0)
    vector = serve(SyncVectorEnv([cartpole] * 2)).address  # one instance
    with pytest.raises(TypeError, match="single env"):
        rlmesh.session(rlmesh.RANDOM_SAMPLE, vector).reset()
    closing(connect_vec(vector)).reset(seed=0)  # the refused session let go of the endpoint
    with pytest.raises(TypeError, match="single env"):
        rlmesh.EpisodeSession(rlmesh.RANDOM_SAMPLE,
                              closing(connect_vec([serve(cartpole).address])))


