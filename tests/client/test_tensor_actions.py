"""``rlmesh.Tensor`` values are accepted as actions by every client (the reference's value)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("client", [rlmesh.numpy.RemoteEnv, rlmesh.RemoteEnv],
                         ids=["numpy", "plain"])
def test_a_tensor_action_steps_like_the_array_it_holds(serve: Any, client: Any) -> None:
    server = serve(lambda: gym.make("MountainCarContinuous-v0"))
    local = gym.make("MountainCarContinuous-v0")
    local.reset(seed=3)
    with client(server.address) as env:
        env.reset(seed=3)
        for push in (0.5, -1.0, 0.25):
            action = np.array([push], np.float32)
            tensor = rlmesh.numpy.from_array(action)
            assert isinstance(tensor, rlmesh.Tensor)
            remote = env.step(tensor)
            expected = local.step(action)
            np.testing.assert_array_equal(np.asarray(remote[0]), expected[0])
            assert remote[1] == pytest.approx(expected[1])


def test_a_tensor_outside_the_action_space_is_refused(serve: Any) -> None:
    server = serve(lambda: gym.make("MountainCarContinuous-v0"))
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        env.reset(seed=0)
        with pytest.raises(rlmesh.InvalidActionError):
            env.step(rlmesh.numpy.from_array(np.array([0.1, 0.2], np.float32)))
        env.step(rlmesh.numpy.from_array(np.array([0.1], np.float32)))  # still usable
