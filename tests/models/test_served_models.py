"""Served models: ``Model.serve`` / ``rlmesh serve-model`` and ``rlmesh.RemoteModel``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.models.serve
import rlmesh.numpy
from rlmesh.testing import spawn_server
from tests.support.deps import need


def lean(observation: Any) -> int:
    return int(observation[2] > 0)


class Counting(rlmesh.numpy.Model):
    """A thread-safe deterministic policy that counts its calls."""

    def __init__(self) -> None:
        super().__init__(name="counting")
        self.lock = threading.Lock()
        self.single = 0
        self.batches = 0

    def predict(self, observation: Any) -> int:
        with self.lock:
            self.single += 1
        return lean(observation)

    def predict_batch(self, observations: Any) -> Any:
        with self.lock:
            self.batches += 1
        return (observations[:, 2] > 0).astype(np.int64)


@pytest.fixture
def served() -> Iterator[tuple[Counting, str]]:
    model = Counting()
    server = model.serve("127.0.0.1:0", block=False)
    yield model, server.address
    server.shutdown()


def reference(seeds: list[int]) -> list[float]:
    return rlmesh.run(rlmesh.numpy.Model(lean), gym.make("CartPole-v1"), seeds=seeds).rewards


def test_remote_model_plays_like_the_local_one(served: tuple[Counting, str]) -> None:
    model, address = served
    with rlmesh.RemoteModel(address) as remote:
        assert remote.name == "counting" and remote.contract["kind"] == "model"
        result = rlmesh.run(remote, gym.make("CartPole-v1"), seeds=[1, 2, 3])
        assert result.rewards == reference([1, 2, 3])
        assert model.single == result.total_steps and model.batches == 0
        # A vector env's lanes go out as one PREDICT_BATCH per step.
        lanes = rlmesh.run(remote, gym.make_vec("CartPole-v1", 3, vectorization_mode="sync"),
                           seeds=[1, 2, 3])
        assert lanes.rewards == reference([1, 2, 3])
        assert model.batches > 0 and model.single == result.total_steps


def test_run_and_evaluate_with_remote_model_and_remote_envs(served: tuple[Counting, str]
                                                            ) -> None:
    _, address = served
    envs = [spawn_server("CartPole-v1") for _ in range(2)]
    try:
        remote = rlmesh.RemoteModel(address)
        with rlmesh.numpy.RemoteEnv(envs[0].address) as env:
            assert rlmesh.run(remote, env, seeds=[4, 5]).rewards == reference([4, 5])
        result = rlmesh.evaluate(remote, [e.address for e in envs], episodes=8, seed=10)
        assert result.rewards == reference(list(range(10, 18)))
        assert len({e.endpoint for e in result.episodes}) == 2
        remote.close()
    finally:
        for env_server in envs:
            env_server.stop()


def test_concurrent_evaluators_share_one_model_endpoint(served: tuple[Counting, str]) -> None:
    _, address = served
    results: dict[int, list[float]] = {}

    def evaluator(k: int) -> None:
        with rlmesh.RemoteModel(address) as remote:
            results[k] = rlmesh.run(remote, gym.make("CartPole-v1"),
                                    seeds=[k, k + 1, k + 2]).rewards

    threads = [threading.Thread(target=evaluator, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {k: results[k] for k in range(4)} == {k: reference([k, k + 1, k + 2])
                                                 for k in range(4)}


def test_model_errors_are_typed_with_the_remote_traceback() -> None:
    def broken(observation: Any) -> int:
        if observation[0] > 0:
            raise ValueError("cannot act on this")
        return 0

    server = rlmesh.numpy.Model(broken).serve("127.0.0.1:0", block=False)
    try:
        with rlmesh.RemoteModel(server.address) as remote:
            with pytest.raises(rlmesh.RemoteModelError) as info:
                remote.predict(np.array([1.0, 0, 0, 0]))
            assert info.value.remote_type == "ValueError"
            assert "cannot act on this" in str(info.value)
            assert "Traceback" in info.value.remote_traceback
            assert isinstance(info.value, rlmesh.RemoteEnvError)
            assert remote.predict(np.array([-1.0, 0, 0, 0])) == 0  # the session goes on
    finally:
        server.shutdown()


def test_endpoint_kinds_are_checked_both_ways(served: tuple[Counting, str]) -> None:
    _, address = served
    env_server = spawn_server("CartPole-v1")
    try:
        with pytest.raises(rlmesh.EndpointKindError):
            rlmesh.RemoteModel(env_server.address)
        with pytest.raises(rlmesh.ProtocolError, match="model"):
            rlmesh.numpy.RemoteEnv(address)
    finally:
        env_server.stop()


def test_token_protects_a_model_endpoint() -> None:
    server = rlmesh.numpy.Model(lean).serve("127.0.0.1:0", block=False, token="t0k")
    try:
        with pytest.raises(rlmesh.AuthenticationError):
            rlmesh.RemoteModel(server.address)
        with rlmesh.RemoteModel(server.address, token="t0k") as remote:
            assert remote.predict(np.array([0.0, 0, 0.1, 0])) == 1
    finally:
        server.shutdown()


def test_cli_serve_model(tmp_path: Path) -> None:
    (tmp_path / "policies.py").write_text(textwrap.dedent("""
        def lean(obs):
            return int(obs[2] > 0)
    """))
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-m", "rlmesh", "serve-model", "policies:lean", "--address",
         "127.0.0.1:0", "--ready-file", str(ready)], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        address = ready.read_text().strip()
        with rlmesh.RemoteModel(address) as remote:
            assert rlmesh.run(remote, gym.make("CartPole-v1"), seeds=[3]).rewards == \
                reference([3])
    finally:
        child.terminate()
        assert child.wait(10) == 0


# -- a served model sees the values it sees locally --------------------------------------------


class Seen(rlmesh.Model):
    """A plain-values model that records the types of what it is given."""

    def __init__(self) -> None:
        super().__init__(name="seen")
        self.types: set[str] = set()

    def predict(self, observation: Any) -> Any:
        self.types.add(type(observation).__name__)
        return int(observation[2] > 0)

    def predict_batch(self, observations: Any) -> Any:
        self.types.add(type(observations).__name__)
        return [int(o[2] > 0) for o in observations]


def test_served_plain_model_sees_plain_values(serve: Any) -> None:
    model = Seen()
    server = model.serve("127.0.0.1:0", block=False)
    try:
        env_address = serve(lambda: gym.make("CartPole-v1")).address
        with rlmesh.RemoteModel(server.address) as remote:
            result = rlmesh.run(remote, env_address, seeds=range(3))
            venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
            batched = rlmesh.run(remote, venv, seeds=range(3))
        assert model.types == {"list"}  # lists, as rlmesh.Model promises, never ndarray
        assert result.rewards == reference(list(range(3)))
        assert batched.rewards == reference(list(range(3)))
    finally:
        server.shutdown()


def test_served_torch_model_sees_tensors_and_may_return_them(serve: Any) -> None:
    torch = need("torch")
    import rlmesh.torch

    seen: list[str] = []

    def predict(observation: Any) -> Any:
        seen.append(type(observation).__name__)
        return (observation[2] > 0).long()  # a tensor action

    def predict_batch(observations: Any) -> Any:
        seen.append(type(observations).__name__)
        return (observations[:, 2] > 0).long()

    model = rlmesh.torch.Model(predict, predict_batch=predict_batch, device="cpu")
    server = model.serve("127.0.0.1:0", block=False)
    try:
        env_address = serve(lambda: gym.make("CartPole-v1")).address
        with rlmesh.RemoteModel(server.address) as remote:
            result = rlmesh.run(remote, rlmesh.numpy.RemoteEnv(env_address), seeds=range(3))
            venv = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
            batched = rlmesh.run(remote, venv, seeds=range(3))
        assert set(seen) == {torch.Tensor.__name__}
        assert result.rewards == reference(list(range(3)))
        assert batched.rewards == reference(list(range(3)))
    finally:
        server.shutdown()


def test_a_model_that_returns_what_cannot_travel_is_named_a_model() -> None:
    model = rlmesh.numpy.Model(lambda observation: object() if observation[0] > 0 else 1)
    server = model.serve("127.0.0.1:0", block=False)
    try:
        with rlmesh.RemoteModel(server.address) as remote:
            with pytest.raises(rlmesh.EncodeError) as info:
                remote.predict(np.ones(4, np.float32))
            assert "the model returned" in str(info.value)
            assert "env" not in str(info.value)
            assert remote.predict(np.zeros(4, np.float32)) == 1  # the session goes on
    finally:
        server.shutdown()


def test_env_server_refuses_a_model_and_says_how_to_serve_it() -> None:
    model = rlmesh.numpy.Model(lean)
    with pytest.raises(TypeError, match=r"is a policy: serve it with model\.serve"):
        rlmesh.EnvServer(model, "127.0.0.1:0")
    server = rlmesh.EnvServer(rlmesh.models.serve.ModelSource(model), "127.0.0.1:0").start()
    try:  # the source Model.serve uses, given to EnvServer directly
        with rlmesh.RemoteModel(server.address) as remote:
            assert remote.predict(np.array([0.0, 0.0, 0.1, 0.0])) == 1
    finally:
        server.shutdown()
