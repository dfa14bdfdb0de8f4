"""``RemoteVectorEnv``: vector endpoints, many single-env endpoints as one vector env, wrappers.

Every trajectory is compared with a local Gymnasium vector env driven by the same seeds and
actions, strictly: same Python types, numpy dtypes (with byte order), shapes and bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import rlmesh
import rlmesh.numpy
from rlmesh.envs import DictObsEnv, SpaceEchoEnv
from tests.support.deps import need
from tests.support.episodes import action_sampler
from tests.support.net import free_port
from tests.support.values import assert_same_values

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.filterwarnings("ignore:.*is out of date.*:DeprecationWarning"),
]

NEXT, SAME, DISABLED = AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED
MODES = [pytest.param(m, id=m.value) for m in (NEXT, SAME, DISABLED)]
VECTOR_CLASSES = [pytest.param(rlmesh.numpy.RemoteVectorEnv, id="rlmesh.numpy"),
                  pytest.param(rlmesh.RemoteVectorEnv, id="rlmesh")]


def make_cartpole() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1")


def make_cartpole_rgb() -> gym.Env[Any, Any]:
    return gym.make("CartPole-v1", render_mode="rgb_array")


ENVS = [pytest.param(make_cartpole, id="CartPole"), pytest.param(DictObsEnv, id="DictObsEnv")]


class FlakyCartPole(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole that raises once: on its ``fail_on_step``-th step or ``fail_on_reset``-th reset."""

    def __init__(self, fail_on_step: int | None = None, fail_on_reset: int | None = None) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.fail_on_step = fail_on_step
        self.fail_on_reset = fail_on_reset
        self.steps = self.resets = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.resets += 1
        if self.resets == self.fail_on_reset:
            raise RuntimeError("flaky sub-env failed to reset")
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        self.steps += 1
        if self.steps == self.fail_on_step:
            raise RuntimeError("flaky sub-env exploded")
        return self.env.step(action)


class SharedKeyEnv(gym.Env[int, int]):
    """Reset and step infos share the key ``value`` (an int at reset, a float at step)."""

    observation_space = gym.spaces.Discrete(10)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int) -> None:
        self.length = length
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return 0, {"value": 0}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self.t, 0.0, self.t >= self.length, False, {"value": 0.5}


# -- strict comparison ------------------------------------------------------------------------


def assert_infos(actual: dict[str, Any], expected: dict[str, Any], path: str) -> None:
    """Infos: same keys and ``_key`` masks, same values and dtypes (key order checked apart)."""
    assert_same_values(actual, expected, path, key_order=False)


def assert_reset_same(actual: tuple[Any, Any], expected: tuple[Any, Any], path: str) -> None:
    assert_same_values(actual[0], expected[0], f"{path} obs")
    assert_infos(actual[1], expected[1], f"{path} info")


def assert_step_same(actual: tuple[Any, ...], expected: tuple[Any, ...], path: str) -> None:
    assert len(actual) == 5
    for name, a, e in zip(("obs", "reward", "terminated", "truncated"), actual, expected,
                          strict=False):
        assert_same_values(a, e, f"{path} {name}")
    assert_infos(actual[4], expected[4], f"{path} info")


def assert_space_same(actual: gym.Space[Any], expected: gym.Space[Any], path: str) -> None:
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    assert actual == expected, f"{path}: {actual} != {expected}"
    assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
    if isinstance(expected, gym.spaces.Dict):
        assert list(actual.spaces) == list(expected.spaces), f"{path}: key order differs"


def assert_vector_spaces(remote: VectorEnv[Any, Any, Any], local: VectorEnv[Any, Any, Any]
                         ) -> None:
    for name in ("observation_space", "action_space", "single_observation_space",
                 "single_action_space"):
        assert_space_same(getattr(remote, name), getattr(local, name), name)


# -- driving ----------------------------------------------------------------------------------


