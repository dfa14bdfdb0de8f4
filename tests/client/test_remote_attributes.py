"""Remote attribute access: Gymnasium's escape hatches on remote envs, end to end.

``env.unwrapped.x``, ``get_wrapper_attr``, ``set_wrapper_attr``, a served env's methods, and
a vector env's ``get_attr``, ``set_attr`` and ``call`` on all three shapes of
``RemoteVectorEnv`` and on ``rlmesh.make_vec``, against real servers on 127.0.0.1 port 0 and
compared with local Gymnasium envs. The server's rules (``docs/protocol.md`` section 13) are
checked with raw requests, which bypass the client's own checks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

import rlmesh
import rlmesh.numpy
from rlmesh import protocol as P
from rlmesh.client.attributes import RemoteMethod
from rlmesh.testing import ServerProcess
from tests.support.deps import need
from tests.support.values import assert_same_values

pytestmark = [
    pytest.mark.memory_peer,
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]


# -- small test envs ---------------------------------------------------------------------------


class GadgetEnv(gym.Env[np.int64, np.int64]):
    """An env with attributes and methods of every kind remote access has to handle."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Discrete(5)
        self.action_space = gym.spaces.Discrete(2)
        self.scale = 2.0
        self.weights = np.array([0.5, 1.5], dtype=np.float32)
        self.gain = np.float32(0.25)
        self.tags = {"a", "b"}  # a set: no wire encoding
        self._secret = "hidden"
        self.qpos = np.zeros(3)
        self.qvel = np.zeros(3)
        self.count = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self.count = 0
        return np.int64(0), {}

    def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        self.count += 1
        return np.int64(min(self.count, 4)), self.scale, False, self.count >= 4, {}

    def combine(self, a: Any, b: Any, *, c: Any = 0, label: str | None = None) -> Any:
        """Positional and keyword arguments, numpy in and out."""
        return {"total": np.asarray(a) + np.asarray(b) + c, "label": label,
                "scaled": self.weights * self.scale}

    def set_state(self, qpos: np.ndarray[Any, Any], qvel: np.ndarray[Any, Any]) -> None:
        """A MuJoCo-style state setter."""
        self.qpos, self.qvel = np.array(qpos), np.array(qvel)

    def state(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        return self.qpos, self.qvel

    def make_object(self) -> object:
        return object()  # no wire encoding

    def fails_inside(self) -> None:
        raise AttributeError("an AttributeError raised by the method itself")

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @property
    def sensor(self) -> float:
        raise RuntimeError("sensor offline")


def make_gadget() -> gym.Env[Any, Any]:
    return gym.wrappers.TimeLimit(GadgetEnv(), max_episode_steps=50)


def make_cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1")



def remote(serve: Callable[..., rlmesh.EnvServer], closing: Any, env: Any = "CartPole-v1",
           cls: type[Any] = rlmesh.numpy.RemoteEnv, **options: Any) -> Any:
    server = serve(env, options=rlmesh.ServeOptions(**options)) if options else serve(env)
    return closing(cls(server.address, timeout=10))


def raw(env: Any, op: int, *args: Any) -> list[Any]:
    """Send ``op`` straight through the env's channel, past every client-side check."""
    return list(env._require().request(op, *args))


def sent(env: Any) -> int:
    """How many requests the env's channel has sent so far."""
    return int(env._require()._next_id)


# -- single env: reading --------------------------------------------------------------------

CARTPOLE_NAMES = ["x_threshold", "theta_threshold_radians", "gravity", "masscart", "masspole",
                  "length", "force_mag", "tau", "kinematics_integrator"]


def test_unwrapped_and_get_wrapper_attr_match_local_cartpole(serve: Any, closing: Any) -> None:
    env = remote(serve, closing)
    local = closing(gym.make("CartPole-v1"))
    assert env.unwrapped is env  # check_env relies on it
    for name in CARTPOLE_NAMES:
        expected = getattr(local.unwrapped, name)
        assert_same_values(getattr(env.unwrapped, name), expected, name)
        assert_same_values(env.get_wrapper_attr(name), local.get_wrapper_attr(name), name)
        assert env.has_wrapper_attr(name) and hasattr(env, name)
    assert env.get_wrapper_attr("metadata") is env.metadata  # local attributes stay local
    assert env.get_wrapper_attr("action_space") is env.action_space


def test_spawned_server_process(spawn: Callable[..., ServerProcess], closing: Any) -> None:
    server = spawn("CartPole-v1")
    env = closing(rlmesh.numpy.RemoteEnv(server.address, timeout=10))
    assert env.unwrapped.x_threshold == 2.4
    env.set_wrapper_attr("force_mag", 20.0)
    assert env.get_wrapper_attr("force_mag") == 20.0


def test_atari_get_action_meanings(serve: Any, closing: Any) -> None:
    ale_py = need("ale_py")
    gym.register_envs(ale_py)
    local = closing(gym.make("ALE/Pong-v5"))
    env = remote(serve, closing, lambda: gym.make("ALE/Pong-v5"))
    assert env.unwrapped.get_action_meanings() == local.unwrapped.get_action_meanings()


# -- single env: setting --------------------------------------------------------------------


def _trajectory(env: Any, steps: int = 60) -> list[Any]:
    obs, _ = env.reset(seed=7)
    out = [obs]
    for t in range(steps):
        obs, reward, terminated, truncated, _ = env.step(t % 2)
        out.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def test_set_wrapper_attr_gravity_gives_the_local_trajectory(serve: Any, closing: Any) -> None:
    env = remote(serve, closing)
    local = closing(gym.make("CartPole-v1"))
    default = _trajectory(env)
    assert env.set_wrapper_attr("gravity", 5.0) is True
    local.set_wrapper_attr("gravity", 5.0)
    assert env.unwrapped.gravity == 5.0
    changed = _trajectory(env)
    assert_same_values(changed, _trajectory(local))
    assert not np.array_equal(changed[5][0], default[5][0]), "gravity had no effect"


def test_wrappers_on_a_remote_env_forward_attribute_access(serve: Any, closing: Any) -> None:
    env = remote(serve, closing)
    wrapped = gym.wrappers.TimeLimit(env, max_episode_steps=10)
    assert wrapped.get_wrapper_attr("x_threshold") == 2.4
    # A wrapper asks its env to set the name only where it exists (force=False).
    assert wrapped.set_wrapper_attr("gravity", 3.0) is True
    assert env.get_wrapper_attr("gravity") == 3.0
    assert env.set_wrapper_attr("no_such_thing", 1, force=False) is False
    assert not hasattr(env, "no_such_thing")


def test_local_attributes_are_set_locally_and_setattr_stays_local(serve: Any,
                                                                  closing: Any) -> None:
    env = remote(serve, closing)
    env.set_wrapper_attr("timeout", 5.0)  # a property of the client object itself
    assert env.timeout == 5.0
    env.gravity = 1.0  # plain setattr: a local attribute now shadows the remote one
    assert env.gravity == 1.0 and env.get_wrapper_attr("gravity") == 1.0
    assert raw(env, P.OP_GET_ATTR, "gravity")[2:] == [9.8, False]  # the served env: unchanged
    del env.gravity
    assert env.gravity == 9.8


# -- single env: methods ---------------------------------------------------------------------


def test_method_with_positional_and_keyword_arguments(serve: Any, closing: Any) -> None:
    env = remote(serve, closing, make_gadget)
    result = env.unwrapped.combine(np.arange(3), 10, c=np.int64(5), label="sum")
    local = GadgetEnv().combine(np.arange(3), 10, c=np.int64(5), label="sum")
    assert_same_values(result, local)
    proxy = env.get_wrapper_attr("combine")
    assert isinstance(proxy, RemoteMethod) and callable(proxy)
    assert_same_values(proxy(1, 2), GadgetEnv().combine(1, 2))
    qpos, qvel = np.array([0.1, 0.2, 0.3]), np.array([-1.0, 0.0, 1.0])
    assert env.unwrapped.set_state(qpos, qvel=qvel) is None
    assert_same_values(env.unwrapped.state(), (qpos, qvel))
    assert_same_values(env.unwrapped.qpos, qpos)


def test_method_proxy_repr(serve: Any, closing: Any) -> None:
    env = remote(serve, closing, make_gadget)
    proxy = env.unwrapped.combine
    assert proxy.__name__ == "combine"
    assert repr(proxy) == f"<remote method combine of {env!r}>"
    assert env.address in repr(proxy)


def test_missing_name_is_an_attribute_error_and_the_session_goes_on(serve: Any,
                                                                    closing: Any) -> None:
    env = remote(serve, closing)
    env.reset(seed=0)
    assert not hasattr(env, "nope")
    assert not env.has_wrapper_attr("nope")
    assert getattr(env.unwrapped, "nope", 7) == 7
    with pytest.raises(rlmesh.RemoteAttributeError, match="nope") as info:
        env.get_wrapper_attr("nope")
    assert isinstance(info.value, AttributeError) and isinstance(info.value, rlmesh.RLMeshError)
    env.step(0)
    assert env.unwrapped.x_threshold == 2.4


def test_vector_names_and_closed_envs_answer_locally(serve: Any, closing: Any) -> None:
    env = remote(serve, closing)
    before = sent(env)
    for name in ("num_envs", "single_observation_space", "single_action_space"):
        assert not hasattr(env, name)
    assert sent(env) == before
    env.close()
    assert not hasattr(env, "x_threshold")
    with pytest.raises(rlmesh.EnvClosedError):
        env.get_wrapper_attr("x_threshold")


def test_transport_errors_are_not_attribute_errors(serve: Any, closing: Any) -> None:
    server = serve("CartPole-v1")
    env = closing(rlmesh.numpy.RemoteEnv(server.address, timeout=10))
    server.shutdown()  # the connection breaks; the env was not closed
    with pytest.raises(rlmesh.TransportError):
        hasattr(env, "x_threshold")


# -- the rules ----------------------------------------------------------------------------------


def test_private_and_dunder_names_are_refused_and_never_sent(serve: Any, closing: Any) -> None:
    gadget = GadgetEnv()
    server = serve(gadget)
    env = closing(rlmesh.numpy.RemoteEnv(server.address, timeout=10))
    before = sent(env)
    assert not hasattr(env, "_secret")
    assert getattr(env, "__wrapped__", None) is None
    with pytest.raises(AttributeError):
        env.get_wrapper_attr("_secret")
    with pytest.raises(rlmesh.NotAllowedError):
        env.set_wrapper_attr("_secret", "exposed")
    with pytest.raises(rlmesh.NotAllowedError):
        RemoteMethod(env, "__init__")()
    assert sent(env) == before, "a private name went over the wire"
    # The server refuses them itself.
    for op, args in [(P.OP_GET_ATTR, ("_secret",)), (P.OP_GET_ATTR, ("__class__",)),
                     (P.OP_CALL, ("__init__", [], {})), (P.OP_CALL, ("_np_random", [], {})),
                     (P.OP_SET_ATTR, ("_secret", "exposed")),
                     (P.OP_SET_ATTR, ("__class__", "x")),
                     (P.OP_CALL, ("get_wrapper_attr", ["_secret"], {}))]:
        with pytest.raises(rlmesh.NotAllowedError):
            raw(env, op, *args)
    assert gadget._secret == "hidden"
    env.reset()
    # Without a server, a private name still answers at once.
    server.shutdown()
    assert not hasattr(env, "_anything")


@pytest.mark.parametrize("name", ["reset", "step", "close"])
def test_reset_step_close_only_through_their_own_ops(serve: Any, closing: Any,
                                                     name: str) -> None:
    env = remote(serve, closing)
    with pytest.raises(rlmesh.NotAllowedError, match="its own request"):
        RemoteMethod(env, name)()
    with pytest.raises(rlmesh.NotAllowedError, match="its own request"):
        raw(env, P.OP_CALL, name, [], {})
    with pytest.raises(rlmesh.NotAllowedError, match="its own request"):
        raw(env, P.OP_SET_ATTR, name, 1)
    assert raw(env, P.OP_GET_ATTR, name)[2:] == [None, True]  # reading is harmless
    env.reset(seed=0)
    env.step(0)


@pytest.mark.parametrize("name", ["observation_space", "action_space",
                                  "single_observation_space", "single_action_space",
                                  "num_envs", "metadata", "render_mode", "spec", "render",
                                  "env"])
def test_contract_names_are_refused_by_set_attr(serve: Any, closing: Any, name: str) -> None:
    local = make_cartpole()
    server = serve(local)
    env = closing(rlmesh.numpy.RemoteEnv(server.address, timeout=10))
    with pytest.raises(rlmesh.NotAllowedError, match="contract"):
        raw(env, P.OP_SET_ATTR, name, 1)
    assert local.observation_space.shape == (4,) and local.get_wrapper_attr("render_mode") is None
    env.reset(seed=0)
    env.step(1)


def test_remote_attributes_can_be_turned_off(serve: Any, closing: Any) -> None:
    env = remote(serve, closing, remote_attributes=False)
    assert env.contract["capabilities"] == []
    before = sent(env)
    assert not hasattr(env, "x_threshold")  # a probe stays an AttributeError, sends nothing
    with pytest.raises(AttributeError, match="does not offer"):
        _ = env.unwrapped.x_threshold
    with pytest.raises(rlmesh.NotAllowedError, match="remote_attributes"):
        env.get_wrapper_attr("x_threshold")
    with pytest.raises(rlmesh.NotAllowedError):
        env.set_wrapper_attr("gravity", 1.0)
    assert sent(env) == before
    for op, args in [(P.OP_GET_ATTR, ("x_threshold",)), (P.OP_CALL, ("render", [], {})),
                     (P.OP_SET_ATTR, ("gravity", 1.0))]:
        with pytest.raises(rlmesh.NotAllowedError, match="remote_attributes"):
            raw(env, op, *args)
    env.reset(seed=0)
    env.step(0)


def test_remote_attributes_off_on_a_vector_env(serve: Any, closing: Any) -> None:
    options = rlmesh.ServeOptions(remote_attributes=False)
    servers = [serve("CartPole-v1", options=options) for _ in range(2)]
    vec = closing(rlmesh.RemoteVectorEnv([s.address for s in servers]))
    for action in (lambda: vec.get_attr("gravity"), lambda: vec.call("render"),
                   lambda: vec.set_attr("gravity", 1.0)):
        with pytest.raises(rlmesh.NotAllowedError):
            action()
    vec.reset(seed=0)


# -- errors from the env ----------------------------------------------------------------------


def test_unencodable_value_is_encode_error_and_the_session_goes_on(serve: Any,
                                                                   closing: Any) -> None:
    env = remote(serve, closing, make_gadget)
    env.reset(seed=0)
    with pytest.raises(rlmesh.EncodeError, match=r"env\.tags"):
        _ = env.unwrapped.tags
    with pytest.raises(rlmesh.EncodeError, match="make_object"):
        env.unwrapped.make_object()
    with pytest.raises(rlmesh.EncodeError, match="np_random"):
        raw(env, P.OP_GET_ATTR, "np_random")
    with pytest.raises(rlmesh.EncodeError):  # the client's own codec refuses a set too
        env.set_wrapper_attr("tags", {"c"})
    assert env.step(0)[1] == 2.0
    assert env.unwrapped.scale == 2.0


def test_raising_property_and_method_are_remote_env_errors(serve: Any, closing: Any) -> None:
    env = remote(serve, closing, make_gadget)
    with pytest.raises(rlmesh.RemoteEnvError) as info:
        _ = env.unwrapped.sensor
    assert info.value.remote_type == "RuntimeError"
    assert "sensor offline" in info.value.remote_traceback
    assert "in sensor" in info.value.remote_traceback  # the frame of the property
    # An AttributeError raised by a method is the env's error, not a missing attribute.
    with pytest.raises(rlmesh.RemoteEnvError) as info:
        env.unwrapped.fails_inside()
    assert not isinstance(info.value, AttributeError)
    assert info.value.remote_type == "AttributeError"
    with pytest.raises(rlmesh.RemoteEnvError, match="TypeError"):
        env.unwrapped.combine(1)  # missing argument
    env.reset(seed=1)
    env.step(1)


def test_attribute_ops_run_under_the_step_deadline(serve: Any, closing: Any) -> None:
    env = remote(serve, closing, make_gadget, step_deadline=0.3)
    assert env.unwrapped.slow(0.0) == 0.0
    with pytest.raises(rlmesh.StepDeadlineError):
        env.unwrapped.slow(1.0)


def test_plain_client_converts_values(serve: Any, closing: Any) -> None:
    server = serve(make_gadget)
    plain = closing(rlmesh.RemoteEnv(server.address, timeout=10))
    numpy_env = closing(rlmesh.numpy.RemoteEnv(server.address, timeout=10))
    assert_same_values(plain.unwrapped.weights, [0.5, 1.5])
    assert_same_values(plain.get_wrapper_attr("gain"), 0.25)
    assert_same_values(plain.unwrapped.combine(1, 2, c=3),
                       {"total": 6, "label": None, "scaled": [1.0, 3.0]})
    assert_same_values(numpy_env.unwrapped.weights, np.array([0.5, 1.5], np.float32))
    assert_same_values(numpy_env.get_wrapper_attr("gain"), np.float32(0.25))


# -- vector envs --------------------------------------------------------------------------------

SHAPES = ["vector-endpoint", "single-env-endpoints", "vector-endpoints", "make_vec"]


def build_vector(shape: str, factory: Callable[[], Any], serve: Any, closing: Any) -> Any:
    """A RemoteVectorEnv of 3 sub-envs built by ``factory``, in the given shape."""
    if shape == "vector-endpoint":
        server = serve(SyncVectorEnv([factory] * 3))
        return closing(rlmesh.RemoteVectorEnv(server.address))
    if shape == "single-env-endpoints":
        servers = [serve(factory) for _ in range(3)]
        return closing(rlmesh.RemoteVectorEnv([s.address for s in servers]))
    if shape == "vector-endpoints":
        servers = [serve(SyncVectorEnv([factory] * n)) for n in (2, 1)]
        return closing(rlmesh.RemoteVectorEnv([s.address for s in servers]))
    # make_vec pickles the factory for its workers: by value, since tests are no package there
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        return closing(rlmesh.make_vec(factory, 3, num_workers=2))
    finally:
        cloudpickle.unregister_pickle_by_value(module)


@pytest.mark.parametrize("shape", SHAPES)
def test_vector_get_set_call_match_sync_vector_env(serve: Any, closing: Any, shape: str) -> None:
    vec = build_vector(shape, make_cartpole, serve, closing)
    local = closing(SyncVectorEnv([make_cartpole] * 3))
    for name in ("gravity", "x_threshold", "kinematics_integrator"):
        assert_same_values(vec.get_attr(name), local.get_attr(name), name)
        assert_same_values(vec.call(name), local.call(name), name)
    for env in (vec, local):
        env.set_attr("gravity", [1.0, 2.0, 30.0])  # per sub-env, split across endpoints
        env.set_attr("masscart", 2.0)  # broadcast
    assert_same_values(vec.get_attr("gravity"), (1.0, 2.0, 30.0))
    assert_same_values(vec.get_attr("masscart"), local.get_attr("masscart"))
    # The changed physics give Gymnasium's trajectories.
    obs, _ = vec.reset(seed=3)
    expected, _ = local.reset(seed=3)
    assert_same_values(obs, expected)
    for t in range(40):
        actions = np.array([t % 2, (t // 2) % 2, 1])
        assert_same_values(vec.step(actions)[:4], local.step(actions)[:4], f"step {t}")
    for env in (vec, local):
        with pytest.raises(ValueError, match="length equal to the number of environments"):
            env.set_attr("gravity", [1.0, 2.0])
    with pytest.raises(rlmesh.RemoteAttributeError):
        vec.get_attr("nope")
    with pytest.raises(AttributeError):
        local.get_attr("nope")
    assert vec.get_attr("gravity") == (1.0, 2.0, 30.0)  # still usable


@pytest.mark.parametrize("shape", SHAPES)
def test_vector_call_with_arguments(serve: Any, closing: Any, shape: str) -> None:
    vec = build_vector(shape, make_gadget, serve, closing)
    local = closing(SyncVectorEnv([make_gadget] * 3))
    assert_same_values(vec.call("combine", np.arange(2), 1, c=2, label="x"),
                       local.call("combine", np.arange(2), 1, c=2, label="x"))
    assert_same_values(vec.get_attr("weights"), local.get_attr("weights"))
    vec.set_attr("scale", (1.0, 2.0, 3.0))
    local.set_attr("scale", (1.0, 2.0, 3.0))
    assert_same_values(vec.call("combine", 0, 0), local.call("combine", 0, 0))
    for name in ("reset", "step", "close"):
        with pytest.raises(rlmesh.NotAllowedError):
            vec.call(name)
    with pytest.raises(rlmesh.NotAllowedError):
        vec.set_attr("observation_space", 1)
    with pytest.raises(rlmesh.NotAllowedError):
        vec.get_attr("_secret")
    with pytest.raises(rlmesh.RemoteEnvError, match="sensor offline"):
        vec.get_attr("sensor")
    with pytest.raises(rlmesh.EncodeError):
        vec.get_attr("tags")
    assert vec.get_attr("scale") == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("shape", ["vector-endpoint", "single-env-endpoints",
                                   "vector-endpoints"])
def test_vector_attribute_ops_between_step_async_and_step_wait(serve: Any, closing: Any,
                                                                shape: str) -> None:
    vec = build_vector(shape, make_cartpole, serve, closing)
    vec.reset(seed=0)
    vec.step_async(np.zeros(3, dtype=np.int64))
    for action in (lambda: vec.get_attr("gravity"), lambda: vec.call("gravity"),
                   lambda: vec.set_attr("gravity", 1.0)):
        with pytest.raises(RuntimeError, match="step_wait"):
            action()
    vec.step_wait()
    assert vec.get_attr("gravity") == (9.8, 9.8, 9.8)


def test_vector_endpoint_server_refuses_raw_requests(serve: Any, closing: Any) -> None:
    vec = build_vector("vector-endpoint", make_cartpole, serve, closing)
    channel = vec._channel
    for op, args in [(P.OP_GET_ATTR, ("reset",)), (P.OP_CALL, ("step", [], {})),
                     (P.OP_SET_ATTR, ("single_action_space", 1)),
                     (P.OP_GET_ATTR, ("_np_random",))]:
        with pytest.raises(rlmesh.NotAllowedError):
            channel.request(op, *args)
    assert channel.request(P.OP_GET_ATTR, "gravity")[2:] == [(9.8, 9.8, 9.8), False]
    assert vec.reset(seed=0)[0].shape == (3, 4)  # the session goes on
