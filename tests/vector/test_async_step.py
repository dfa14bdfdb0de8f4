"""Async stepping: ``async_reset``/``send``/``recv`` with ``batch_size`` lanes per ``recv``.

Real servers on 127.0.0.1 port 0 (in-process), real Gymnasium envs. Trajectories are compared
lane by lane with Gymnasium's own ``SyncVectorEnv`` driven by the same seeds and per-lane
actions: async stepping changes when lanes are stepped, never what they compute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import rlmesh
from rlmesh import AsyncStepError, EnvServer

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

NEXT, SAME, DISABLED = AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED


def make_cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1")


def lane_action(lane: int, t: int) -> int:
    """The action lane ``lane`` takes at its ``t``-th step (varied, so episodes differ)."""
    return (lane * 7 + t * 3 + (t // 5)) % 2


class GatedCartPole(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose steps wait for ``gate`` (a straggler the test releases at will)."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.gate = gate

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        assert self.gate.wait(20), "the test never released the straggler"
        return self.env.step(action)


@pytest.fixture
def vec() -> Iterator[Callable[..., rlmesh.RemoteVectorEnv]]:
    """Build RemoteVectorEnvs that are closed after the test."""
    envs: list[rlmesh.RemoteVectorEnv] = []

    def build(*args: Any, **kwargs: Any) -> rlmesh.RemoteVectorEnv:
        env = rlmesh.RemoteVectorEnv(*args, **kwargs)
        envs.append(env)
        return env

    yield build
    for env in envs:
        env.close()


def singles(serve: Callable[..., EnvServer], count: int) -> list[str]:
    return [serve(make_cartpole).address for _ in range(count)]


def run_async(env: rlmesh.RemoteVectorEnv, rounds: int) -> dict[int, list[tuple[Any, ...]]]:
    """Drive ``env`` with async stepping; every lane's (obs, reward, term, trunc) sequence."""
    seen: dict[int, list[tuple[Any, ...]]] = {i: [] for i in range(env.num_envs)}
    env.async_reset(seed=10)
    for _ in range(rounds):
        obs, rewards, terms, truncs, infos = env.recv()
        ids = infos["env_id"]
        assert ids.dtype == np.int32 and len(set(ids.tolist())) == len(ids)
        for k, lane in enumerate(ids.tolist()):
            seen[lane].append((obs[k].copy(), float(rewards[k]), bool(terms[k]),
                               bool(truncs[k])))
        env.send(np.array([lane_action(lane, len(seen[lane]) - 1) for lane in ids.tolist()]),
                 ids)
    return seen


def run_sync(num_envs: int, steps: int, mode: AutoresetMode) -> dict[int, list[tuple[Any, ...]]]:
    """The same lanes in Gymnasium's SyncVectorEnv, every lane stepped every time."""
    local = SyncVectorEnv([make_cartpole] * num_envs, autoreset_mode=mode)
    try:
        obs, _ = local.reset(seed=10)
        seen = {i: [(obs[i].copy(), 0.0, False, False)] for i in range(num_envs)}
        for t in range(steps):
            actions = np.array([lane_action(i, t) for i in range(num_envs)])
            obs, rewards, terms, truncs, _ = local.step(actions)
            for i in range(num_envs):
                seen[i].append((obs[i].copy(), float(rewards[i]), bool(terms[i]),
                                bool(truncs[i])))
        return seen
    finally:
        local.close()


def assert_same_lanes(got: dict[int, list[tuple[Any, ...]]],
                      want: dict[int, list[tuple[Any, ...]]]) -> None:
    for lane, steps in got.items():
        assert steps, f"lane {lane} never came back"
        for t, (mine, theirs) in enumerate(zip(steps, want[lane], strict=False)):
            np.testing.assert_array_equal(mine[0], theirs[0], err_msg=f"lane {lane} step {t}")
            assert mine[1:] == theirs[1:], f"lane {lane} step {t}: {mine[1:]} != {theirs[1:]}"


# -- stragglers ------------------------------------------------------------------------------