def lockstep(remote: VectorEnv[Any, Any, Any], local: VectorEnv[Any, Any, Any], *,
             steps: int = 300, seed: int = 7, action_seed: int = 3, reseed_at: int = 150,
             check_pending_raises: bool = False) -> int:
    """Drive both vector envs with the same seeds and actions and compare every result.

    In ``DISABLED`` mode finished sub-envs are reset with ``reset_mask``, as Gymnasium's docs
    show. Returns the number of sub-env episode ends seen.
    """
    n = local.num_envs
    mode = local.metadata["autoreset_mode"]
    assert_reset_same(remote.reset(seed=seed), local.reset(seed=seed), "reset")
    sampler = action_sampler(local.action_space, action_seed)
    ends = 0
    checked_pending = False
    for t in range(steps):
        if t == reseed_at:
            seeds = [1000 + 37 * i for i in range(n)]
            assert_reset_same(remote.reset(seed=seeds), local.reset(seed=seeds), f"reseed {t}")
        actions = sampler.sample()
        expected = local.step(actions)
        assert_step_same(remote.step(actions), expected, f"step {t}")
        done = np.logical_or(expected[2], expected[3])
        ends += int(done.sum())
        if mode == DISABLED and done.any():
            if check_pending_raises and not checked_pending:
                with pytest.raises(RuntimeError, match="reset_mask"):
                    remote.step(actions)
                checked_pending = True
            assert_reset_same(remote.reset(options={"reset_mask": done.copy()}),
                              local.reset(options={"reset_mask": done.copy()}),
                              f"masked reset {t}")
    if check_pending_raises:
        assert checked_pending, "no sub-env finished: the pending check never ran"
    return ends



@pytest.fixture
def endpoints(serve: Any) -> Callable[[Sequence[Any]], list[str]]:
    """Serve each env or factory on its own in-process endpoint; return the addresses."""

    def start(envs: Sequence[Any]) -> list[str]:
        return [serve(env).address for env in envs]

    return start


def connect_vec(address: str | Sequence[str], cls: type[Any] = rlmesh.RemoteVectorEnv,
                **kwargs: Any) -> Any:
    return cls(address, connect_timeout=5, timeout=10, **kwargs)


def serve_sync_vector(serve: Any, closing: Any, make_env: Callable[[], Any], num_envs: int = 3,
                      cls: type[Any] = rlmesh.RemoteVectorEnv, **kwargs: Any) -> tuple[Any, Any]:
    """Serve a ``SyncVectorEnv`` factory; return a local instance and a client connected to it.

    Both are closed after the test (``kwargs`` go to ``SyncVectorEnv``).
    """

    def factory() -> SyncVectorEnv:
        return SyncVectorEnv([make_env] * num_envs, **kwargs)

    local = closing(factory())
    remote = closing(connect_vec(serve(factory).address, cls))
    return local, remote


def same_step_fleet(endpoints: Any, closing: Any, fns: Sequence[Callable[[], Any]]
                    ) -> tuple[SyncVectorEnv, Any]:
    """``SAME_STEP`` vector envs: a local ``SyncVectorEnv`` and a fleet of one endpoint per fn."""
    local = closing(SyncVectorEnv(fns, autoreset_mode=SAME))
    remote = closing(connect_vec(endpoints(fns), autoreset_mode=SAME))
    return local, remote


def reset_both(remote: VectorEnv[Any, Any, Any], local: VectorEnv[Any, Any, Any],
               seed: int) -> gym.Space[Any]:
    """Reset both with ``seed``; return an action sampler seeded with it as well."""
    remote.reset(seed=seed)
    local.reset(seed=seed)
    return action_sampler(local.action_space, seed)


def assert_endpoint_free(address: str) -> None:
    """An instance endpoint accepts a new client (its previous session has been released)."""
    client = rlmesh.numpy.RemoteEnv(address, connect_timeout=5, timeout=10)
    client.close()


