"""``Model.allow_fusion``: concurrent sessions' predictions fused into one batched call."""

from __future__ import annotations

import threading
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh.models.fusion import Fuser, stack_lanes


class Slow(rlmesh.numpy.Model):
    """Acts on the sign of the pole angle; a batch takes a while, so others queue meanwhile."""

    def __init__(self, fuse: bool) -> None:
        super().__init__(name="slow")
        self.allow_fusion = fuse
        self.lock = threading.Lock()
        self.sizes: list[int] = []
        self.single = 0

    def predict(self, observation: Any) -> int:
        with self.lock:
            self.single += 1
        return int(observation[2] > 0)

    def predict_batch(self, observations: Any) -> Any:
        with self.lock:
            self.sizes.append(len(observations))
        time.sleep(0.002)
        return (observations[:, 2] > 0).astype(np.int64)


def reference(seeds: list[int]) -> list[float]:
    return rlmesh.run(rlmesh.numpy.Model(lambda o: int(o[2] > 0)), gym.make("CartPole-v1"),
                      seeds=seeds).rewards


def drive(address: str, sessions: int) -> dict[int, list[float]]:
    results: dict[int, list[float]] = {}

    def evaluator(k: int) -> None:
        with rlmesh.RemoteModel(address) as remote:
            results[k] = rlmesh.run(remote, gym.make("CartPole-v1"), seeds=[k, k + 10]).rewards

    threads = [threading.Thread(target=evaluator, args=(k,)) for k in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_the_default_is_no_fusion() -> None:
    assert rlmesh.Model.allow_fusion is False and rlmesh.numpy.Model.allow_fusion is False
    assert rlmesh.Model(lambda o: 0).allow_fusion is False


@pytest.mark.timeout(120)
def test_concurrent_sessions_are_fused_and_each_gets_its_own_action() -> None:
    model = Slow(fuse=True)
    server = model.serve("127.0.0.1:0", block=False)
    try:
        results = drive(server.address, 6)
    finally:
        server.shutdown()
    assert results == {k: reference([k, k + 10]) for k in range(6)}
    assert model.single == 0, "a fused model answers single observations through its batch"
    assert max(model.sizes) > 1, "concurrent sessions were never fused"
    # CartPole pays 1 per step: every step's observation went through exactly one lane.
    assert sum(model.sizes) == sum(int(sum(r)) for r in results.values())


@pytest.mark.timeout(120)
def test_without_allow_fusion_each_session_calls_predict() -> None:
    model = Slow(fuse=False)
    server = model.serve("127.0.0.1:0", block=False)
    try:
        results = drive(server.address, 3)
    finally:
        server.shutdown()
    assert results == {k: reference([k, k + 10]) for k in range(3)}
    assert model.sizes == [] and model.single == sum(int(sum(r)) for r in results.values())


def test_a_model_without_a_batch_corner_is_not_fused() -> None:
    model = rlmesh.numpy.Model(lambda o: int(o[2] > 0))
    model.allow_fusion = True
    server = model.serve("127.0.0.1:0", block=False)
    try:
        assert server.source.fuser is None  # type: ignore[attr-defined]
        with rlmesh.RemoteModel(server.address) as remote:
            assert rlmesh.run(remote, gym.make("CartPole-v1"), seeds=[3]).rewards == \
                reference([3])
    finally:
        server.shutdown()


def test_a_failing_fused_forward_fails_every_fused_caller_and_the_next_call_works() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def batch(observations: Any) -> Any:
        calls.append(len(observations))
        if len(calls) == 1:
            gate.wait(5)
            return observations * 2
        if len(calls) == 2:
            raise RuntimeError("boom")
        return observations * 2

    fuser = Fuser(batch)
    out: dict[int, Any] = {}

    def call(k: int) -> None:
        try:
            out[k] = fuser(np.array([k]))
        except RuntimeError as exc:
            out[k] = exc

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not calls:
        time.sleep(0.001)
    rest = [threading.Thread(target=call, args=(k,)) for k in (1, 2, 3)]
    for thread in rest:
        thread.start()
    while len(fuser._pending) < 3:
        time.sleep(0.001)
    gate.set()
    for thread in [first, *rest]:
        thread.join(5)
    assert out[0].tolist() == [0]
    assert calls[:2] == [1, 3]
    assert all(isinstance(out[k], RuntimeError) for k in (1, 2, 3))
    assert fuser(np.array([7])).tolist() == [14] and calls[-1] == 1


def test_stack_lanes_keeps_structure_and_refuses_ragged_lanes() -> None:
    lanes = [{"x": np.ones(2) * k, "t": f"go {k}", "n": (k, np.int64(k))} for k in range(3)]
    stacked = stack_lanes(lanes)
    assert stacked["x"].shape == (3, 2) and stacked["t"] == ["go 0", "go 1", "go 2"]
    assert stacked["n"][0].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="shape"):
        stack_lanes([np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="keys"):
        stack_lanes([{"a": 1}, {"b": 1}])
