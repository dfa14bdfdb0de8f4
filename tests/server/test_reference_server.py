"""The reference API's server side: ``EnvServer`` keywords, ``ServeOptions`` names, env shapes.

Statements of the reference docs checked here, on real servers on 127.0.0.1 or unix sockets:
``EnvServer(env, host=..., port=...)``, ``EnvServer(env, path=...)`` and ``transport=``; an
address combined with the helpers is a ``ValueError``; ``tags=`` are published in the
contract's metadata; ``device=`` without a framework that has devices is a ``ValueError``;
``ServeOptions(idle_timeout_seconds=, drain_timeout_seconds=, close_timeout_seconds=)``; a
vector env is anything with ``num_envs`` and per-env ``single_*`` spaces; an old Gym env's
``(obs, reward, done, info)`` step is served as Gymnasium's five values. And the three bugs
of the gap list (B1 to B3), each with its regression test.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from rlmesh import EnvServer, ServeOptions, spaces
from rlmesh.server.sources import TAGS_METADATA_KEY
from tests.support.deps import need

pytestmark = pytest.mark.timeout(60)

ServeFn = Callable[..., EnvServer]


class Tiny:
    """The smallest env the reference docs describe: spaces, reset, step, close."""

    observation_space = spaces.Discrete(2)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.closed = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        return 1, 1.0, True, False, {"action": action}

    def close(self) -> None:
        self.closed += 1


# -- addresses -----------------------------------------------------------------------------------

def test_host_port_and_transport_bind_tcp() -> None:
    with EnvServer(Tiny(), host="127.0.0.1", port=0, transport="tcp") as server:
        server.start()
        assert server.address.startswith("127.0.0.1:") and not server.address.endswith(":0")
        with rlmesh.numpy.RemoteEnv(server.address) as env:
            assert env.reset(seed=0)[0] == 0


def test_path_and_unix_transport_bind_a_unix_socket(tmp_path: Path) -> None:
    sock = str(tmp_path / "s.sock")
    with EnvServer(Tiny(), path=sock, transport="unix") as server:
        server.start()
        assert server.address == f"unix://{sock}"
        with rlmesh.numpy.RemoteEnv(path=sock) as env:
            assert env.step is not None and env.reset()[0] == 0


@pytest.mark.parametrize("kwargs", [
    {"address": "127.0.0.1:0", "host": "127.0.0.1"},
    {"address": "127.0.0.1:0", "transport": "tcp"},
    {"path": "/tmp/never.sock", "port": 0},
    {"transport": "unix"},
    {"transport": "quic", "port": 0},
])
def test_conflicting_addresses_are_value_errors(kwargs: dict[str, Any]) -> None:
    env = Tiny()
    with pytest.raises(ValueError):
        EnvServer(env, **kwargs)


# -- tags, framework, device ---------------------------------------------------------------------

def test_tags_are_kept_and_published_in_the_contract_metadata(serve: ServeFn) -> None:
    tags = {"observation": {"role": "state"}, "action": {"role": "joint_pos"}}
    server = serve(Tiny(), tags=tags)
    assert server.tags is tags
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        assert env.metadata[TAGS_METADATA_KEY] == tags


def test_tags_objects_publish_themselves(serve: ServeFn) -> None:
    class Tags:
        def to_metadata(self) -> dict[str, Any]:
            return {"lab.tags.v1": {"camera": "wrist"}}

    class Spec:
        def to_dict(self) -> dict[str, Any]:
            return {"camera": "top"}

    with rlmesh.numpy.RemoteEnv(serve(Tiny(), tags=Tags()).address) as env:
        assert env.metadata["lab.tags.v1"] == {"camera": "wrist"}
    with rlmesh.numpy.RemoteEnv(serve(Tiny(), tags=Spec()).address) as env:
        assert env.metadata[TAGS_METADATA_KEY] == {"camera": "top"}
    with pytest.raises(TypeError, match="tags must be"):
        EnvServer(Tiny(), "127.0.0.1:0", tags=42)


def test_device_needs_a_framework_with_devices() -> None:
    for kwargs in ({"device": "cpu"}, {"device": "cpu", "framework": "numpy"},
                   {"framework": "tensorflow"}):
        with pytest.raises(ValueError):
            EnvServer(Tiny(), "127.0.0.1:0", **kwargs)


def test_numpy_framework_changes_nothing(serve: ServeFn) -> None:
    server = serve(Tiny(), framework="numpy")
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        env.reset()
        assert env.step(np.int64(1))[4]["action"] == 1


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_framework_env_gets_its_actions_as_framework_arrays(serve: ServeFn,
                                                              framework: str) -> None:
    module = need(framework)
    array_type = module.Array if framework == "jax" else module.Tensor
    seen: list[Any] = []

    class Strict(Tiny):
        action_space = spaces.Box(-1, 1, (2,), np.float32)

        def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
            seen.append(action)
            return 1, float(action.sum()), False, False, {}

    server = serve(Strict(), framework=framework)
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        env.reset()
        reward = env.step(np.array([0.25, 0.5], np.float32))[1]
    assert isinstance(seen[0], array_type) and reward == pytest.approx(0.75)


# -- ServeOptions' *_seconds names ---------------------------------------------------------------

def test_serve_options_take_and_read_the_seconds_names() -> None:
    options = ServeOptions(idle_timeout_seconds=5, drain_timeout_seconds=2,
                           close_timeout_seconds=3)
    assert (options.idle_timeout, options.drain_timeout, options.close_timeout) == (5, 2, 3)
    assert options.idle_timeout_seconds == 5  # type: ignore[misc]
    assert options.drain_timeout_seconds == 2  # type: ignore[misc]
    assert options.close_timeout_seconds == 3  # type: ignore[misc]
    assert ServeOptions(idle_timeout=4).idle_timeout_seconds == 4  # type: ignore[misc]
    assert ServeOptions().idle_timeout_seconds is None  # type: ignore[misc]
    assert options == ServeOptions(idle_timeout=5, drain_timeout=2, close_timeout=3)
    assert dataclasses.replace(options, idle_timeout=7).idle_timeout == 7
    assert ServeOptions(**dataclasses.asdict(options)) == options  # (how workers get them)


def test_serve_options_refuse_two_values_for_one_option() -> None:
    with pytest.raises(ValueError, match="two values"):
        ServeOptions(idle_timeout=4, idle_timeout_seconds=5)
    with pytest.raises(ValueError, match="idle_timeout must be > 0"):
        ServeOptions(idle_timeout_seconds=-1)
    assert ServeOptions(drain_timeout=1, drain_timeout_seconds=1).drain_timeout == 1


def test_idle_timeout_seconds_closes_an_idle_session(serve: ServeFn) -> None:
    server = serve(Tiny, options=ServeOptions(idle_timeout_seconds=0.3))
    with rlmesh.numpy.RemoteEnv(server.address) as env:
        env.reset()
        threading.Event().wait(1.0)
        with pytest.raises(rlmesh.ConnectionLostError):
            env.reset()


# -- a duck-typed vector env ---------------------------------------------------------------------

class DuckVector:
    """Only ``num_envs``, the per-env spaces, reset, step and close (no batched spaces)."""

    num_envs = 3
    single_observation_space = spaces.Box(-1, 1, (2,), np.float32)
    single_action_space = spaces.Discrete(4)

    def __init__(self) -> None:
        self.steps = 0

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        return np.zeros((3, 2), np.float32), {}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        self.steps += 1
        obs = np.full((3, 2), 0.5, np.float32)
        return obs, np.asarray(actions, np.float64), np.zeros(3, bool), np.zeros(3, bool), {}

    def close(self) -> None:
        pass


def test_a_duck_typed_vector_env_is_served(serve: ServeFn) -> None:
    server = serve(DuckVector())
    assert "vector env of 3" in server.describe()
    with rlmesh.numpy.RemoteVectorEnv(server.address) as envs:
        assert envs.num_envs == 3
        assert envs.single_action_space == spaces.Discrete(4)
        assert envs.action_space == gym.spaces.MultiDiscrete([4, 4, 4])
        assert envs.observation_space.shape == (3, 2)
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (3, 2)
        rewards = envs.step(np.array([1, 2, 3]))[1]
        np.testing.assert_array_equal(rewards, [1.0, 2.0, 3.0])
        with pytest.raises(rlmesh.InvalidActionError):
            envs.step(np.array([1, 2, 9]))


# -- old Gym step results ------------------------------------------------------------------------

class OldGym(Tiny):
    """``step`` returns old Gym's ``(obs, reward, done, info)``."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__()
        self.info = info

    def step(self, action: Any) -> Any:  # type: ignore[override]
        return 1, 2.0, bool(action), self.info