def test_recv_returns_the_fast_lanes_while_stragglers_wait(serve: Any, vec: Any) -> None:
    gate = threading.Event()
    slow = [serve(lambda: GatedCartPole(gate)).address for _ in range(2)]
    env = vec([*slow, *singles(serve, 4)], batch_size=2)
    env.async_reset(seed=0)
    for _ in range(3):  # resets are not gated: every lane comes back
        env.recv()
    env.send(np.zeros(6, dtype=np.int64), np.arange(6))
    fast = [env.recv()[4]["env_id"].tolist() for _ in range(2)]
    assert sorted(fast[0] + fast[1]) == [2, 3, 4, 5]  # the gated lanes 0 and 1 cannot answer
    with pytest.raises(AsyncStepError, match="in flight"):
        env.send(np.zeros(1, dtype=np.int64), [0])  # still in flight
    gate.set()
    obs, rewards, _, _, infos = env.recv()
    assert sorted(infos["env_id"].tolist()) == [0, 1]
    assert obs.shape == (2, 4) and rewards.tolist() == [1.0, 1.0]


def test_send_defaults_to_the_lanes_of_the_last_recv(serve: Any, vec: Any) -> None:
    env = vec(singles(serve, 4), batch_size=3)
    env.async_reset(seed=0)
    first = env.recv()[4]["env_id"]
    env.send(np.ones(3, dtype=np.int64))  # to ``first``
    with pytest.raises(AsyncStepError, match="in flight"):
        env.send(np.ones(3, dtype=np.int64), first)
    ids = env.recv()[4]["env_id"].tolist()
    assert len(ids) == 3 and set(ids) <= set(range(4))


# -- trajectories equal synchronous stepping's, lane by lane ---------------------------------


@pytest.mark.parametrize("mode", [NEXT, SAME], ids=lambda m: m.value)
def test_single_env_lanes_follow_sync_trajectories(serve: Any, vec: Any,
                                                   mode: AutoresetMode) -> None:
    env = vec(singles(serve, 5), batch_size=2, autoreset_mode=mode)
    got = run_async(env, rounds=150)
    longest = max(len(s) for s in got.values())
    assert_same_lanes(got, run_sync(5, longest, mode))
    assert any(term or trunc for steps in got.values() for _, _, term, trunc in steps)


def test_vector_endpoint_lanes_follow_sync_trajectories(serve: Any, vec: Any) -> None:
    addresses = [serve(lambda: SyncVectorEnv([make_cartpole] * 2)).address for _ in range(3)]
    env = vec(addresses, batch_size=2)
    got = run_async(env, rounds=120)
    longest = max(len(s) for s in got.values())
    assert_same_lanes(got, run_sync(6, longest, NEXT))


def test_step_works_before_and_after_async_stepping(serve: Any, vec: Any) -> None:
    env = vec(singles(serve, 3), batch_size=1)
    local = SyncVectorEnv([make_cartpole] * 3)
    obs, _ = env.reset(seed=3)
    want, _ = local.reset(seed=3)
    np.testing.assert_array_equal(obs, want)
    env.send(np.array([1, 1, 1]), [0, 1, 2])  # step all three the async way
    for _ in range(3):
        env.recv()
    want = local.step(np.array([1, 1, 1]))[0]
    for t in range(40):  # then synchronously: the autoreset flags carry over
        actions = np.array([lane_action(i, t) for i in range(3)])
        got = env.step(actions)
        want_all = local.step(actions)
        for mine, theirs in zip(got[:4], want_all[:4], strict=True):
            np.testing.assert_array_equal(mine, theirs)
    local.close()


# -- vector endpoints and make_vec -----------------------------------------------------------


def test_a_vector_endpoint_answers_for_all_its_lanes(serve: Any, vec: Any) -> None:
    addresses = [serve(lambda: SyncVectorEnv([make_cartpole] * 3)).address for _ in range(2)]
    env = vec(addresses, batch_size=2)  # 2 lanes: one whole endpoint of 3 is enough
    env.async_reset(seed=0)
    obs, rewards, terms, _, infos = env.recv()
    assert infos["env_id"].tolist() in ([0, 1, 2], [3, 4, 5])
    assert obs.shape == (3, 4) and rewards.shape == terms.shape == (3,)
    with pytest.raises(ValueError, match="vector endpoint"):
        env.send(np.zeros(2, dtype=np.int64), infos["env_id"][:2])


