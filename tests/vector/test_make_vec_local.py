"""``make_vec(local_envs=k)``: the last ``k`` sub-envs stepped in the caller's process.

They must be indistinguishable from the workers' sub-envs: the same trajectories as
Gymnasium's own vector envs (strictly compared), the same errors, the same attribute access,
the same async stepping, and closed with the vector env.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import rlmesh
from rlmesh import protocol as P
from rlmesh.envs import DictObsEnv
from rlmesh.errors import EncodeError, InvalidActionError, RemoteEnvError, ResetNeededError
from rlmesh.vector.inline import InlineChannel
from tests.support.processes import live_children, wait_dead
from tests.support.values import assert_same_values
from tests.vector.test_make_vec import lockstep

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc (Linux)"),
    pytest.mark.timeout(30),
]

CLOSED: list[int] = []
"""Ids of the :class:`Counted` envs closed in this process."""


class Counted(DictObsEnv):
    """A DictObsEnv that notes its close (visible only for envs in this process)."""

    def close(self) -> None:
        CLOSED.append(id(self))
        super().close()


@pytest.mark.parametrize("local", [1, 4, 7])
def test_cartpole_matches_gymnasium_sync(closing: Any, local: int) -> None:
    remote = closing(rlmesh.make_vec("CartPole-v1", 8, num_workers=1, local_envs=local))
    expected = closing(gym.make_vec("CartPole-v1", 8, vectorization_mode="sync"))
    assert len(remote.workers.pids) == 1
    assert isinstance(remote._fleet.channels[-1], InlineChannel)
    counts = lockstep(remote, expected)
    assert counts["ends"] > 20, "the run never exercised autoreset"


def test_same_step_dict_obs_final_info_matches_sync(closing: Any) -> None:
    mode = AutoresetMode.SAME_STEP
    remote = closing(rlmesh.make_vec(DictObsEnv, 6, num_workers=2, local_envs=2,
                                     vector_kwargs={"autoreset_mode": mode}))
    expected = closing(SyncVectorEnv([DictObsEnv] * 6, autoreset_mode=mode))
    assert len(remote.workers.pids) == 2
    assert remote.metadata["autoreset_mode"] == mode
    counts = lockstep(remote, expected, steps=160, reseed_at=None)
    assert counts["final_obs"] > 0


def test_reset_mask_reaches_only_the_masked_lanes(closing: Any) -> None:
    remote = closing(rlmesh.make_vec("CartPole-v1", 4, num_workers=1, local_envs=2))
    expected = closing(gym.make_vec("CartPole-v1", 4, vectorization_mode="sync"))
    for env in (remote, expected):
        env.reset(seed=3)
        for _ in range(3):
            env.step(np.array([1, 0, 1, 0]))
    mask = np.array([False, False, True, False])  # a lane of this process only
    got = remote.reset(seed=[None, None, 40, None], options={"reset_mask": mask})
    want = expected.reset(seed=[None, None, 40, None], options={"reset_mask": mask})
    assert_same_values(got[0], want[0], "masked reset obs")
    assert_same_values(got[1], want[1], "masked reset info", key_order=False)


def test_attributes_reach_local_lanes(closing: Any) -> None:
    env = closing(rlmesh.make_vec("CartPole-v1", 4, num_workers=1, local_envs=2))
    env.reset(seed=0)
    assert env.get_attr("render_mode") == (None,) * 4
    with pytest.raises(EncodeError, match=r"env\.spec"):  # as from a worker: not data
        env._fleet.channels[-1].request(P.OP_GET_ATTR, "spec")
    env.set_attr("gravity", [9.8, 9.8, 1.0, 2.0])
    assert env.get_attr("gravity") == (9.8, 9.8, 1.0, 2.0)
    assert env.call("gravity") == (9.8, 9.8, 1.0, 2.0)


def test_an_invalid_action_in_a_local_lane_is_refused_and_the_env_goes_on(closing: Any
                                                                          ) -> None:
    env = closing(rlmesh.make_vec("CartPole-v1", 4, num_workers=1, local_envs=2))
    env.reset(seed=0)
    with pytest.raises(InvalidActionError):
        env.step(np.array([0, 1, 7, 0]))  # lane 2 is stepped in this process
    obs, rewards, *_ = env.step(np.array([0, 1, 1, 0]))
    assert obs.shape == (4, 4) and rewards.tolist() == [1.0] * 4


class Exploding(DictObsEnv):
    """A DictObsEnv whose step raises."""

    def step(self, action: Any) -> Any:
        raise RuntimeError("boom")


def test_errors_of_local_lanes_are_the_served_errors(closing: Any) -> None:
    env = closing(rlmesh.make_vec(Exploding, 3, num_workers=1, local_envs=1))
    inline = env._fleet.channels[-1]
    with pytest.raises(ResetNeededError):  # the session's own check, as in a worker
        inline.request(P.OP_STEP, np.zeros(1, dtype=np.int64))
    env.reset(seed=0)
    with pytest.raises(RemoteEnvError, match="boom") as raised:
        inline.request(P.OP_STEP, np.zeros(1, dtype=np.int64))
    assert "RuntimeError" in (raised.value.remote_traceback or "")
    with pytest.raises(RemoteEnvError, match="boom"):
        env.step(np.zeros(3, dtype=np.int64))


def test_async_stepping_with_local_lanes(closing: Any) -> None:
    env = closing(rlmesh.make_vec("CartPole-v1", 4, num_workers=1, local_envs=2,
                                  batch_size=2))
    env.async_reset(seed=0)
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    # The local lanes answer at once; a worker's lanes come back when its process has run
    # (on a loaded machine that can take many local steps), and then they are collected.
    while seen != {0, 1, 2, 3} and time.monotonic() < deadline:
        obs, _, _, _, info = env.recv()
        ids = info["env_id"]
        assert obs.shape == (2, 4) and len(ids) == 2
        seen.update(int(i) for i in ids)
        env.send(np.zeros(len(ids), dtype=np.int64), ids)
    assert seen == {0, 1, 2, 3}


def test_close_closes_the_local_envs_and_stops_the_workers() -> None:
    CLOSED.clear()
    env = rlmesh.make_vec(Counted, 3, num_workers=1, local_envs=2)
    env.reset(seed=0)
    pids = list(env.workers.pids)
    env.close()
    assert len(CLOSED) == 2  # the worker's own env closes in its process
    assert wait_dead(pids, within=10) == []


@pytest.mark.parametrize(("value", "error"), [(-1, ValueError), (4, ValueError),
                                              (9, ValueError), (True, TypeError),
                                              (1.0, TypeError)])
def test_bad_local_envs_raise_before_anything_starts(value: Any, error: type) -> None:
    before = live_children(os.getpid())
    with pytest.raises(error, match="local_envs"):
        rlmesh.make_vec("CartPole-v1", 4, local_envs=value)
    assert live_children(os.getpid()) <= before  # no worker was started


def test_local_envs_need_the_worker_processes() -> None:
    with pytest.raises(TypeError, match="local_envs"):
        rlmesh.make_vec("CartPole-v1", 4, vectorization_mode="sync", local_envs=2)