@pytest.mark.parametrize(("action", "info", "flags"), [
    (0, {}, (False, False)),
    (1, {}, (True, False)),
    (1, {"TimeLimit.truncated": True}, (False, True)),
    (1, {"TimeLimit.truncated": False}, (True, False)),
])
def test_an_old_gym_step_is_served_as_five_values(serve: ServeFn, action: int,
                                                  info: dict[str, Any],
                                                  flags: tuple[bool, bool]) -> None:
    with rlmesh.numpy.RemoteEnv(serve(OldGym(info)).address) as env:
        env.reset()
        obs, reward, terminated, truncated, got = env.step(action)
    assert (obs, reward, (terminated, truncated), got) == (1, 2.0, flags, info)
    assert type(terminated) is bool and type(truncated) is bool


def test_an_old_gym_vector_step_is_served_as_five_values(serve: ServeFn) -> None:
    class OldVector(DuckVector):
        def step(self, actions: Any) -> Any:  # type: ignore[override]
            done = np.array([True, True, False])
            return (np.zeros((3, 2), np.float32), np.ones(3), done,
                    {"TimeLimit.truncated": np.array([True, False, False])})

    with rlmesh.numpy.RemoteVectorEnv(serve(OldVector()).address) as envs:
        envs.reset()
        _, _, terminated, truncated, _ = envs.step(np.array([0, 0, 0]))
    np.testing.assert_array_equal(terminated, [False, True, False])
    np.testing.assert_array_equal(truncated, [True, False, False])