def test_one_vector_endpoint_steps_async_then_sync(serve: Any, vec: Any) -> None:
    env = vec(serve(lambda: SyncVectorEnv([make_cartpole] * 2)).address)
    assert env.batch_size == 2
    env.async_reset(seed=1)
    assert env.recv()[0].shape == (2, 4)
    env.send(np.array([0, 1]))
    _, rewards, _, _, infos = env.recv()
    assert infos["env_id"].tolist() == [0, 1] and rewards.tolist() == [1.0, 1.0]
    assert env.step(np.array([0, 0]))[0].shape == (2, 4)


def test_make_vec_takes_batch_size() -> None:
    env = rlmesh.make_vec("CartPole-v1", 4, num_workers=2, batch_size=2)
    try:
        assert env.batch_size == 2
        env.async_reset(seed=0)
        lanes = sorted(env.recv()[4]["env_id"].tolist() + env.recv()[4]["env_id"].tolist())
        assert lanes == [0, 1, 2, 3]
    finally:
        env.close()
    with pytest.raises(TypeError, match="batch_size"):
        rlmesh.make_vec("CartPole-v1", 2, vectorization_mode="sync", batch_size=1)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, 4, -1, 1.5, True])
def test_batch_size_out_of_range_is_refused(serve: Any, batch_size: Any) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        rlmesh.RemoteVectorEnv(singles(serve, 3), batch_size=batch_size)


def test_out_of_order_calls_raise_typed_errors(serve: Any, vec: Any) -> None:
    env = vec(singles(serve, 3), batch_size=2)
    with pytest.raises(AsyncStepError, match="nothing sent"):
        env.recv()
    env.async_reset(seed=0, env_ids=[0])
    with pytest.raises(AsyncStepError, match="only 1 are in flight"):
        env.recv()
    with pytest.raises(AsyncStepError, match="in flight"):
        env.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(AsyncStepError, match="in flight"):
        env.reset()
    env.async_reset(seed=1, env_ids=[1, 2])
    assert len(env.recv()[4]["env_id"]) == 2
    assert isinstance(AsyncStepError("x"), RuntimeError)


@pytest.mark.parametrize("env_ids, match", [
    ([3], "lie in"), ([-1], "lie in"), ([0, 0], "repeats"), ([0.5], "ints"), ([], "ints"),
])
def test_bad_env_ids_are_refused(serve: Any, vec: Any, env_ids: Any, match: str) -> None:
    env = vec(singles(serve, 3), batch_size=1)
    env.async_reset(seed=0)
    for _ in range(3):
        env.recv()
    with pytest.raises(ValueError, match=match):
        env.send(np.zeros(max(len(env_ids), 1), dtype=np.int64), env_ids)
    with pytest.raises(ValueError, match="actions for"):
        env.send(np.zeros(2, dtype=np.int64), [0, 1, 2])
    env.send(np.zeros(3, dtype=np.int64), [0, 1, 2])  # nothing was sent by the failures
    assert len(env.recv()[4]["env_id"]) == 1


def test_disabled_autoreset_wants_finished_lanes_reset(serve: Any, vec: Any) -> None:
    env = vec(singles(serve, 2), batch_size=1, autoreset_mode=DISABLED)
    env.async_reset(seed=0, env_ids=[0])
    env.recv()
    finished = False
    for _ in range(500):  # always push right: CartPole falls within a few dozen steps
        env.send(np.ones(1, dtype=np.int64), [0])
        _, _, terms, truncs, _ = env.recv()
        if terms[0] or truncs[0]:
            finished = True
            break
    assert finished
    with pytest.raises(AsyncStepError, match="finished"):
        env.send(np.ones(1, dtype=np.int64), [0])
    env.async_reset(env_ids=[0])
    _, rewards, terms, _, infos = env.recv()
    assert infos["env_id"].tolist() == [0] and rewards[0] == 0.0 and not terms[0]
    env.send(np.ones(1, dtype=np.int64), [0])
    assert env.recv()[1][0] == 1.0