def assert_vector_endpoint_free(address: str) -> None:
    client = connect_vec(address)
    client.close()


# == 1. vector endpoints ======================================================================


@pytest.mark.parametrize("make_env", ENVS)
@pytest.mark.parametrize("cls", VECTOR_CLASSES)
@pytest.mark.parametrize("mode", MODES)
def test_vector_endpoint_contract(serve: Any, closing: Any, mode: AutoresetMode, cls: type,
                                  make_env: Callable[[], Any]) -> None:
    local, remote = serve_sync_vector(serve, closing, make_env, cls=cls, autoreset_mode=mode)
    assert isinstance(remote, VectorEnv)
    assert remote.num_envs == 3
    assert_vector_spaces(remote, local)
    assert isinstance(remote.metadata["autoreset_mode"], AutoresetMode)
    assert remote.metadata["autoreset_mode"] == local.metadata["autoreset_mode"] == mode
    assert remote.render_mode == local.render_mode


@pytest.mark.parametrize("make_env", ENVS)
@pytest.mark.parametrize("mode", MODES)
def test_vector_endpoint_trajectory_matches_local(serve: Any, closing: Any, mode: AutoresetMode,
                                                  make_env: Callable[[], Any]) -> None:
    local, remote = serve_sync_vector(serve, closing, make_env, autoreset_mode=mode)
    ends = lockstep(remote, local, steps=320)
    assert ends >= 5, f"only {ends} episode ends: the episode boundaries were not exercised"


def test_served_make_vec_instance(serve: Any, closing: Any) -> None:
    served = gym.make_vec("CartPole-v1", 4, vectorization_mode="sync")
    local = closing(gym.make_vec("CartPole-v1", 4, vectorization_mode="sync"))
    address = serve(served).address
    remote = closing(connect_vec(address))
    assert isinstance(remote, VectorEnv)
    assert remote.num_envs == 4
    assert_vector_spaces(remote, served)
    assert remote.metadata["autoreset_mode"] == served.metadata["autoreset_mode"] == NEXT
    with pytest.raises(rlmesh.EnvBusyError):
        connect_vec(address)  # the instance is lent to one session at a time
    assert lockstep(remote, local, steps=300) >= 5
    remote.close()
    remote.close()  # idempotent
    assert remote.closed
    again = closing(connect_vec(address))  # the instance is free for the next client
    assert_reset_same(again.reset(seed=3), local.reset(seed=3), "reset after reconnect")


def test_vector_endpoint_reset_seeds_and_options(serve: Any, closing: Any) -> None:
    local, remote = serve_sync_vector(serve, closing, make_cartpole)
    by_int = remote.reset(seed=10)
    assert_reset_same(by_int, local.reset(seed=10), "seed=int")
    assert_reset_same(remote.reset(seed=[10, 11, 12]), by_int, "seed=int is seed+i")
    assert_reset_same(remote.reset(seed=[5, 3, 99]), local.reset(seed=[5, 3, 99]), "seed=list")
    assert_reset_same(remote.reset(seed=[np.int64(5), 3, 99]), local.reset(seed=[5, 3, 99]),
                      "numpy int seeds")
    assert not np.array_equal(remote.reset(seed=[5, 3, 99])[0], by_int[0])
    options = {"low": -0.001, "high": 0.001}  # CartPole's reset bounds
    obs, _ = remote.reset(seed=1, options=dict(options))
    assert_reset_same((obs, _), local.reset(seed=1, options=dict(options)), "options")
    assert np.all(np.abs(obs) <= 0.001)
    assert np.any(np.abs(remote.reset(seed=1)[0]) > 0.001)  # the options made a difference


def test_vector_endpoint_wrong_length_seed_list_keeps_session(serve: Any, closing: Any) -> None:
    local, remote = serve_sync_vector(serve, closing, make_cartpole)
    remote.reset(seed=0)
    with pytest.raises(ValueError):
        remote.reset(seed=[1, 2])
    # A bad argument is the caller's mistake, as in Gymnasium: the env stays usable.
    assert_reset_same(remote.reset(seed=4), local.reset(seed=4), "reset after the error")