def test_a_step_of_three_values_is_still_an_env_error(serve: ServeFn) -> None:
    class Broken(Tiny):
        def step(self, action: Any) -> Any:  # type: ignore[override]
            return 1, 2.0, True

    with rlmesh.numpy.RemoteEnv(serve(Broken()).address) as env:
        env.reset()
        with pytest.raises(rlmesh.RemoteEnvError, match="wrong number of values"):
            env.step(0)


# -- B1, B2, B3 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    types.SimpleNamespace(id="Tiny-v0"),
    types.SimpleNamespace(id="Tiny-v0", max_episode_steps="many", reward_threshold=object(),
                          nondeterministic="yes"),
    types.SimpleNamespace(id=123),
    types.SimpleNamespace(id=("not", "a", "name")),
    object(),
])
def test_b1_a_foreign_spec_object_is_served(serve: ServeFn, spec: Any) -> None:
    env = Tiny()
    env.spec = spec  # type: ignore[attr-defined]
    server = serve(env)
    contract_spec = server.source.contract["spec"]
    if isinstance(getattr(spec, "id", None), str):
        assert contract_spec == {"id": "Tiny-v0", "max_episode_steps": None,
                                 "reward_threshold": None, "nondeterministic": False}
        assert "Tiny-v0" in server.describe()
    else:
        assert contract_spec is None
    with rlmesh.numpy.RemoteEnv(server.address) as client:
        assert client.reset()[0] == 0


def test_b1_a_gymnasium_spec_keeps_its_fields(serve: ServeFn) -> None:
    server = serve(lambda: gym.make("CartPole-v1"))
    assert server.source.contract["spec"] == {
        "id": "CartPole-v1", "max_episode_steps": 500, "reward_threshold": 475.0,
        "nondeterministic": False}


@pytest.mark.parametrize("forever", [math.inf, 1e12, None])
def test_b2_wait_without_bound_returns_when_the_server_stops(forever: float | None) -> None:
    server = EnvServer(Tiny(), "127.0.0.1:0").start()
    stopper = threading.Timer(0.3, server.shutdown)
    stopper.start()
    try:
        assert server.wait(forever) is True
    finally:
        stopper.cancel()
        server.shutdown()


def test_b2_wait_refuses_nan_and_negative_timeouts() -> None:
    with EnvServer(Tiny(), "127.0.0.1:0") as server:
        server.start()
        for bad in (float("nan"), -1.0, -math.inf):
            with pytest.raises(ValueError, match="timeout must be >= 0"):
                server.wait(bad)
        assert server.wait(0) is False and server.wait(0.05) is False


def test_b3_infinite_timeouts_mean_no_limit(serve: ServeFn) -> None:
    server = serve(Tiny)
    with rlmesh.numpy.RemoteEnv(server.address, timeout=math.inf,
                                connect_timeout=math.inf) as env:
        assert env.timeout is None
        env.reset()
        assert env.step(1, timeout=math.inf)[0] == 1
        env.timeout = math.inf
        assert env.timeout is None
        env.timeout = 1e12  # (longer than the kernel's limit: bounded by it)
        assert env.reset(timeout=1e300)[0] == 0
        for bad in (float("nan"), -1.0, 0.0):
            with pytest.raises(ValueError, match="positive number of seconds"):
                env.timeout = bad
            with pytest.raises(ValueError, match="positive number of seconds"):
                env.reset(timeout=bad)
        assert env.reset()[0] == 0  # (a refused timeout leaves the session usable)
    with rlmesh.numpy.RemoteVectorEnv([server.address], timeout=math.inf) as envs:
        envs.reset()
    with pytest.raises(ValueError, match="positive number of seconds"):
        rlmesh.numpy.RemoteEnv(server.address, connect_timeout=float("nan"))
