"""``ConnectOptions``: one client configuration, validated, shared by every client."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest

import rlmesh
from rlmesh.numpy import RemoteEnv, RemoteVectorEnv


def test_defaults_validation_and_infinity() -> None:
    options = rlmesh.ConnectOptions()
    assert (options.connect_timeout, options.timeout) == (10.0, 60.0)
    assert rlmesh.ConnectOptions(timeout=math.inf, connect_timeout=math.inf).timeout is None
    for bad in ({"timeout": 0}, {"connect_timeout": -1}, {"max_message_bytes": 10},
                {"spin": -1}):
        with pytest.raises(ValueError):
            rlmesh.ConnectOptions(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rlmesh.ConnectOptions(timeout="soon")  # type: ignore[arg-type]
    assert "secret" not in repr(rlmesh.ConnectOptions(token="secret"))
    assert options.replace(timeout=5).timeout == 5 and options.timeout == 60.0


def test_rlmesh_spin_is_read_when_options_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMESH_SPIN", "7")
    assert rlmesh.ConnectOptions().spin == 7
    monkeypatch.setenv("RLMESH_SPIN", "0")
    assert rlmesh.ConnectOptions().spin == 0


def test_every_client_takes_options(serve: object) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))  # type: ignore[operator]
    options = rlmesh.ConnectOptions(timeout=3)
    with RemoteEnv(server.address, options=options) as env:
        assert env.timeout == 3
        copy = gym.make(env.spec)  # the spec carries the same options
        assert copy.unwrapped.timeout == 3
        copy.close()
    with RemoteVectorEnv([server.address] * 2, options=options) as venv:
        assert venv.reset(seed=0)[0].shape == (2, 4)
    result = rlmesh.evaluate(rlmesh.RANDOM_SAMPLE, server.address, episodes=2, options=options)
    assert result.complete
    with pytest.raises(TypeError, match="either options= or timeout="):
        RemoteEnv(server.address, options=options, timeout=9)
