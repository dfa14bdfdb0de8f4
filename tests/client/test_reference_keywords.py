"""The reference API's client keywords, next to rlmesh's own.

The reference rlmesh documents ``RemoteEnv``/``RemoteVectorEnv``/``RemoteModel`` with
``host=``, ``port=``, ``path=``, ``transport=``, ``connect_timeout_seconds=`` and
``request_timeout_seconds=``; ``shutdown(reason) -> bool``; ``render(env_index=)``; and
``RemoteModel`` in every backend module. Each statement below is checked against a real
server on 127.0.0.1 (or a unix socket), together with the rlmesh spelling it stands beside.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.models.serve
import rlmesh.numpy
from rlmesh import EnvServer, ServeOptions
from tests.support.deps import need

pytestmark = pytest.mark.timeout(60)

ServeFn = Callable[..., EnvServer]


def _port(server: EnvServer) -> int:
    return int(server.address.rsplit(":", 1)[1])


def _cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1", render_mode="rgb_array")


# -- host=, port=, path=, transport= -----------------------------------------------------------

@pytest.mark.parametrize("cls", [rlmesh.RemoteEnv, rlmesh.numpy.RemoteEnv])
def test_remote_env_connects_by_host_and_port(serve: ServeFn, cls: Any) -> None:
    server = serve(_cartpole)
    with cls(host="127.0.0.1", port=_port(server)) as env:
        assert env.address == server.address
        env.reset(seed=0)
    with cls(port=_port(server), transport="tcp") as env:  # host defaults to 127.0.0.1
        env.reset(seed=0)


def test_remote_env_connects_by_unix_path(tmp_path: Path) -> None:
    sock = str(tmp_path / "env.sock")
    with EnvServer(_cartpole, path=sock) as server:
        server.start()
        with rlmesh.numpy.RemoteEnv(path=sock) as env:
            assert env.address == f"unix://{sock}"
            obs, _ = env.reset(seed=0)
            assert obs.shape == (4,)
        with rlmesh.numpy.RemoteEnv(path=sock, transport="unix") as env:
            env.reset(seed=0)


@pytest.mark.parametrize("kwargs", [
    {"address": "127.0.0.1:1", "host": "127.0.0.1"},
    {"address": "127.0.0.1:1", "port": 1},
    {"address": "127.0.0.1:1", "transport": "tcp"},
    {"path": "/tmp/x.sock", "port": 1},
    {"path": "/tmp/x.sock", "transport": "tcp"},
    {"transport": "unix"},
    {"transport": "udp", "port": 1},
    {"host": "127.0.0.1"},
    {"port": 70000},
    {"address": ""},
])
def test_conflicting_or_incomplete_endpoints_are_value_errors(kwargs: dict[str, Any]) -> None:
    for cls in (rlmesh.numpy.RemoteEnv, rlmesh.numpy.RemoteVectorEnv, rlmesh.RemoteModel):
        with pytest.raises(ValueError):
            cls(**kwargs)


def test_naming_no_endpoint_is_a_type_error() -> None:
    for cls in (rlmesh.numpy.RemoteEnv, rlmesh.numpy.RemoteVectorEnv, rlmesh.RemoteModel):
        with pytest.raises(TypeError, match="name the endpoint"):
            cls()
    with pytest.raises(TypeError, match="port must be an int"):
        rlmesh.numpy.RemoteEnv(port="5555")  # type: ignore[arg-type]


def test_a_list_of_addresses_takes_no_helpers() -> None:
    with pytest.raises(ValueError, match="list of addresses"):
        rlmesh.numpy.RemoteVectorEnv(["127.0.0.1:1"], port=1)


# -- the *_seconds timeouts -------------------------------------------------------------------

def test_seconds_spellings_set_the_same_limits(serve: ServeFn) -> None:
    server = serve(_cartpole)
    with rlmesh.numpy.RemoteEnv(server.address, connect_timeout_seconds=3,
                                request_timeout_seconds=7) as env:
        assert env.timeout == 7
    with rlmesh.numpy.RemoteEnv(server.address, request_timeout_seconds=math.inf) as env:
        assert env.timeout is None
    with rlmesh.numpy.RemoteEnv(server.address) as env:  # not given: rlmesh's defaults
        assert env.timeout == rlmesh.ConnectOptions().timeout


@pytest.mark.parametrize("kwargs", [
    {"timeout": 5, "request_timeout_seconds": 6},
    {"connect_timeout": 5, "connect_timeout_seconds": 6},
    {"options": rlmesh.ConnectOptions(), "request_timeout_seconds": 6},
])
def test_one_limit_under_two_names_is_a_type_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="not both"):
        rlmesh.numpy.RemoteEnv("127.0.0.1:1", **kwargs)
    with pytest.raises(TypeError, match="not both"):
        rlmesh.numpy.RemoteVectorEnv("127.0.0.1:1", **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), -1.0, 0])
def test_nan_or_non_positive_seconds_are_value_errors(bad: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        rlmesh.numpy.RemoteEnv("127.0.0.1:1", request_timeout_seconds=bad)
    with pytest.raises(ValueError, match="positive number of seconds"):
        rlmesh.numpy.RemoteEnv("127.0.0.1:1", connect_timeout=bad)


# -- shutdown(reason) -> bool -------------------------------------------------------------------

def test_shutdown_with_a_reason_returns_false_when_refused(serve: ServeFn) -> None:
    server = serve(_cartpole)
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        assert env.shutdown("owner shutdown") is False
        assert env.shutdown(reason="again") is False
        env.reset(seed=0)  # still usable
        with pytest.raises(rlmesh.NotAllowedError):  # rlmesh's form: no reason, it raises
            env.shutdown()
    assert not server.wait(0.2)


def test_shutdown_with_a_reason_returns_true_and_stops_the_server(serve: ServeFn) -> None:
    server = serve(_cartpole, options=ServeOptions(allow_remote_shutdown=True))
    env = rlmesh.numpy.RemoteEnv(server.address)
    assert env.shutdown("done with it") is True
    assert env.closed
    assert server.wait(10)


def test_vector_env_shutdown(serve: ServeFn) -> None:
    def vector() -> gym.vector.VectorEnv[Any, Any, Any]:
        return gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")

    refusing = serve(vector)
    with rlmesh.numpy.RemoteVectorEnv(refusing.address) as envs:
        assert envs.shutdown("please") is False
        envs.reset(seed=0)
    allowing = serve(vector, options=ServeOptions(allow_remote_shutdown=True))
    envs = rlmesh.numpy.RemoteVectorEnv(allowing.address)
    assert envs.shutdown() is True
    assert envs.closed
    assert allowing.wait(10)


# -- render(env_index=) -------------------------------------------------------------------------

def test_render_env_index(serve: ServeFn) -> None:
    need("pygame")  # (CartPole draws its frames with pygame)
    server = serve(_cartpole)
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        env.reset(seed=0)
        frame = env.render(env_index=0)
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
        with pytest.raises(IndexError):
            env.render(env_index=1)

    def vector() -> gym.vector.VectorEnv[Any, Any, Any]:
        return gym.vector.SyncVectorEnv([_cartpole, _cartpole])

    vserver = serve(vector)
    with rlmesh.numpy.RemoteVectorEnv(vserver.address) as envs:
        envs.reset(seed=[1, 2])
        frames = envs.render()
        assert len(frames) == 2
        np.testing.assert_array_equal(envs.render(env_index=1), frames[1])
        with pytest.raises(IndexError):
            envs.render(env_index=2)


# -- RemoteModel in the backend modules ---------------------------------------------------------

def test_remote_model_in_the_numpy_backend(tmp_path: Path) -> None:
    space = gym.spaces.Box(-1, 1, (3,), np.float32)
    model = rlmesh.numpy.Model(lambda obs: int(obs.sum() > 0))
    model.bind(space, gym.spaces.Discrete(2))
    sock = str(tmp_path / "model.sock")
    with EnvServer(rlmesh.models.serve.ModelSource(model), path=sock) as server:
        server.start()
        with rlmesh.numpy.RemoteModel(path=sock, request_timeout_seconds=5) as remote:
            assert remote.options.timeout == 5
            assert int(remote.predict(np.ones(3, np.float32))) == 1
    assert rlmesh.numpy.RemoteModel is rlmesh.RemoteModel


@pytest.mark.parametrize("face", ["torch", "jax"])
def test_remote_model_in_the_framework_backends(serve: ServeFn, face: str) -> None:
    need(face)
    module = importlib.import_module(f"rlmesh.{face}")
    model = rlmesh.numpy.Model(lambda obs: obs * 2)
    space = gym.spaces.Box(-10, 10, (3,), np.float32)
    model.bind(space, space)
    server = serve(rlmesh.models.serve.ModelSource(model))
    with module.RemoteModel(host="127.0.0.1", port=_port(server)) as remote:
        assert isinstance(remote, rlmesh.RemoteModel)
        action = remote.predict(np.ones(3, np.float32))
        assert not isinstance(action, np.ndarray)  # a framework array
        np.testing.assert_allclose(np.asarray(action), np.full(3, 2.0))