def test_vector_endpoint_render_matches_local(serve: Any, closing: Any) -> None:
    need("pygame")  # CartPole's rgb_array frames
    local, remote = serve_sync_vector(serve, closing, make_cartpole_rgb, num_envs=2)
    assert remote.render_mode == "rgb_array"
    remote.reset(seed=2)
    local.reset(seed=2)
    for action in ([0, 1], [1, 1], [1, 0]):
        remote.step(np.array(action))
        local.step(np.array(action))
    frames, expected = remote.render(), local.render()
    assert isinstance(frames, tuple) and len(frames) == 2
    assert frames[0].shape == (400, 600, 3)
    assert_same_values(frames, expected, "frames")
    assert not np.array_equal(frames[0], frames[1])  # two different cart positions


def test_vector_endpoint_close_is_idempotent(serve: Any) -> None:
    address = serve(lambda: SyncVectorEnv([make_cartpole] * 2)).address
    remote = connect_vec(address)
    remote.reset(seed=0)
    remote.close()
    assert remote.closed
    remote.close()
    assert remote.closed
    with pytest.raises(rlmesh.EnvClosedError):
        remote.reset(seed=0)


def test_vector_endpoint_autoreset_mode_argument(serve: Any, closing: Any) -> None:
    address = serve(lambda: SyncVectorEnv([make_cartpole] * 2,
                                          autoreset_mode=SAME)).address
    closing(connect_vec(address, autoreset_mode=SAME)).close()
    closing(connect_vec(address, autoreset_mode="SameStep")).close()
    with pytest.raises(ValueError, match="NextStep"):
        connect_vec(address, autoreset_mode=NEXT)
    with pytest.raises(ValueError, match="unknown autoreset mode"):
        connect_vec(address, autoreset_mode="Sometimes")
    assert_vector_endpoint_free(address)  # the refused sessions were released


# == 2. the wrong class, mismatches, cleanup ==================================================


@pytest.mark.parametrize("env_class", [rlmesh.numpy.RemoteEnv, rlmesh.RemoteEnv],
                         ids=["numpy", "plain"])
