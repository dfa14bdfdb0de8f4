"""``rlmesh.envs.CpuCost``: the benchmarks' heavier CartPole (a fixed CPU cost per step)."""

from __future__ import annotations

import functools
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
from rlmesh import envs
from rlmesh.envs import CpuCost, spin_cpu


class FakeClock:
    """A clock that advances by ``tick`` seconds on every read."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.now = 100.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.tick
        return self.now


@pytest.mark.parametrize(("seconds", "tick"), [(200e-6, 1e-6), (200e-6, 7e-6), (1e-3, 1e-4)])
def test_spin_cpu_reads_the_clock_until_the_cost_is_spent(seconds: float, tick: float) -> None:
    clock = FakeClock(tick)
    start = clock.now
    reads = spin_cpu(seconds, clock)
    assert reads == clock.reads - 1  # the reads after the one that set the deadline
    spent = clock.now - start
    # It stops at the first read at or past the cost, never earlier and one tick later at most.
    assert spent - tick >= seconds - 1e-12
    assert spent - 2 * tick < seconds


def test_spin_cpu_of_zero_returns_after_one_read() -> None:
    clock = FakeClock(1e-6)
    assert spin_cpu(0.0, clock) == 1
    assert clock.reads == 2


@pytest.mark.parametrize("bad", [-1e-6, float("nan"), float("inf")])
def test_a_bad_cost_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        spin_cpu(bad)
    with pytest.raises(ValueError, match="cost_us"):
        CpuCost(gym.make("CartPole-v1"), cost_us=bad)


def test_the_wrapper_spends_its_cost_and_keeps_the_env_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spent: list[float] = []
    monkeypatch.setattr(envs, "spin_cpu", lambda seconds: spent.append(seconds) or 1)
    plain = gym.make("CartPole-v1")
    costly = CpuCost(gym.make("CartPole-v1"), cost_us=250)
    np.testing.assert_array_equal(plain.reset(seed=3)[0], costly.reset(seed=3)[0])
    for action in [0, 1, 1, 0, 1] * 4:
        a, b = plain.step(action), costly.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
    assert spent == [pytest.approx(250e-6)] * 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="make_vec workers need Linux")
@pytest.mark.timeout(60)
def test_make_vec_runs_the_costly_env_in_its_workers_like_gymnasium() -> None:
    """The benchmark's configuration: the wrapper crosses to rlmesh's worker processes."""
    wrappers: list[Any] = [functools.partial(CpuCost, cost_us=5)]
    ours = rlmesh.make_vec("CartPole-v1", 4, wrappers=wrappers)
    theirs = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync", wrappers=wrappers)
    try:
        np.testing.assert_array_equal(ours.reset(seed=1)[0], theirs.reset(seed=1)[0])
        ours.action_space.seed(2)
        for _ in range(40):
            action = ours.action_space.sample()
            a, b = ours.step(action), theirs.step(action)
            for x, y in zip(a[:4], b[:4], strict=True):
                np.testing.assert_array_equal(x, y)
        assert theirs.envs[0].get_wrapper_attr("cost_us") == 5
    finally:
        ours.close()
        theirs.close()