def test_remote_env_on_vector_endpoint(serve: Any, env_class: type) -> None:
    address = serve(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")).address
    with pytest.raises(rlmesh.EndpointKindError, match="RemoteVectorEnv") as info:
        env_class(address, connect_timeout=5, timeout=10)
    assert address in str(info.value)
    assert_vector_endpoint_free(address)


@pytest.mark.parametrize("cls", VECTOR_CLASSES)
def test_remote_vector_env_on_single_env_endpoint(serve: Any, cls: type) -> None:
    address = serve(gym.make("CartPole-v1")).address
    with pytest.raises(rlmesh.EndpointKindError) as info:
        connect_vec(address, cls)
    message = str(info.value)
    assert "RemoteEnv" in message, message  # ("RemoteVectorEnv" does not contain it)
    assert address in message
    assert_endpoint_free(address)


@pytest.mark.parametrize("vector_first", [False, True], ids=["single-first", "vector-first"])
def test_list_with_a_vector_endpoint(serve: Any, vector_first: bool) -> None:
    single = serve(gym.make("CartPole-v1")).address
    single2 = serve(gym.make("CartPole-v1")).address
    vector = serve(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync")).address
    addresses = [vector, single, single2] if vector_first else [single, vector, single2]
    with pytest.raises(rlmesh.EndpointKindError):
        connect_vec(addresses)
    assert_endpoint_free(single)
    assert_endpoint_free(single2)
    assert_vector_endpoint_free(vector)


@pytest.mark.parametrize("second", [
    pytest.param(lambda: DictObsEnv(), id="other-observation-space"),
    pytest.param(lambda: SpaceEchoEnv(gym.make("CartPole-v1").observation_space,
                                      gym.spaces.Discrete(3)), id="other-action-space"),
])
def test_mismatched_spaces(serve: Any, second: Callable[[], Any]) -> None:
    addresses = [serve(gym.make("CartPole-v1")).address, serve(second()).address]
    with pytest.raises(ValueError, match="equal spaces"):
        connect_vec(addresses)
    for address in addresses:
        assert_endpoint_free(address)


def test_unreachable_address_releases_the_others(serve: Any) -> None:
    addresses = [serve(gym.make("CartPole-v1")).address, f"127.0.0.1:{free_port()}"]
    with pytest.raises(rlmesh.ConnectFailedError):
        connect_vec(addresses)
    assert_endpoint_free(addresses[0])


def test_empty_address_list() -> None:
    with pytest.raises(ValueError):
        rlmesh.RemoteVectorEnv([])


def test_close_releases_every_session(serve: Any, closing: Any) -> None:
    addresses = [serve(gym.make("CartPole-v1")).address for _ in range(3)]
    remote = connect_vec(addresses)
    remote.reset(seed=0)
    remote.step(np.array([0, 1, 0]))
    with pytest.raises(rlmesh.EnvBusyError):
        rlmesh.numpy.RemoteEnv(addresses[1], connect_timeout=5, timeout=10)
    remote.close()
    remote.close()  # idempotent
    assert remote.closed
    with pytest.raises(rlmesh.EnvClosedError):
        remote.reset(seed=0)
    again = closing(connect_vec(addresses))  # every instance is free again
    local = closing(SyncVectorEnv([make_cartpole] * 3))
    assert_reset_same(again.reset(seed=5), local.reset(seed=5), "reset after reconnect")


# == 3. many single-env endpoints as one vector env ===========================================


@pytest.mark.parametrize("make_env", ENVS)
@pytest.mark.parametrize("mode", MODES)
def test_fleet_trajectory_matches_sync_vector_env(endpoints: Any, closing: Any,
                                                  mode: AutoresetMode,
                                                  make_env: Callable[[], Any]) -> None:
    fns = [make_env] * 3
    local = closing(SyncVectorEnv(fns, autoreset_mode=mode))
    remote = closing(connect_vec(endpoints(fns), autoreset_mode=mode))
    assert isinstance(remote, VectorEnv)
    assert remote.num_envs == 3
    assert_vector_spaces(remote, local)
    assert remote.metadata["autoreset_mode"] == mode
    ends = lockstep(remote, local, steps=320, check_pending_raises=mode == DISABLED)
    assert ends >= 5, f"only {ends} episode ends: the episode boundaries were not exercised"


def test_fleet_default_mode_is_next_step(endpoints: Any, closing: Any) -> None:
    remote = closing(connect_vec(endpoints([make_cartpole] * 2)))
    assert remote.metadata["autoreset_mode"] is NEXT
    local = closing(SyncVectorEnv([make_cartpole] * 2))
    assert lockstep(remote, local, steps=120, reseed_at=60) >= 2


def test_fleet_same_step_final_obs_and_final_info(endpoints: Any, closing: Any) -> None:
    fns = [DictObsEnv] * 3
    local, remote = same_step_fleet(endpoints, closing, fns)
    sampler = reset_both(remote, local, 0)
    finals = 0
    for t in range(300):
        actions = sampler.sample()
        got, expected = remote.step(actions), local.step(actions)
        assert_step_same(got, expected, f"step {t}")
        if "final_obs" in expected[4]:
            info = got[4]
            assert info["final_obs"].dtype == object
            assert_same_values(info["_final_obs"], np.logical_or(expected[2], expected[3]),
                               f"step {t} _final_obs")
            for i in np.flatnonzero(info["_final_obs"]):
                assert isinstance(info["final_obs"][i], dict)
                assert info["final_info"]["_t"][i]
                finals += 1
    assert finals >= 5


def test_fleet_same_step_info_key_order_matches_sync_vector_env(endpoints: Any,
                                                                closing: Any) -> None:
    """Infos are built in the order ``SyncVectorEnv`` builds them (dict order is observable)."""
    fns = [DictObsEnv] * 3
    local, remote = same_step_fleet(endpoints, closing, fns)
    sampler = reset_both(remote, local, 0)
    for t in range(300):
        actions = sampler.sample()
        assert_same_values(remote.step(actions)[4], local.step(actions)[4], f"step {t} info")


def test_fleet_same_step_reset_and_step_infos_sharing_a_key(endpoints: Any,
                                                            closing: Any) -> None:
    """Sub-env 0 ends at once and resets (info value 0); sub-env 1 steps on (info value 0.5)."""
    fns = [functools.partial(SharedKeyEnv, 1), functools.partial(SharedKeyEnv, 5)]
    local, remote = same_step_fleet(endpoints, closing, fns)
    assert_reset_same(remote.reset(seed=0), local.reset(seed=0), "reset")
    actions = np.array([0, 0])
    assert_step_same(remote.step(actions), local.step(actions), "step")


def test_fleet_reset_seeds_and_options(endpoints: Any, closing: Any) -> None:
    fns = [make_cartpole] * 3
    local = closing(SyncVectorEnv(fns))
    remote = closing(connect_vec(endpoints(fns)))
    by_int = remote.reset(seed=10)
    assert_reset_same(by_int, local.reset(seed=10), "seed=int")
    assert_reset_same(remote.reset(seed=[10, 11, 12]), by_int, "seed=int is seed+i")
    assert_reset_same(remote.reset(seed=[5, 3, 99]), local.reset(seed=[5, 3, 99]), "seed=list")
    obs, _ = remote.reset(seed=[None, 3, None])
    assert_same_values(obs[1], local.reset(seed=[8, 3, 8])[0][1], "seed list with None")
    options = {"low": -0.001, "high": 0.001}
    got = remote.reset(seed=1, options=dict(options))
    assert_reset_same(got, local.reset(seed=1, options=dict(options)), "options")
    assert np.all(np.abs(got[0]) <= 0.001)
    assert np.any(np.abs(remote.reset(seed=1)[0]) > 0.001)


def test_fleet_wrong_length_seed_list(endpoints: Any, closing: Any) -> None:
    fns = [make_cartpole] * 3
    local = closing(SyncVectorEnv(fns))
    remote = closing(connect_vec(endpoints(fns)))
    remote.reset(seed=0)
    with pytest.raises(ValueError, match="num_envs=3"):
        remote.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="num_envs=3"):
        remote.reset(seed=[1, 2, 3, 4])
    assert_reset_same(remote.reset(seed=4), local.reset(seed=4), "reset after the error")
    actions = np.array([1, 0, 1])
    assert_step_same(remote.step(actions), local.step(actions), "step after the error")


def test_fleet_reset_mask_validation(endpoints: Any, closing: Any) -> None:
    remote = closing(connect_vec(endpoints([make_cartpole] * 2), autoreset_mode=DISABLED))
    remote.reset(seed=0)
    with pytest.raises(ValueError):
        remote.reset(options={"reset_mask": np.zeros(2, dtype=np.bool_)})
    with pytest.raises(ValueError):
        remote.reset(options={"reset_mask": np.ones(3, dtype=np.bool_)})
    with pytest.raises(TypeError):
        remote.reset(options={"reset_mask": np.ones(2, dtype=np.int64)})
    remote.reset(options={"reset_mask": np.array([True, False])})


@pytest.mark.parametrize("kind", ["fleet", "vector-endpoint"])
def test_step_async_wait_equals_step(serve: Any, endpoints: Any, closing: Any,
                                     kind: str) -> None:
    fns = [DictObsEnv] * 3
    if kind == "fleet":
        make_remote = functools.partial(connect_vec, endpoints(fns))
    else:
        address = serve(lambda: SyncVectorEnv(fns)).address
        make_remote = functools.partial(connect_vec, address)
    by_step = closing(make_remote())
    by_async = closing(make_remote())
    local = closing(SyncVectorEnv(fns))
    for env in (by_step, by_async, local):
        env.reset(seed=21)
    sampler = action_sampler(local.action_space, 5)
    for t in range(120):
        actions = sampler.sample()
        by_async.step_async(actions)
        if t == 0:
            with pytest.raises(RuntimeError):
                by_async.reset(seed=0)  # a step is in flight
            with pytest.raises(RuntimeError):
                by_async.step_async(actions)
        async_result = by_async.step_wait()
        expected = local.step(actions)
        assert_step_same(by_step.step(actions), expected, f"step {t}")
        assert_step_same(async_result, expected, f"step_async/step_wait {t}")


@pytest.mark.parametrize("kind", ["fleet", "vector-endpoint"])
def test_step_wait_without_step_async(serve: Any, endpoints: Any, closing: Any,
                                      kind: str) -> None:
    if kind == "fleet":
        remote = closing(connect_vec(endpoints([make_cartpole] * 2)))
    else:
        remote = closing(connect_vec(serve(lambda: SyncVectorEnv([make_cartpole] * 2)).address))
    with pytest.raises(RuntimeError):
        remote.step_wait()
    remote.reset(seed=0)
    with pytest.raises(RuntimeError):
        remote.step_wait()
    remote.step_async(np.array([0, 1]))
    remote.step_wait()
    with pytest.raises(RuntimeError):
        remote.step_wait()  # each step_async is collected once
    remote.step(np.array([1, 1]))  # still usable


def test_fleet_step_error_in_one_sub_env(endpoints: Any, closing: Any) -> None:
    addresses = endpoints([FlakyCartPole, functools.partial(FlakyCartPole, fail_on_step=3),
                           FlakyCartPole])
    local = closing(SyncVectorEnv([make_cartpole] * 3))
    remote = closing(connect_vec(addresses))
    assert_reset_same(remote.reset(seed=0), local.reset(seed=0), "reset")
    actions = np.array([0, 1, 0])
    for t in range(2):
        assert_step_same(remote.step(actions), local.step(actions), f"step {t}")
    with pytest.raises(rlmesh.RemoteEnvError, match="flaky sub-env exploded") as info:
        remote.step(actions)
    assert "RuntimeError" in info.value.remote_type
    # Every session, the failed one included, stays usable.
    assert_reset_same(remote.reset(seed=11), local.reset(seed=11), "reset after the error")
    sampler = action_sampler(local.action_space, 2)
    for t in range(60):
        actions = sampler.sample()
        assert_step_same(remote.step(actions), local.step(actions), f"step after error {t}")


def test_fleet_reset_error_in_one_sub_env(endpoints: Any, closing: Any) -> None:
    addresses = endpoints([FlakyCartPole, FlakyCartPole,
                           functools.partial(FlakyCartPole, fail_on_reset=2)])
    local = closing(SyncVectorEnv([make_cartpole] * 3))
    remote = closing(connect_vec(addresses))
    remote.reset(seed=0)
    with pytest.raises(rlmesh.RemoteEnvError, match="failed to reset"):
        remote.reset(seed=1)
    assert_reset_same(remote.reset(seed=2), local.reset(seed=2), "reset after the error")
    actions = np.array([1, 1, 0])
    assert_step_same(remote.step(actions), local.step(actions), "step after the error")


def test_fleet_render_matches_sync_vector_env(endpoints: Any, closing: Any) -> None:
    fns = [functools.partial(DictObsEnv, render_mode="rgb_array")] * 3
    local = closing(SyncVectorEnv(fns))
    remote = closing(connect_vec(endpoints(fns)))
    assert remote.render_mode == local.render_mode == "rgb_array"
    remote.reset(seed=4)
    local.reset(seed=4)
    for actions in ([0, 1, 2], [2, 2, 3]):
        remote.step(np.array(actions))
        local.step(np.array(actions))
    frames = remote.render()
    assert isinstance(frames, tuple) and len(frames) == 3
    assert_same_values(frames, local.render(), "frames")


@pytest.mark.parametrize(("target", "kwargs", "make_env", "mode"), [
    pytest.param("CartPole-v1", None, make_cartpole, NEXT, id="CartPole-NextStep"),
    pytest.param("rlmesh.envs:DictObsEnv", None, DictObsEnv, SAME, id="DictObsEnv-SameStep"),
])
def test_fleet_of_child_processes(spawn: Any, closing: Any, target: str, kwargs: Any,
                                  make_env: Callable[[], Any], mode: AutoresetMode) -> None:
    with ThreadPoolExecutor(3) as pool:
        procs = list(pool.map(lambda _: spawn(target, kwargs=kwargs), range(3)))
    assert len({p.pid for p in procs}) == 3
    local = closing(SyncVectorEnv([make_env] * 3, autoreset_mode=mode))
    remote = closing(connect_vec([p.address for p in procs], autoreset_mode=mode))
    assert lockstep(remote, local, steps=300) >= 5


def test_vector_endpoint_in_child_process(spawn: Any, closing: Any) -> None:
    proc = spawn("gymnasium:make_vec", kwargs={"id": "CartPole-v1", "num_envs": 3,
                                               "vectorization_mode": "sync"})
    local = closing(gym.make_vec("CartPole-v1", 3, vectorization_mode="sync"))
    remote = closing(connect_vec(proc.address))
    assert remote.num_envs == 3
    assert_vector_spaces(remote, local)
    assert lockstep(remote, local, steps=300) >= 5


# == 4. standard vector wrappers ==============================================================


@pytest.mark.parametrize("mode", [pytest.param(NEXT, id="NextStep"),
                                  pytest.param(SAME, id="SameStep")])
@pytest.mark.parametrize("kind", ["fleet", "vector-endpoint"])
def test_record_episode_statistics(serve: Any, endpoints: Any, closing: Any, kind: str,
                                   mode: AutoresetMode) -> None:
    fns = [make_cartpole] * 3
    if kind == "fleet":
        inner = connect_vec(endpoints(fns), autoreset_mode=mode)
    else:
        inner = connect_vec(serve(lambda: SyncVectorEnv(fns, autoreset_mode=mode)).address)
    remote = closing(RecordEpisodeStatistics(inner, buffer_length=1000))
    local = closing(RecordEpisodeStatistics(SyncVectorEnv(fns, autoreset_mode=mode),
                                            buffer_length=1000))
    assert_reset_same(remote.reset(seed=3), local.reset(seed=3), "reset")
    sampler = action_sampler(local.action_space, 9)
    reported = 0
    for t in range(300):
        actions = sampler.sample()
        got, expected = remote.step(actions), local.step(actions)
        assert ("episode" in got[4]) == ("episode" in expected[4]), f"step {t}"
        if "episode" in expected[4]:
            for stat in ("r", "l"):
                assert_same_values(got[4]["episode"][stat], expected[4]["episode"][stat],
                                   f"step {t} episode[{stat!r}]")
            assert_same_values(got[4]["_episode"], expected[4]["_episode"], f"step {t} _episode")
            reported += int(expected[4]["_episode"].sum())
            for info in (got[4], expected[4]):
                del info["episode"], info["_episode"]  # "t" is wall-clock time
        assert_step_same(got, expected, f"step {t}")
    assert reported >= 5
    assert remote.episode_count == local.episode_count == reported
    assert list(remote.return_queue) == list(local.return_queue)
    assert list(remote.length_queue) == list(local.length_queue)
    remote.close()
    assert inner.closed
